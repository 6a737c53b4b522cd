"""SR templates described as data (``sr_templates/*.yaml``) and checks of SRs against them.

A profile lists a template's content tree: concept, value type, allowed coded answers and
which paths are filterable. Declaring it once per template (not in code) is what lets a site
add a template, or widen what is searchable, by editing YAML.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from pydicom.dataset import Dataset

from srcohort.codes import concept_key

TEMPLATES_DIR = Path(os.environ.get("SRCOHORT_TEMPLATES",
                                    Path(__file__).resolve().parents[2] / "sr_templates"))
Path_ = tuple[str, ...]
# A node is identified by its concept path and value type: TID 2002 allows a TEXT and a CODE
# statement with the same concept name side by side (Findings > Finding as text and as code).
NodeKey = tuple[Path_, str]


@dataclass(frozen=True)
class Node:
    path: Path_
    value_type: str
    values: tuple[str, ...]
    filter: str | None
    required: bool
    anchor: str | None = None        # a DATE that names a patient-level event (e.g. "tavi")
    field: str | None = None         # name under which the value is filterable per annotation
    unit: str | None = None          # UCUM unit of a NUM (what exports record beside the value)


@dataclass(frozen=True)
class Profile:
    template: str
    name: str
    template_id: str | None
    root: str | None
    nodes: dict[NodeKey, Node]

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


def load_profiles(folder: Path = TEMPLATES_DIR) -> list[Profile]:
    return [_profile(path) for path in sorted(folder.glob("*.yaml"))]


@functools.lru_cache(maxsize=8)
def default_profiles(folder: Path = TEMPLATES_DIR) -> tuple[Profile, ...]:
    """The installed profiles, read once per process (indexing asks for them per SR)."""
    return tuple(load_profiles(folder))


def profile_for(ds: Dataset, profiles: Iterable[Profile]) -> Profile | None:
    return next((p for p in profiles if p.matches(ds)), None)


def _profile(path: Path) -> Profile:
    raw = yaml.safe_load(path.read_text("utf-8"))
    nodes: dict[NodeKey, Node] = {}

    def walk(items: list[dict[str, Any]], parent: Path_) -> None:
        for item in items:
            here = parent + (str(item["concept"]),)
            nodes[(here, str(item["value_type"]))] = Node(here, str(item["value_type"]),
                               tuple(str(v) for v in item.get("values", [])),
                               item.get("filter"), bool(item.get("required", False)),
                               item.get("anchor"), item.get("field"), item.get("unit"))
            walk(item.get("children", []), here)

    walk(raw.get("content", []), ())
    identify = raw.get("identify", {})
    return Profile(str(raw["template"]), str(raw.get("name", "")), identify.get("template_id"),
                   identify.get("root"), nodes)


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
