"""Cohort definitions (YAML/JSON) -> a validated expression tree.

A definition is a patient-level boolean expression (``all`` / ``any`` / ``not``) over two kinds
of leaves: ``series`` (the patient has a series with these properties) and ``annotation`` (the
patient has ONE annotation meeting every listed condition). docs/cohorts.md is the reference.
Every mistake is reported with its path before any query runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml


class CohortError(ValueError):
    """The definition is invalid; the message names where and why."""


@dataclass(frozen=True)
class CodeCondition:
    name: str
    values: tuple[str, ...] = ()          # empty: any value


@dataclass(frozen=True)
class NumberCondition:
    name: str
    min: float | None = None
    max: float | None = None
    unit: str | None = None


@dataclass(frozen=True)
class SeriesCondition:
    modalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnnotationCondition:
    template: str | None = None
    title: str | None = None
    codes: tuple[CodeCondition, ...] = ()
    numbers: tuple[NumberCondition, ...] = ()


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


def load_cohort(source: Path | str | dict) -> Cohort:
    """Parse a definition from a file path, YAML text or an already-loaded mapping."""
    if isinstance(source, dict):
        raw = source
    else:
        text = source.read_text("utf-8") if isinstance(source, Path) else source
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CohortError(f"cohort definition is not valid YAML: {exc}") from exc
    _expect_keys(raw, "cohort", required={"name", "patients"}, optional={"description"})
    return Cohort(name=str(raw["name"]), description=str(raw.get("description", "")),
                  patients=_expr(raw["patients"], "patients"), source=raw)


def _expr(raw: Any, path: str) -> Expr:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise CohortError(f"{path}: expected exactly one of all/any/not/series/annotation")
    (key, value), = raw.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise CohortError(f"{path}.{key}: expected a non-empty list")
        return BoolExpr(key, tuple(_expr(v, f"{path}.{key}[{i}]") for i, v in enumerate(value)))
    if key == "not":
        return BoolExpr("not", (_expr(value, f"{path}.not"),))
    if key == "series":
        _expect_keys(value, f"{path}.series", optional={"modality"})
        return SeriesCondition(_strings(value.get("modality"), f"{path}.series.modality"))
    if key == "annotation":
        return _annotation(value, f"{path}.annotation")
    raise CohortError(f"{path}: unknown condition '{key}' (known: all, any, not, series, "
                      f"annotation)")


def _annotation(raw: Any, path: str) -> AnnotationCondition:
    _expect_keys(raw, path, optional={"template", "title", "codes", "numbers"})
    if not raw:
        raise CohortError(f"{path}: needs at least one of template, title, codes, numbers")
    codes = []
    for i, item in enumerate(_list(raw.get("codes"), f"{path}.codes")):
        where = f"{path}.codes[{i}]"
        _expect_keys(item, where, required={"name"}, optional={"value"})
        codes.append(CodeCondition(_code(item["name"], f"{where}.name"),
                                   tuple(_code(v, f"{where}.value")
                                         for v in _strings(item.get("value"), f"{where}.value"))))
    numbers = []
    for i, item in enumerate(_list(raw.get("numbers"), f"{path}.numbers")):
        where = f"{path}.numbers[{i}]"
        _expect_keys(item, where, required={"name"}, optional={"min", "max", "unit"})
        bounds = [_number(item.get(k), f"{where}.{k}") for k in ("min", "max")]
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            raise CohortError(f"{where}: min {bounds[0]} is greater than max {bounds[1]}")
        numbers.append(NumberCondition(_code(item["name"], f"{where}.name"), *bounds,
                                       unit=str(item["unit"]) if "unit" in item else None))
    return AnnotationCondition(template=_opt_str(raw.get("template")),
                               title=_code(raw["title"], f"{path}.title") if "title" in raw
                               else None, codes=tuple(codes), numbers=tuple(numbers))


def _expect_keys(raw: Any, path: str, *, required: set[str] = frozenset(),
                 optional: set[str] = frozenset()) -> None:
    if not isinstance(raw, dict):
        raise CohortError(f"{path}: expected a mapping, got {type(raw).__name__}")
    missing = required - raw.keys()
    unknown = raw.keys() - required - optional
    if missing:
        raise CohortError(f"{path}: missing {', '.join(sorted(missing))}")
    if unknown:
        raise CohortError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                          f"(known: {', '.join(sorted(required | optional))})")


def _list(raw: Any, path: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise CohortError(f"{path}: expected a list")
    return raw


def _strings(raw: Any, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    values = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(v, (str, int)) for v in values):
        raise CohortError(f"{path}: expected a string or a list of strings")
    return tuple(str(v) for v in values)


def _code(raw: Any, path: str) -> str:
    text = str(raw)
    scheme, _, value = text.partition(":")
    if not scheme or not value:
        raise CohortError(f"{path}: codes are written SCHEME:VALUE (e.g. SCT:63467002), "
                          f"got {text!r}")
    return text


def _number(raw: Any, path: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise CohortError(f"{path}: expected a number, got {raw!r}")
    return float(raw)


def _opt_str(raw: Any) -> str | None:
    return None if raw is None else str(raw)
