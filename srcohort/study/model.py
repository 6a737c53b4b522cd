"""A study as declared data: its input tables, vocabularies, SR templates, label and anchor.

One declaration serves both directions. The converter reads what each input column holds and
which template node it fills; the index reads which node is filterable under which field name;
the cohort language, the federated aggregates and the training export read the same fields,
vocabularies and label. Nothing here knows any particular study: every question is a folder of YAML (``srcohort/studies/<name>/``) loaded by ``srcohort.study.load``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydicom.sr.coding import Code

COLUMN_KINDS = ("id", "date", "number", "code", "text", "unit", "path")
VALUE_TYPES = ("CONTAINER", "CODE", "NUM", "TEXT", "DATE", "DATETIME", "TIME", "UIDREF", "PNAME",
               "SCOORD", "SCOORD3D", "TCOORD", "IMAGE", "WAVEFORM", "COMPOSITE")
FILTER_KINDS = ("qualitative", "quantitative", "geometric", "text", "date")


def code_of(key: str, meaning: str) -> Code:
    """``SCHEME:VALUE`` and a meaning as a pydicom ``Code``."""
    scheme, _, value = key.partition(":")
    return Code(value, scheme, meaning)


@dataclass(frozen=True)
class Term:
    """One canonical value of a vocabulary: its code, and attributes other nodes read
    (a device model's ``family``, a measurement's ``unit`` and ``finding``)."""

    name: str
    code: str                                   # SCHEME:VALUE
    meaning: str
    attributes: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @cached_property
    def concept(self) -> Code:
        return code_of(self.code, self.meaning)


@dataclass(frozen=True)
class Vocabulary:
    name: str
    terms: dict[str, Term]

    def by_code(self, code: str) -> Term | None:
        return next((t for t in self.terms.values() if t.code == code), None)


@dataclass(frozen=True)
class Syntax:
    """What every value of a text column looks like, e.g. the codes of a classification."""

    name: str
    pattern: str
    description: str

    def matches(self, value: str) -> bool:
        return re.fullmatch(self.pattern, value) is not None


@dataclass(frozen=True)
class Column:
    """One input column: its kind and the rules a value must meet."""

    name: str
    kind: str
    required: bool = False
    vocabulary: Vocabulary | None = None        # code
    unit: str | None = None                     # number: the unit values are stored in
    min: float | None = None                    # number: inclusive range, in ``unit``
    max: float | None = None
    syntax: Syntax | None = None                # text
    unit_of: str | None = None                  # unit: the number column it qualifies


@dataclass(frozen=True)
class InputTable:
    """A table sites export: one row per patient (``lists_patients``) or per event/finding."""

    name: str
    columns: dict[str, Column]
    lists_patients: bool = False

    @property
    def required(self) -> set[str]:
        return {name for name, column in self.columns.items() if column.required}


@dataclass(frozen=True)
class Derived:
    """A per-patient fact derived from a table's rows: the first row whose ``column`` starts
    with one of ``prefixes`` (optionally within ``days`` after another derived fact)."""

    name: str
    table: str
    column: str
    prefixes: tuple[str, ...]
    after: str | None = None
    days: tuple[int, int] | None = None


@dataclass(frozen=True)
class Node:
    """A content node of an SR template: what it is, how it is filtered, where its value comes
    from when srcohort writes it."""

    path: tuple[str, ...]                       # concept keys from the root
    value_type: str
    meaning: str = ""
    relationship: str = "CONTAINS"
    values: tuple[str, ...] = ()                # allowed coded values (SCHEME:VALUE)
    vocabulary: str | None = None               # the vocabulary ``values`` come from
    terms: tuple[tuple[str, str, str], ...] = ()  # its terms: (canonical name, code, meaning)
    filter: str | None = None
    field: str | None = None
    anchor: str | None = None
    unit: str | None = None
    required: bool = False
    source: str | None = None                   # ``from``: table.column, derived.x.y, ...
    via: str | None = None                      # a term attribute naming another term
    value: str | None = None                    # a constant coded value
    when: tuple[str, ...] = ()                  # sources: the node exists when any has a value
    children: tuple["Node", ...] = ()

    @property
    def concept(self) -> str:
        return self.path[-1]


@dataclass(frozen=True)
class GroupDecl:
    """How a TID 1500 measurement report's groups come from table rows."""

    table: str
    kind: str                                   # point | measurements | row
    finding: str | None = None                  # point/row: column or constant term of the finding
    tracking: str | None = None                 # column naming the group (tracking identifier)
    coordinates: tuple[str, ...] = ()           # point: x, y, z columns (patient LPS, mm)
    measurement: str | None = None              # measurements: column of the measurement term
    value: str | None = None                    # measurements: number column
    unit: str | None = None                     # measurements: the site's unit column
    numbers: tuple[tuple[str, str], ...] = ()   # row: (column, vocabulary term) per NUM
    codes: tuple[tuple[str, str], ...] = ()     # row: (column, concept term) per CODE
    finding_site: str | None = None             # row: column of the finding site


@dataclass(frozen=True)
class Template:
    """An SR template: how an SR is recognised (``identify``), its content nodes (read and
    written), and for templates srcohort writes from tables: the SOP, the evidence and when one
    is written."""

    template: str
    name: str
    template_id: str | None
    root: str | None                            # root concept key
    root_meaning: str
    nodes: tuple[Node, ...]
    kind: str = "document"                      # document | measurement_report | read
    sop_class: str = "comprehensive"            # comprehensive | comprehensive3d
    series_number: int = 9000
    series_description: str = ""
    written_when: tuple[str, ...] = ()          # sources: written for a patient when any is present
    procedure_reported: str | None = None       # measurement_report: SCHEME:VALUE
    procedure_meaning: str = ""
    groups: tuple[GroupDecl, ...] = ()
    origin: str = ""                            # the file it was declared in

    @property
    def writes(self) -> bool:
        return self.kind in ("document", "measurement_report")


@dataclass(frozen=True)
class LabelDecl:
    """The binary label a training export predicts: a coded field of one template."""

    template: str
    field: str
    positive: str                               # SCHEME:VALUE
    negative: str
    name: str = ""                              # what tables and plots call it


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    vocabularies: dict[str, Vocabulary]
    inputs: dict[str, InputTable]
    derived: dict[str, Derived]
    templates: tuple[Template, ...]
    label: LabelDecl | None
    anchor: str | None                          # the event exports count days from
    words: frozenset[str] = frozenset()         # descriptor words de-identification keeps
    cohorts: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    demo: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    folder: str = ""

    def template_named(self, template: str) -> Template:
        return next(t for t in self.templates if t.template == template)
