"""Study folders (YAML) -> ``srcohort.study.model`` objects, checked before anything uses them.

A study ships as package data (``srcohort/studies/<name>/``, read with ``importlib.resources``,
so a wheel carries it) or is any folder a site points at. Every mistake is a ``StudyError``
naming the file, the line and the setting: an unknown vocabulary, a node whose value type its
source cannot fill, a field named twice, a label on a field no template declares. A study that
is missing is an error too, never an empty list of templates.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from pydicom.sr._concepts_dict import concepts

from srcohort.study.model import (COLUMN_KINDS, FILTER_KINDS, VALUE_TYPES, Column, Derived,
                                  GroupDecl, InputTable, LabelDecl, Node, Study, Syntax,
                                  Template, Term, Vocabulary)
from srcohort.yaml_lines import KeyPath, line_of, load_with_lines

STUDY_ENV = "SRCOHORT_STUDY"
DEFAULT_FILE = "default.yaml"          # in srcohort/studies/: which study runs unless named
STUDY_FILE = "study.yaml"
# The value type a node needs for what its source holds.
SOURCE_VALUE_TYPES = {"id": {"TEXT"}, "date": {"DATE"}, "number": {"NUM"},
                      "code": {"CODE"}, "text": {"TEXT"}, "unit": {"TEXT"}, "path": {"TEXT"}}
DERIVED_PARTS = {"date": "DATE", "exists": "CODE"}
GROUP_KINDS = ("point", "measurements", "row")
MEASUREMENT_REPORT = "1500"


class StudyError(ValueError):
    """A study declaration is wrong; the message names file, line and setting."""


class _File:
    """One YAML file of a study, with the line of every key for messages."""

    def __init__(self, resource: Traversable, label: str) -> None:
        self.label = label
        try:
            self.data, self.lines = load_with_lines(resource.read_text("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise StudyError(f"{label}: cannot read: {exc}") from exc
        except yaml.YAMLError as exc:
            raise StudyError(f"{label}: not valid YAML: {exc}") from exc
        if not isinstance(self.data, dict):
            raise StudyError(f"{label}: expected a mapping")

    def error(self, where: KeyPath, reason: str) -> StudyError:
        line = line_of(self.lines, where)
        return StudyError(f"{self.label}{f':{line}' if line else ''}: "
                          f"{'.'.join(where) + ': ' if where else ''}{reason}")

    def mapping(self, raw: Any, where: KeyPath, known: set[str],
                required: set[str] = frozenset()) -> dict:
        if not isinstance(raw, dict):
            raise self.error(where, f"expected a mapping, got {type(raw).__name__}")
        for key in raw:
            if key not in known:
                raise self.error(where + (str(key),), f"unknown key {str(key)!r} (known: "
                                                      f"{', '.join(sorted(known))})")
        for key in sorted(required - raw.keys()):
            raise self.error(where, f"missing {key!r}")
        return raw


# -- where studies are ----------------------------------------------------------------------
def packaged_studies() -> dict[str, Traversable]:
    """Name -> folder of every study shipped inside the package."""
    root = resources.files("srcohort") / "studies"
    return {entry.name: entry for entry in sorted(root.iterdir(), key=lambda e: e.name)
            if entry.is_dir() and (entry / STUDY_FILE).is_file()}


def study_folder(ref: str | os.PathLike[str]) -> Traversable:
    """A packaged study by name, or a folder holding ``study.yaml``."""
    packaged = packaged_studies()
    if str(ref) in packaged:
        return packaged[str(ref)]
    path = Path(ref)
    if (path / STUDY_FILE).is_file():
        return path
    raise StudyError(f"study {str(ref)!r}: neither a shipped study ({', '.join(packaged)}) "
                     f"nor a folder with {STUDY_FILE}")


_USING: ContextVar[str] = ContextVar("srcohort_study", default="")


def active_study_name() -> str:
    """The study in use: the one ``using_study`` set, else what ``$SRCOHORT_STUDY`` names (a
    shipped study or a folder), else the shipped default (``srcohort/studies/default.yaml``)."""
    return _USING.get() or os.environ.get(STUDY_ENV) or _default_study()


@contextmanager
def using_study(ref: str) -> Iterator[Study]:
    """Make ``ref`` the active study inside the block (cohort definitions, profiles and
    vocabularies read it), e.g. to draw another study's dashboards."""
    study = load_study(ref)
    token = _USING.set(ref)
    try:
        yield study
    finally:
        _USING.reset(token)


@functools.lru_cache(maxsize=1)
def _default_study() -> str:
    entry = resources.files("srcohort") / "studies" / DEFAULT_FILE
    file = _File(entry, _label(entry))
    return str(file.mapping(file.data, (), {"study"}, {"study"})["study"])


def load_study(ref: str = "") -> Study:
    """The study ``ref`` names (default: the active one, ``active_study_name``), read once."""
    return _load(str(ref or active_study_name()))


@functools.lru_cache(maxsize=16)
def _load(ref: str) -> Study:
    return _study(study_folder(ref))


@functools.lru_cache(maxsize=1)
def standard_templates() -> tuple[Template, ...]:
    """Templates every study can read: those srcohort writes from ECG files (TID 3700) and
    reports of other tools (TID 2000), in ``srcohort/templates/``."""
    root = resources.files("srcohort") / "templates"
    files = sorted((e for e in root.iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name)
    if not files:
        raise StudyError(f"{root}: no standard templates (is the package installed whole?)")
    return tuple(template_from(_File(entry, _label(entry)), {}) for entry in files)


def template_vocabulary(template: str, name: str) -> Vocabulary:
    """A vocabulary a standard template declares (the ECG report's findings and measurements)."""
    for entry in sorted((resources.files("srcohort") / "templates").iterdir(),
                        key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            file = _File(entry, _label(entry))
            if str(file.data.get("template")) == template:
                return _vocabularies(file, file.data.get("vocabularies") or {}, ())[name]
    raise StudyError(f"no standard template {template!r} declares vocabulary {name!r}")


def _label(entry: Traversable) -> str:
    return str(entry)


# -- the study file -------------------------------------------------------------------------
_STUDY_KEYS = {"name", "title", "vocabularies", "syntaxes", "inputs", "derived", "templates",
               "label", "anchor", "words", "demo"}


def _study(folder: Traversable) -> Study:
    file = _File(folder / STUDY_FILE, _label(folder / STUDY_FILE))
    raw = file.mapping(file.data, (), _STUDY_KEYS, {"name", "inputs", "templates"})
    vocabularies = _vocabularies(file, raw.get("vocabularies") or {}, ("vocabularies",))
    syntaxes = {str(name): _syntax(file, str(name), spec)
                for name, spec in (raw.get("syntaxes") or {}).items()}
    inputs = {str(name): _table(file, str(name), spec, vocabularies, syntaxes)
              for name, spec in file.mapping(raw["inputs"], ("inputs",),
                                             set(map(str, raw["inputs"]))).items()}
    derived = {str(name): _derived(file, str(name), spec, inputs)
               for name, spec in (raw.get("derived") or {}).items()}
    templates: list[Template] = []
    for index, name in enumerate(raw["templates"] or []):
        entry = folder / "templates" / str(name)
        if not entry.is_file():
            raise file.error(("templates", str(index)), f"no file templates/{name}")
        template = template_from(_File(entry, _label(entry)), vocabularies, inputs)
        _check_sources(template, inputs, derived, vocabularies)
        templates.append(template)
    if not templates:
        raise file.error(("templates",), "a study declares at least one template")
    _unique_fields(templates, file)
    label = _label_decl(file, raw.get("label"), templates)
    anchors = {node.anchor for t in (*templates, *standard_templates()) for node in _walk(t.nodes)
               if node.anchor}
    anchor = raw.get("anchor")
    if anchor is not None and anchor not in anchors:
        raise file.error(("anchor",), f"no template dates event {anchor!r} (anchors: "
                                      f"{', '.join(sorted(anchors)) or 'none'})")
    cohorts = {entry.name[:-5]: entry for entry in
               sorted(_entries(folder / "cohorts"), key=lambda e: e.name)
               if entry.name.endswith(".yaml")}
    return Study(name=str(raw["name"]), title=str(raw.get("title", "")),
                 vocabularies=vocabularies, inputs=inputs, derived=derived,
                 templates=tuple(templates), label=label, anchor=anchor,
                 words=frozenset(str(w).casefold() for w in raw.get("words") or []),
                 cohorts=cohorts, demo=dict(raw.get("demo") or {}), folder=str(folder))


def _entries(folder: Traversable) -> Iterable[Traversable]:
    return folder.iterdir() if folder.is_dir() else ()


def _vocabularies(file: _File, raw: Any, where: KeyPath) -> dict[str, Vocabulary]:
    found: dict[str, Vocabulary] = {}
    for name, terms in file.mapping(raw, where, set(map(str, raw))).items():
        here = where + (str(name),)
        parsed: dict[str, Term] = {}
        for term, spec in file.mapping(terms, here, set(map(str, terms))).items():
            at = here + (str(term),)
            spec = file.mapping(spec, at, set(map(str, spec)), {"code", "meaning"})
            _code_key(file, at + ("code",), spec["code"])
            parsed[str(term)] = Term(str(term), str(spec["code"]), str(spec["meaning"]),
                                     {k: v for k, v in spec.items() if k not in ("code",
                                                                                 "meaning")})
        found[str(name)] = Vocabulary(str(name), parsed)
    return found


def _code_key(file: _File, where: KeyPath, value: Any) -> str:
    """A ``SCHEME:VALUE`` key, checked against its scheme where pydicom knows the scheme:
    DICOM's own codes (DCM) must exist in PS3.16, SNOMED CT identifiers are digits."""
    text = str(value)
    scheme, _, code = text.partition(":")
    if not scheme or not code:
        raise file.error(where, f"codes are written SCHEME:VALUE, got {text!r}")
    if scheme == "DCM" and code not in _dicom_codes():
        raise file.error(where, f"{text} is not a DICOM code (PS3.16, as pydicom ships it)")
    if scheme == "SCT" and not code.isdigit():
        raise file.error(where, f"{text}: a SNOMED CT identifier is digits only")
    return text


@functools.lru_cache(maxsize=1)
def _dicom_codes() -> frozenset[str]:
    return frozenset(code for codes in concepts["DCM"].values() for code in codes)


def _syntax(file: _File, name: str, raw: Any) -> Syntax:
    spec = file.mapping(raw, ("syntaxes", name), {"pattern", "description"}, {"pattern"})
    return Syntax(name, str(spec["pattern"]), str(spec.get("description", name)))


_COLUMN_KEYS = {"kind", "required", "vocabulary", "unit", "min", "max", "syntax", "of"}


def _table(file: _File, name: str, raw: Any, vocabularies: dict[str, Vocabulary],
           syntaxes: dict[str, Syntax]) -> InputTable:
    where = ("inputs", name)
    spec = file.mapping(raw, where, {"columns", "lists_patients"}, {"columns"})
    columns: dict[str, Column] = {}
    for column, cspec in file.mapping(spec["columns"], where + ("columns",),
                                      set(map(str, spec["columns"]))).items():
        at = where + ("columns", str(column))
        cspec = file.mapping(cspec, at, _COLUMN_KEYS, {"kind"})
        kind = str(cspec["kind"])
        if kind not in COLUMN_KINDS:
            raise file.error(at + ("kind",), f"unknown kind {kind!r} (known: "
                                             f"{', '.join(COLUMN_KINDS)})")
        vocabulary = _named(file, at + ("vocabulary",), cspec.get("vocabulary"), vocabularies,
                            "vocabulary")
        if kind == "code" and vocabulary is None:
            raise file.error(at, "a code column needs a 'vocabulary'")
        syntax = _named(file, at + ("syntax",), cspec.get("syntax"), syntaxes, "syntax")
        columns[str(column)] = Column(
            str(column), kind, bool(cspec.get("required", False)), vocabulary,
            None if cspec.get("unit") is None else str(cspec["unit"]),
            _float(file, at + ("min",), cspec.get("min")),
            _float(file, at + ("max",), cspec.get("max")), syntax,
            None if cspec.get("of") is None else str(cspec["of"]))
    if "patient_id" not in columns or columns["patient_id"].kind != "id":
        raise file.error(where + ("columns",), "every table needs a 'patient_id' column of kind id")
    for column in columns.values():
        if column.kind == "unit" and (column.unit_of not in columns
                                      or columns[column.unit_of].kind != "number"):
            raise file.error(where + ("columns", column.name, "of"),
                             "a unit column names the number column it qualifies ('of')")
    return InputTable(name, columns, bool(spec.get("lists_patients", False)))


def _named(file: _File, where: KeyPath, name: Any, known: dict[str, Any], what: str) -> Any:
    if name is None:
        return None
    if str(name) not in known:
        raise file.error(where, f"unknown {what} {name!r} (declared: "
                                f"{', '.join(sorted(known)) or 'none'})")
    return known[str(name)]


def _float(file: _File, where: KeyPath, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise file.error(where, f"expected a number, got {value!r}")
    return float(value)


def _derived(file: _File, name: str, raw: Any, inputs: dict[str, InputTable]) -> Derived:
    where = ("derived", name)
    spec = file.mapping(raw, where, {"table", "column", "prefixes", "after", "days"},
                        {"table", "column", "prefixes"})
    table = _named(file, where + ("table",), spec["table"], inputs, "table")
    if str(spec["column"]) not in table.columns:
        raise file.error(where + ("column",), f"table {table.name!r} has no column "
                                              f"{spec['column']!r}")
    days = spec.get("days")
    if days is not None and (not isinstance(days, list) or len(days) != 2):
        raise file.error(where + ("days",), "expected [from, to] in whole days")
    return Derived(name, table.name, str(spec["column"]),
                   tuple(str(p) for p in spec["prefixes"]),
                   None if spec.get("after") is None else str(spec["after"]),
                   None if days is None else (int(days[0]), int(days[1])))


def _label_decl(file: _File, raw: Any, templates: list[Template]) -> LabelDecl | None:
    if raw is None:
        return None
    spec = file.mapping(raw, ("label",), {"template", "field", "positive", "negative", "name"},
                        {"template", "field", "positive", "negative"})
    template = next((t for t in templates if t.template == str(spec["template"])), None)
    if template is None or not any(n.field == spec["field"] for n in _walk(template.nodes)):
        raise file.error(("label",), f"template {spec['template']!r} declares no field "
                                     f"{spec['field']!r}")
    return LabelDecl(str(spec["template"]), str(spec["field"]), str(spec["positive"]),
                     str(spec["negative"]), str(spec.get("name") or spec["field"]))


# -- templates --------------------------------------------------------------------------------
_TEMPLATE_KEYS = {"template", "name", "identify", "root_meaning", "kind", "sop", "written_when",
                  "content", "procedure_reported", "groups", "vocabularies"}
_NODE_KEYS = {"concept", "meaning", "value_type", "relationship", "values", "vocabulary",
              "filter", "field", "anchor", "unit", "required", "from", "via", "value", "when",
              "children", "children_from"}


def template_from(file: _File, vocabularies: dict[str, Vocabulary],
                  inputs: dict[str, InputTable] | None = None) -> Template:
    """A template file, its vocabularies being the study's plus its own; ``inputs``: the
    study's tables, which a measurement report's groups are written from."""
    raw = file.mapping(file.data, (), _TEMPLATE_KEYS, {"template"})
    vocabularies = {**vocabularies, **_vocabularies(file, raw.get("vocabularies") or {},
                                                    ("vocabularies",))}
    identify = file.mapping(raw.get("identify") or {}, ("identify",), {"template_id", "root"})
    kind = str(raw.get("kind", "read"))
    if kind not in ("document", "measurement_report", "read"):
        raise file.error(("kind",), f"unknown kind {kind!r} (document, measurement_report, read)")
    sop = file.mapping(raw.get("sop") or {}, ("sop",),
                       {"class", "series_number", "series_description"})
    groups = tuple(_group(file, i, g) for i, g in enumerate(raw.get("groups") or []))
    procedure = raw.get("procedure_reported") or {}
    nodes = tuple(_node(file, item, (), ("content", str(i)), vocabularies)
                  for i, item in enumerate(raw.get("content") or []))
    if kind == "measurement_report":
        nodes = _measurement_report_nodes(file, groups, procedure, vocabularies, inputs or {})
    template = Template(
        template=str(raw["template"]), name=str(raw.get("name", "")),
        template_id=None if identify.get("template_id") is None else str(identify["template_id"]),
        root=None if identify.get("root") is None else str(identify["root"]),
        root_meaning=str(raw.get("root_meaning", "")), nodes=nodes, kind=kind,
        sop_class=str(sop.get("class", "comprehensive")),
        series_number=int(sop.get("series_number", 9000)),
        series_description=str(sop.get("series_description", raw.get("name", ""))),
        written_when=tuple(str(s) for s in raw.get("written_when") or []),
        procedure_reported=None if not procedure else str(procedure["code"]),
        procedure_meaning=str(procedure.get("meaning", "")), groups=groups, origin=file.label)
    if template.writes and (template.kind == "document" and not template.root_meaning):
        raise file.error(("root_meaning",), "a template srcohort writes names its root meaning")
    return template


def _node(file: _File, raw: Any, parent: tuple[str, ...], where: KeyPath,
          vocabularies: dict[str, Vocabulary]) -> Node:
    spec = file.mapping(raw, where, _NODE_KEYS, {"concept", "value_type"})
    concept = str(spec["concept"])          # "" for an item without a concept name
    if concept:
        _code_key(file, where + ("concept",), concept)
    value_type = str(spec["value_type"])
    if value_type not in VALUE_TYPES:
        raise file.error(where + ("value_type",), f"unknown value type {value_type!r}")
    if spec.get("filter") is not None and spec["filter"] not in FILTER_KINDS:
        raise file.error(where + ("filter",), f"unknown filter {spec['filter']!r} (known: "
                                              f"{', '.join(FILTER_KINDS)})")
    vocabulary = _named(file, where + ("vocabulary",), spec.get("vocabulary"), vocabularies,
                        "vocabulary")
    values = tuple(str(v) for v in spec.get("values") or ()) or (
        tuple(t.code for t in vocabulary.terms.values()) if vocabulary else ())
    path = parent + (concept,)
    children = [_node(file, child, path, where + ("children", str(i)), vocabularies)
                for i, child in enumerate(spec.get("children") or [])]
    if spec.get("children_from") is not None:
        terms = _named(file, where + ("children_from",), spec["children_from"], vocabularies,
                       "vocabulary")
        children += [_term_node(path, term, "quantitative") for term in terms.terms.values()]
    if spec.get("value") is not None:
        _code_key(file, where + ("value",), str(spec["value"]).split(" ", 1)[0])
    return Node(path=path, value_type=value_type, meaning=str(spec.get("meaning", "")),
                relationship=str(spec.get("relationship", "CONTAINS")), values=values,
                vocabulary=None if vocabulary is None else vocabulary.name,
                terms=_terms(vocabulary),
                filter=spec.get("filter"), field=spec.get("field"), anchor=spec.get("anchor"),
                unit=None if spec.get("unit") is None else str(spec["unit"]),
                required=bool(spec.get("required", False)),
                source=None if spec.get("from") is None else str(spec["from"]),
                via=spec.get("via"), value=None if spec.get("value") is None else str(spec["value"]),
                when=tuple(str(w) for w in spec.get("when") or ()), children=tuple(children))


def _terms(vocabulary: Vocabulary | None) -> tuple[tuple[str, str, str], ...]:
    return () if vocabulary is None else tuple((t.name, t.code, t.meaning)
                                               for t in vocabulary.terms.values())


def _term_node(parent: tuple[str, ...], term: Term, filter_kind: str) -> Node:
    """The NUM node a measurement term stands for: its concept, unit and field."""
    return Node(path=parent + (term.code,), value_type="NUM", meaning=term.meaning,
                filter=filter_kind, field=str(term.attributes.get("field", term.name)),
                unit=None if term.attributes.get("unit") is None else str(term.attributes["unit"]))


def _group(file: _File, index: int, raw: Any) -> GroupDecl:
    where = ("groups", str(index))
    spec = file.mapping(raw, where, {"table", "kind", "finding", "tracking", "coordinates",
                                     "measurement", "value", "unit", "numbers", "codes",
                                     "finding_site"}, {"table", "kind"})
    if spec["kind"] not in GROUP_KINDS:
        raise file.error(where + ("kind",), f"unknown group kind {spec['kind']!r} (known: "
                                            f"{', '.join(GROUP_KINDS)})")
    return GroupDecl(
        table=str(spec["table"]), kind=str(spec["kind"]), finding=spec.get("finding"),
        tracking=spec.get("tracking"), coordinates=tuple(spec.get("coordinates") or ()),
        measurement=spec.get("measurement"), value=spec.get("value"), unit=spec.get("unit"),
        numbers=tuple((str(c), str(t)) for c, t in (spec.get("numbers") or {}).items()),
        codes=tuple((str(c), str(t)) for c, t in (spec.get("codes") or {}).items()),
        finding_site=spec.get("finding_site"))


# TID 1500's fixed nodes (what highdicom's MeasurementReport writes around the groups).
_ROOT_CONTEXT = (("DCM:121049", "CODE", "Language of Content Item and Descendants"),
                 ("DCM:121005", "CODE", "Observer Type"),
                 ("DCM:121012", "UIDREF", "Device Observer UID"),
                 ("DCM:121013", "TEXT", "Device Observer Name"))
IMAGING_MEASUREMENTS = "DCM:126010"
MEASUREMENT_GROUP = "DCM:125007"
FINDING = "DCM:121071"
FINDING_SITE = "SCT:363698007"


def _measurement_report_nodes(file: _File, groups: tuple[GroupDecl, ...], procedure: Any,
                              vocabularies: dict[str, Vocabulary],
                              inputs: dict[str, InputTable]) -> tuple[Node, ...]:
    """The content nodes of a TID 1500 report with these groups: the fixed skeleton, and per
    group kind its finding, region, measurements (from vocabulary terms) and evaluations."""
    if not procedure:
        raise file.error(("procedure_reported",), "a measurement report names its procedure")
    group_path = (IMAGING_MEASUREMENTS, MEASUREMENT_GROUP)
    findings: list[tuple[str, str, str]] = []
    numbers: dict[str, Node] = {}
    extra: list[Node] = []

    def column_vocabulary(where: KeyPath, table: str, column: str | None) -> Vocabulary:
        found = inputs.get(table)
        declared = found.columns.get(str(column)) if found else None
        if declared is None or declared.vocabulary is None:
            raise file.error(where, f"table {table!r} has no coded column {column!r}")
        return declared.vocabulary

    for index, group in enumerate(groups):
        where = ("groups", str(index))
        if group.kind == "point":
            findings += _terms(column_vocabulary(where + ("finding",), group.table,
                                                 group.finding))
        elif group.kind == "measurements":
            terms = column_vocabulary(where + ("measurement",), group.table, group.measurement)
            sites = _named(file, where + ("finding",), group.finding, vocabularies, "vocabulary")
            for term in terms.terms.values():
                finding = str(term.attributes.get("finding"))
                if finding not in sites.terms:
                    raise file.error(where + ("finding",), f"measurement {term.name}: finding "
                                                           f"{finding!r} is no term of {sites.name}")
                findings += _terms(Vocabulary(sites.name, {finding: sites.terms[finding]}))
                numbers.setdefault(term.code, _term_node(group_path, term, "quantitative"))
        else:
            term = _term_ref(file, where + ("finding",), str(group.finding), vocabularies)
            findings.append((term.name, term.code, term.meaning))
            for column, term_ref in group.numbers:
                term = _term_ref(file, where + ("numbers", column), term_ref, vocabularies)
                numbers.setdefault(term.code, _term_node(group_path, term, "quantitative"))
            if group.finding_site is not None:
                sites = column_vocabulary(where + ("finding_site",), group.table,
                                          group.finding_site)
                extra.append(Node(path=group_path + (FINDING_SITE,), value_type="CODE",
                                  meaning="Finding Site", filter="qualitative",
                                  field=group.finding_site,
                                  values=tuple(t.code for t in sites.terms.values()),
                                  vocabulary=sites.name, terms=_terms(sites)))
            for column, term_ref in group.codes:
                term = _term_ref(file, where + ("codes", column), term_ref, vocabularies)
                values = column_vocabulary(where + ("codes", column), group.table, column)
                extra.append(Node(path=group_path + (term.code,), value_type="CODE",
                                  meaning=term.meaning, filter="qualitative",
                                  field=str(term.attributes.get("field", column)),
                                  values=tuple(t.code for t in values.terms.values()),
                                  vocabulary=values.name, terms=_terms(values)))
    children = (
        Node(group_path + ("DCM:112039",), "TEXT", "Tracking Identifier"),
        Node(group_path + ("DCM:112040",), "UIDREF", "Tracking Unique Identifier"),
        Node(group_path + (FINDING,), "CODE", "Finding", filter="qualitative", field="finding",
             values=tuple(dict.fromkeys(code for _, code, _ in findings)),
             terms=tuple(dict.fromkeys(findings))),
        Node(group_path + ("DCM:111030",), "SCOORD3D", "Image Region", filter="geometric"),
        *extra, *numbers.values())
    return (*(Node((concept,), value_type, meaning) for concept, value_type, meaning
              in _ROOT_CONTEXT),
            Node(("DCM:121058",), "CODE", "Procedure reported", values=(str(procedure["code"]),)),
            Node((IMAGING_MEASUREMENTS,), "CONTAINER", "Imaging Measurements", required=True,
                 children=(Node(group_path, "CONTAINER", "Measurement Group",
                                children=children),)))


def _term_ref(file: _File, where: KeyPath, ref: str, vocabularies: dict[str, Vocabulary]
              ) -> Term:
    """``vocabulary.TERM``: a term used as a concept (a measurement, an evaluation)."""
    name, _, term = ref.partition(".")
    vocabulary = _named(file, where, name, vocabularies, "vocabulary")
    if term not in vocabulary.terms:
        raise file.error(where, f"vocabulary {name!r} has no term {term!r}")
    return vocabulary.terms[term]


def _walk(nodes: Iterable[Node]) -> Iterable[Node]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def walk_nodes(template: Template) -> Iterable[Node]:
    """Every node of ``template``, depth first."""
    return _walk(template.nodes)


def _check_sources(template: Template, inputs: dict[str, InputTable],
                   derived: dict[str, Derived], vocabularies: dict[str, Vocabulary]) -> None:
    """Every node a template writes can be written: its source exists and holds what the
    node's value type needs, coded values come from the node's vocabulary."""
    problems: list[str] = []
    for node in _walk(template.nodes):
        for source in (node.source, *node.when, *template.written_when):
            if source is None:
                continue
            kind = source_kind(source, inputs, derived)
            if kind is None:
                problems.append(f"{'/'.join(node.path)}: unknown source {source!r}")
            elif source == node.source and node.value_type not in (
                    SOURCE_VALUE_TYPES.get(kind) or {DERIVED_PARTS.get(kind, "TEXT")}):
                problems.append(f"{'/'.join(node.path)}: a {node.value_type} node cannot be "
                                f"written from {source} ({kind})")
        if node.source and node.value_type == "CODE" and node.vocabulary is None:
            problems.append(f"{'/'.join(node.path)}: a CODE node written from {node.source} "
                            f"needs a vocabulary")
        if node.via and node.source:
            column = _column_of(node.source, inputs)
            terms = column.vocabulary.terms.values() if column and column.vocabulary else ()
            target = vocabularies.get(node.vocabulary or "")
            if target is None or any(str(t.attributes.get(node.via)) not in target.terms
                                     for t in terms):
                problems.append(f"{'/'.join(node.path)}: 'via: {node.via}' does not lead every "
                                f"term of {node.source} to a term of {node.vocabulary}")
    for group in template.groups:
        table = inputs.get(group.table)
        if table is None:
            problems.append(f"group of table {group.table!r}: no such input table")
            continue
        for column in (group.tracking, *group.coordinates, group.value, group.unit,
                       group.measurement, *(c for c, _ in group.numbers),
                       *(c for c, _ in group.codes), group.finding_site):
            if column is not None and column not in table.columns:
                problems.append(f"group of table {group.table!r}: no column {column!r}")
    if problems:
        raise StudyError(f"{template.origin}: template {template.template} cannot be written: "
                         + "; ".join(problems))


def source_kind(source: str, inputs: dict[str, InputTable], derived: dict[str, Derived]
                ) -> str | None:
    """What a node source holds: a column kind, ``date``/``exists`` of a derived fact,
    ``text`` for a table's listing or source, ``table`` for a whole table."""
    parts = source.split(".")
    if parts[0] == "derived":
        if len(parts) == 2 and parts[1] in derived:
            return "table"
        if len(parts) == 3 and parts[1] in derived and parts[2] in DERIVED_PARTS:
            return parts[2]
        return None
    table = inputs.get(parts[0])
    if table is None:
        return None
    if len(parts) == 1:
        return "table"
    if len(parts) == 2 and parts[1] in ("listing", "source"):
        return "text"
    column = table.columns.get(parts[1]) if len(parts) == 2 else None
    return None if column is None else column.kind


def _column_of(source: str, inputs: dict[str, InputTable]) -> Column | None:
    table, _, column = source.partition(".")
    return inputs[table].columns.get(column) if table in inputs else None


def _unique_fields(templates: list[Template], file: _File) -> None:
    for template in templates:
        seen: dict[str, str] = {}
        for node in _walk(template.nodes):
            if node.field is None:
                continue
            key = f"{node.value_type}"
            if node.field in seen and seen[node.field] != key:
                raise file.error(("templates",), f"template {template.template}: field "
                                                 f"{node.field!r} names nodes of two value types")
            seen[node.field] = key
