"""Cohort definitions (YAML/JSON) -> a validated expression tree (``model.py``).

A definition is a patient-level boolean expression (``all`` / ``any`` / ``not``) over two kinds
of leaves: ``series`` (the patient has a series with these properties) and ``annotation`` (the
patient has ONE annotation meeting every listed condition). docs/cohorts.md is the reference.
Every mistake is reported with its path before any query runs: a typo that silently matched
nobody would look like a finding.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from srcohort import units
from srcohort.cohort.model import (AnnotationCondition, AttributeCondition, BoolExpr,
                                   CodeCondition, Cohort, DateCondition, Expr, FieldCondition,
                                   NumberCondition, Scalar, SegmentCondition, SeriesCondition,
                                   TextCondition, Window)
from srcohort.index.mapping import SUMMARY_ATTRIBUTES, field_suffix
from srcohort.sr.profiles import default_profiles
from srcohort.study.model import Node

T = TypeVar("T")
# Bounds that keep a definition a cohort, not a denial of service: nesting far beyond what a
# person writes, and more values in one list than OpenSearch's terms query takes (65536).
MAX_DEPTH = 32
MAX_VALUES = 10_000
ATTRIBUTE_KINDS = {"integer": "integer", "float": "number", "date": "date"}   # else keyword


class CohortError(ValueError):
    """The definition is invalid; the message names where and why."""


def load_cohort(source: Path | str | dict) -> Cohort:
    """Parse a definition from a file path, YAML text or an already-loaded mapping."""
    if isinstance(source, dict):
        raw = source
    else:
        text = source.read_text("utf-8") if isinstance(source, Path) else source
        try:
            raw = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError) as exc:   # ValueError: e.g. a date 2020-13-01
            raise CohortError(f"cohort definition is not valid YAML: {exc}") from exc
        except RecursionError:
            raise CohortError(f"cohort definition is nested too deeply (more than "
                              f"{MAX_DEPTH} levels are refused)") from None
    _expect_keys(raw, "cohort", required={"name", "patients"}, optional={"description"})
    return Cohort(name=str(raw["name"]), description=str(raw.get("description", "")),
                  patients=_expr(raw["patients"], "patients"), source=raw)


def known_events() -> tuple[str, ...]:
    """Events the installed SR templates declare (``anchor``), the only ones ``within`` knows."""
    return tuple(sorted({name for profile in default_profiles() for name in profile.anchors}))


def _expr(raw: Any, path: str, depth: int = 1) -> Expr:
    if depth > MAX_DEPTH:
        raise CohortError(f"{path}: nested more than {MAX_DEPTH} levels deep")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise CohortError(f"{path}: expected exactly one of all/any/not/series/annotation")
    (key, value), = raw.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise CohortError(f"{path}.{key}: expected a non-empty list")
        _bounded(value, f"{path}.{key}")
        return BoolExpr(key, tuple(_expr(v, f"{path}.{key}[{i}]", depth + 1)
                                   for i, v in enumerate(value)))
    if key == "not":
        return BoolExpr("not", (_expr(value, f"{path}.not", depth + 1),))
    if key == "series":
        return _series(value, f"{path}.series")
    if key == "annotation":
        return _annotation(value, f"{path}.annotation")
    raise CohortError(f"{path}: unknown condition '{key}' (known: all, any, not, series, "
                      f"annotation)")


def _series(raw: Any, path: str) -> SeriesCondition:
    _expect_keys(raw, path, optional={"modality", "attributes", "within", "at_least"})
    attributes = raw.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise CohortError(f"{path}.attributes: expected a mapping of DICOM field to value")
    return SeriesCondition(
        modalities=_strings(raw.get("modality"), f"{path}.modality"),
        attributes=tuple(_attribute(name, value, f"{path}.attributes[{name!r}]")
                         for name, value in attributes.items()),
        within=_window(raw.get("within"), f"{path}.within"),
        at_least=_at_least(raw.get("at_least", 1), f"{path}.at_least"))


def _attribute(name: Any, raw: Any, path: str) -> AttributeCondition:
    if name not in SUMMARY_ATTRIBUTES:
        raise CohortError(f"{path}: not a filterable series attribute (known: "
                          f"{', '.join(SUMMARY_ATTRIBUTES)})")
    kind = ATTRIBUTE_KINDS.get(field_suffix(name), "keyword")
    if isinstance(raw, dict):
        _expect_keys(raw, path, optional={"min", "max"})
        if kind == "keyword" or not raw:
            raise CohortError(f"{path}: min/max need a numeric or date attribute and a bound")
        low, high = (_scalar(raw.get(k), kind, f"{path}.{k}") for k in ("min", "max"))
        _ordered(low, high, path)
        return AttributeCondition(name, kind, min=low, max=high)
    values = _bounded(raw, path) if isinstance(raw, list) else [raw]
    if not values:
        raise CohortError(f"{path}: expected a value, a list of values or {{min, max}}")
    return AttributeCondition(name, kind, tuple(_scalar(v, kind, f"{path}[{i}]")
                                                for i, v in enumerate(values)))


def _annotation(raw: Any, path: str) -> AnnotationCondition:
    _expect_keys(raw, path, optional={"kind", "template", "title", "codes", "numbers", "texts",
                                      "dates", "segments", "fields", "within", "at_least"})
    template = None if raw.get("template") is None else str(raw["template"])
    fields = raw.get("fields") or {}
    if not isinstance(fields, dict):
        raise CohortError(f"{path}.fields: expected a mapping of field name to condition")
    return AnnotationCondition(
        kinds=_strings(raw.get("kind"), f"{path}.kind"),
        template=None if raw.get("template") is None else str(raw["template"]),
        title=_code(raw["title"], f"{path}.title") if "title" in raw else None,
        codes=tuple(_items(raw, "codes", path, _code_condition)),
        numbers=tuple(_items(raw, "numbers", path, _number_condition)),
        texts=tuple(_items(raw, "texts", path, _text_condition)),
        dates=tuple(_items(raw, "dates", path, _date_condition)),
        segments=tuple(_items(raw, "segments", path, _segment_condition)),
        fields=tuple(_field_condition(str(name), value, f"{path}.fields.{name}", template)
                     for name, value in fields.items()),
        within=_window(raw.get("within"), f"{path}.within"),
        at_least=_at_least(raw.get("at_least", 1), f"{path}.at_least"))


def declared_fields(template: str | None = None) -> dict[str, list[Node]]:
    """Field name -> the nodes the active study's templates (and the standard ones) declare
    under it; only ``template``'s when given."""
    found: dict[str, list[Node]] = {}
    for profile in default_profiles():
        if template is None or profile.template == template:
            for node in profile.fields.values():
                found.setdefault(str(node.field), []).append(node)
    return found


def _field_condition(name: str, raw: Any, path: str, template: str | None) -> FieldCondition:
    """``fields: {diabetes: "yes", size: {min: 26, unit: mm}}``: values by their
    canonical names (or codes), numbers with bounds in any unit of the field's dimension."""
    nodes = declared_fields(template).get(name)
    if not nodes:
        known = sorted(declared_fields(template))
        raise CohortError(f"{path}: no template{f' {template}' if template else ''} declares a "
                          f"field {name!r} (declared: {', '.join(known)})")
    kinds = {node.value_type for node in nodes}
    if len(kinds) > 1:
        raise CohortError(f"{path}: field {name!r} is declared as {' and '.join(sorted(kinds))} "
                          f"by different templates; name the template")
    (kind,) = kinds
    if kind == "CODE":
        terms = {term: code for node in nodes for term, code, _ in node.terms}
        allowed = {code for node in nodes for code in node.values}
        values = _strings(raw, path)
        unknown = [v for v in values if v not in terms and v not in allowed]
        if unknown or not values:
            raise CohortError(f"{path}: {', '.join(map(repr, unknown)) or 'no value'} is not a "
                              f"value of field {name!r} (values: "
                              f"{', '.join(sorted(terms) or sorted(allowed))})")
        return FieldCondition(name, tuple(terms.get(v, v) for v in values))
    if not isinstance(raw, dict):
        raise CohortError(f"{path}: a {kind} field takes {{min, max}}, got {raw!r}")
    if kind == "NUM":
        _expect_some(raw, path, {"min", "max", "unit"})
        units_ = {node.unit for node in nodes}
        low, high = (_number(raw.get(k), f"{path}.{k}") for k in ("min", "max"))
        if raw.get("unit") is not None:
            (declared,) = units_ if len(units_) == 1 else (None,)
            factor = units.factor(str(raw["unit"]), str(declared)) if declared else None
            if factor is None:
                raise CohortError(f"{path}.unit: {raw['unit']!r} cannot be converted to the "
                                  f"field's unit {' or '.join(sorted(map(str, units_)))}")
            low, high = (None if b is None else float(Fraction(repr(b)) * factor)
                         for b in (low, high))
        _ordered(low, high, path)
        return FieldCondition(name, min=low, max=high)
    if kind == "DATE":
        _expect_some(raw, path, {"min", "max"})
        low, high = (_scalar(raw.get(k), "date", f"{path}.{k}") for k in ("min", "max"))
        _ordered(low, high, path)
        return FieldCondition(name, min=low, max=high)
    raise CohortError(f"{path}: {kind} fields are not filtered by value here (use texts)")


def _items(raw: dict, key: str, path: str, parse: Callable[[Any, str], T]) -> list[T]:
    return [parse(item, f"{path}.{key}[{i}]")
            for i, item in enumerate(_list(raw.get(key), f"{path}.{key}"))]


def _code_condition(raw: Any, path: str) -> CodeCondition:
    _expect_some(raw, path, {"name", "value"})
    return CodeCondition(_opt_code(raw.get("name"), f"{path}.name"),
                         tuple(_code(v, f"{path}.value")
                               for v in _strings(raw.get("value"), f"{path}.value")))


def _number_condition(raw: Any, path: str) -> NumberCondition:
    _expect_some(raw, path, {"name", "min", "max", "unit"})
    low, high = (_number(raw.get(k), f"{path}.{k}") for k in ("min", "max"))
    _ordered(low, high, path)
    return NumberCondition(_opt_code(raw.get("name"), f"{path}.name"), low, high,
                           unit=None if raw.get("unit") is None else str(raw["unit"]))


def _text_condition(raw: Any, path: str) -> TextCondition:
    _expect_keys(raw, path, required={"contains"}, optional={"name"})
    if not isinstance(raw["contains"], str) or not raw["contains"]:
        raise CohortError(f"{path}.contains: expected a non-empty string")
    return TextCondition(_opt_code(raw.get("name"), f"{path}.name"), raw["contains"])


def _date_condition(raw: Any, path: str) -> DateCondition:
    _expect_some(raw, path, {"name", "min", "max"})
    low, high = (_scalar(raw.get(k), "date", f"{path}.{k}") for k in ("min", "max"))
    _ordered(low, high, path)
    return DateCondition(_opt_code(raw.get("name"), f"{path}.name"), low, high)


def _segment_condition(raw: Any, path: str) -> SegmentCondition:
    _expect_some(raw, path, {"number", "label", "category", "type", "algorithm_type"})
    number = raw.get("number")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        raise CohortError(f"{path}.number: expected an integer, got {number!r}")
    return SegmentCondition(
        number=number,
        label=None if raw.get("label") is None else str(raw["label"]),
        category=_opt_code(raw.get("category"), f"{path}.category"),
        type=_opt_code(raw.get("type"), f"{path}.type"),
        algorithm_type=None if raw.get("algorithm_type") is None
        else str(raw["algorithm_type"]).upper())


def _window(raw: Any, path: str) -> Window | None:
    if raw is None:
        return None
    _expect_keys(raw, path, required={"event", "days"})
    event = str(raw["event"])
    if event not in known_events():
        raise CohortError(f"{path}.event: unknown event {event!r} (known: "
                          f"{', '.join(known_events()) or 'none'})")
    days = raw["days"]
    if not isinstance(days, list) or len(days) != 2 or days == [None, None] or any(
            d is not None and (isinstance(d, bool) or not isinstance(d, int)) for d in days):
        raise CohortError(f"{path}.days: expected [from, to] in whole days relative to the "
                          f"event (one of them may be null: open-ended), got {days!r}")
    _ordered(days[0], days[1], f"{path}.days")
    return Window(event, days[0], days[1])


def _at_least(raw: Any, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise CohortError(f"{path}: expected a whole number >= 1, got {raw!r}")
    return raw


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


def _expect_some(raw: Any, path: str, keys: set[str]) -> None:
    """Known keys only, and at least one: an empty item condition is almost always a slip."""
    _expect_keys(raw, path, optional=keys)
    if not any(raw.get(k) is not None for k in keys):
        raise CohortError(f"{path}: needs at least one of {', '.join(sorted(keys))}")


def _ordered(low: Any, high: Any, path: str) -> None:
    if low is not None and high is not None and low > high:
        raise CohortError(f"{path}: min {low} is greater than max {high}")


def _list(raw: Any, path: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise CohortError(f"{path}: expected a list")
    return _bounded(raw, path)


def _bounded(values: list, path: str) -> list:
    if len(values) > MAX_VALUES:
        raise CohortError(f"{path}: {len(values)} entries; at most {MAX_VALUES} are allowed "
                          f"in one list")
    return values


def _strings(raw: Any, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    values = _bounded(raw, path) if isinstance(raw, list) else [raw]
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise CohortError(f"{path}: expected a string or a list of strings")
    return tuple(str(v) for v in values)


def _code(raw: Any, path: str) -> str:
    text = str(raw)
    scheme, _, value = text.partition(":")
    if not scheme or not value:
        raise CohortError(f"{path}: codes are written SCHEME:VALUE (e.g. SCT:63467002), "
                          f"got {text!r}")
    return text


def _opt_code(raw: Any, path: str) -> str | None:
    return None if raw is None else _code(raw, path)


def _number(raw: Any, path: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise CohortError(f"{path}: expected a number, got {raw!r}")
    return float(raw)


def _scalar(raw: Any, kind: str, path: str) -> Scalar | None:
    """A value of an attribute kind: whole number, number, ISO date (YAML dates too) or text."""
    if raw is None:
        return None
    if kind == "integer":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise CohortError(f"{path}: expected a whole number, got {raw!r}")
        return raw
    if kind == "number":
        return _number(raw, path)
    if kind == "date":
        if isinstance(raw, dt.date):
            return raw.isoformat()
        try:
            return dt.date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            raise CohortError(f"{path}: expected a date YYYY-MM-DD, got {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise CohortError(f"{path}: expected a text value, got {raw!r}")
    return str(raw)
