"""SR template profiles: how SRs of a template are recognised and which of their paths are
filterable, read from the study's declarations (``srcohort.study``) and the standard templates.

A profile lists a template's content tree: concept, value type, allowed coded answers and
which paths are filterable. Declaring it once per template (as data, not code) is what lets a
study add a template, or widen what is searchable, by editing YAML.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from pydicom.dataset import Dataset

from srcohort.codes import concept_key
from srcohort.study.load import active_study_name, load_study, standard_templates, walk_nodes
from srcohort.study.model import Node, Study, Template

Path_ = tuple[str, ...]
# A node is identified by its concept path and value type: TID 2002 allows a TEXT and a CODE
# statement with the same concept name side by side (Findings > Finding as text and as code).
NodeKey = tuple[Path_, str]


@dataclass(frozen=True)
class Profile:
    template: str
    name: str
    template_id: str | None
    root: str | None
    nodes: dict[NodeKey, Node]

    @classmethod
    def of(cls, template: Template) -> Profile:
        return cls(template.template, template.name, template.template_id, template.root,
                   {(node.path, node.value_type): node for node in walk_nodes(template)})

    def matches(self, ds: Dataset) -> bool:
        """Recognise an SR by its template identifier, else by its root concept."""
        template_id = ""
        if ds.get("ContentTemplateSequence"):
            template_id = str(ds.ContentTemplateSequence[0].get("TemplateIdentifier", ""))
        root = concept_key(ds.ConceptNameCodeSequence[0]) if ds.get("ConceptNameCodeSequence") \
            else ""
        return self.matches_identity(template_id, root)

    def matches_identity(self, template_id: str, root: str) -> bool:
        """The same test on an indexed annotation's ``template`` and ``title``."""
        if self.template_id is not None:
            return template_id == self.template_id and (self.root is None or root == self.root)
        return root == self.root and not template_id

    def node(self, path: Path_, value_type: str) -> Node | None:
        return self.nodes.get((path, value_type))

    @property
    def fields(self) -> dict[NodeKey, Node]:
        """Nodes declared filterable under a field name."""
        return {key: node for key, node in self.nodes.items() if node.field}

    @property
    def anchors(self) -> dict[str, str]:
        """Event name -> concept of the DATE item that dates it."""
        return {node.anchor: node.path[-1] for node in self.nodes.values() if node.anchor}


def study_profiles(study: Study) -> tuple[Profile, ...]:
    """The profiles of a study's templates and of the standard templates."""
    return tuple(Profile.of(t) for t in (*study.templates, *standard_templates()))


def default_profiles(study: str = "") -> tuple[Profile, ...]:
    """The profiles of ``study`` (default: the active one, ``srcohort.study.load_study``),
    made once per process (indexing asks for them per SR)."""
    return _profiles(study or active_study_name())


@functools.lru_cache(maxsize=8)
def _profiles(study: str) -> tuple[Profile, ...]:
    return study_profiles(load_study(study))


def profile_for(ds: Dataset, profiles: Iterable[Profile]) -> Profile | None:
    return next((p for p in profiles if p.matches(ds)), None)


def walk_items(ds: Dataset) -> Iterator[tuple[Path_, Dataset]]:
    """Every content item below the root with its path of concept names."""
    def walk(sequence: Any, parent: Path_) -> Iterator[tuple[Path_, Dataset]]:
        for item in sequence:
            name = concept_key(item.ConceptNameCodeSequence[0]) \
                if item.get("ConceptNameCodeSequence") else ""
            yield parent + (name,), item
            yield from walk(item.get("ContentSequence", []), parent + (name,))
    yield from walk(ds.get("ContentSequence", []), ())


def content_items(ds: Dataset) -> Iterator[tuple[Path_, str, str | None]]:
    """(concept path, value type, coded value) of every item below the root."""
    for path, item in walk_items(ds):
        value = concept_key(item.ConceptCodeSequence[0]) \
            if item.get("ConceptCodeSequence") else None
        yield path, str(item.ValueType), value


def nonconformities(ds: Dataset, profile: Profile) -> list[str]:
    """What in ``ds`` the profile does not declare, and what it requires but ``ds`` lacks."""
    problems: list[str] = []
    seen: set[NodeKey] = set()
    for path, value_type, value in content_items(ds):
        seen.add((path, value_type))
        node = profile.node(path, value_type)
        if node is None:
            declared = sorted(vt for p, vt in profile.nodes if p == path)
            problems.append(f"{'/'.join(path)} is {value_type}, template says "
                            f"{' or '.join(declared)}" if declared else
                            f"{'/'.join(path)} ({value_type}) is not in template {profile.template}")
        elif node.values and value not in node.values:
            problems.append(f"{'/'.join(path)} = {value} is not an allowed value")
    problems += [f"{'/'.join(p)} is required by template {profile.template}"
                 for (p, vt), node in profile.nodes.items() if node.required and (p, vt) not in seen]
    return problems
