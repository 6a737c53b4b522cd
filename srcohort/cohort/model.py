"""The validated expression tree of a cohort definition.

Two consumers read it: the compiler (``query.py``, OpenSearch) and the brute-force evaluator
(``tests/bruteforce.py``, plain Python over the source files). Keeping the tree free of either is
what lets one check the other. docs/cohorts.md is the reference for the meaning of each field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Union

Scalar = Union[str, float, int]


@dataclass(frozen=True)
class Window:
    """The object's study date lies ``min_days``..``max_days`` (inclusive) from ``event``."""

    event: str
    min_days: int | None = None
    max_days: int | None = None


@dataclass(frozen=True)
class AttributeCondition:
    """A Kaapana-style DICOM field of a series: one of ``values``, or within ``min``..``max``."""

    name: str
    kind: str                             # "keyword" | "number" | "date" (from the field suffix)
    values: tuple[Scalar, ...] = ()
    min: Scalar | None = None
    max: Scalar | None = None


@dataclass(frozen=True)
class CodeCondition:
    name: str | None = None
    values: tuple[str, ...] = ()          # empty: any value


@dataclass(frozen=True)
class NumberCondition:
    name: str | None = None
    min: float | None = None
    max: float | None = None
    unit: str | None = None               # bounds are in this unit; convertible units match


@dataclass(frozen=True)
class TextCondition:
    name: str | None = None
    contains: str = ""                    # case-sensitive substring


@dataclass(frozen=True)
class DateCondition:
    name: str | None = None
    min: str | None = None                # ISO dates, inclusive
    max: str | None = None


@dataclass(frozen=True)
class FieldCondition:
    """A field a template declares (``field`` in its declaration), by name: one of ``values``
    (codes), or within ``min``..``max`` (numbers in the field's declared unit, ISO dates)."""

    name: str
    values: tuple[str, ...] = ()
    min: float | str | None = None
    max: float | str | None = None


@dataclass(frozen=True)
class SegmentCondition:
    number: int | None = None
    label: str | None = None
    category: str | None = None
    type: str | None = None
    algorithm_type: str | None = None


@dataclass(frozen=True)
class SeriesCondition:
    modalities: tuple[str, ...] = ()
    attributes: tuple[AttributeCondition, ...] = ()
    within: Window | None = None
    at_least: int = 1


@dataclass(frozen=True)
class AnnotationCondition:
    kinds: tuple[str, ...] = ()
    template: str | None = None
    title: str | None = None
    codes: tuple[CodeCondition, ...] = ()
    numbers: tuple[NumberCondition, ...] = ()
    texts: tuple[TextCondition, ...] = ()
    dates: tuple[DateCondition, ...] = ()
    segments: tuple[SegmentCondition, ...] = ()
    fields: tuple[FieldCondition, ...] = ()
    within: Window | None = None
    at_least: int = 1


@dataclass(frozen=True)
class BoolExpr:
    op: str                               # "all" | "any" | "not"
    children: tuple["Expr", ...]


Expr = Union[BoolExpr, SeriesCondition, AnnotationCondition]


@dataclass(frozen=True)
class Cohort:
    name: str
    description: str
    patients: Expr
    source: dict = field(default_factory=dict, compare=False)

    @property
    def criteria(self) -> list[Expr]:
        """The criteria an attrition funnel applies one after another: the top-level ``all``'s
        children (a definition of any other shape is one criterion)."""
        expr = self.patients
        return list(expr.children) if isinstance(expr, BoolExpr) and expr.op == "all" else [expr]

    @property
    def digest(self) -> str:
        """SHA-256 of the definition in canonical JSON: equal at every site that runs the same
        cohort, whatever its YAML layout or comments, so results can be matched to it."""
        canonical = json.dumps(self.source, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
