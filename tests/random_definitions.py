"""Random cohort definitions drawn from the data's own vocabulary, to test the compiler.

Random codes from a code system would almost never match anything, and a test where every
answer is "nobody" proves little. So each leaf starts from an object that exists: a series or
annotation of a random patient, its codes, numbers with their units, texts, dates, segments,
attributes and offsets from events. Then the draw bends it: a value taken from a *different*
item or annotation of the same patient (what a flattened index wrongly combines), bounds just
inside or just outside a value, the bound converted into another unit, windows ending exactly
on an offset, values that exist nowhere, counts, and AND/OR/NOT around it all.

The output is plain definitions (dicts as YAML would give), so they pass through the same
validation as a user's file.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, Mapping, Sequence

from tests.bruteforce import Dated, PatientFacts
from srcohort.cohort.definition import declared_fields
from srcohort.units import equivalent_ranges
from srcohort.index.mapping import SUMMARY_ATTRIBUTES, field_suffix

ABSENT_CODE = "99SRCOHORT:ABSENT"
ABSENT_TEXT = "never in any text"
ABSENT_MODALITIES = ("XA", "NM", "PT")
SEGMENT_KEYS = ("number", "label", "category", "type", "algorithm_type")


class RandomDefinitions:
    """A seeded generator of valid definitions over ``patients`` (see the module docstring)."""

    def __init__(self, patients: Mapping[str, PatientFacts], events: Sequence[str],
                 seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.patients = [patients[key] for key in sorted(patients)]
        self.events = list(events)
        self.modalities = sorted({s.modality for p in self.patients for s in p.series})
        self.declared = declared_fields()

    def definitions(self, count: int) -> list[dict[str, Any]]:
        return [{"name": f"random-{i}", "patients": self.expr(0)} for i in range(count)]

    def expr(self, depth: int, patient: PatientFacts | None = None) -> dict[str, Any]:
        """A subtree; leaves below mostly describe ``patient`` so conjunctions can hold."""
        rng = self.rng
        if patient is None or rng.random() < 0.3:
            patient = rng.choice(self.patients)
        draw = rng.random()
        if depth >= 3 or draw < 0.45:
            return self.leaf(patient)
        if draw < 0.6:
            return {"not": self.expr(depth + 1, patient)}
        children = [self.expr(depth + 1, patient) for _ in range(rng.randint(2, 3))]
        return {rng.choice(("all", "any")): children}

    def leaf(self, patient: PatientFacts) -> dict[str, Any]:
        if not patient.annotations or self.rng.random() < 0.35:
            return {"series": self.series(patient)}
        return {"annotation": self.annotation(patient)}

    # -- series ---------------------------------------------------------------------------

    def series(self, patient: PatientFacts) -> dict[str, Any]:
        rng = self.rng
        own, other = rng.choice(patient.series), rng.choice(patient.series)
        cond: dict[str, Any] = {}
        if rng.random() < 0.7:
            cond["modality"] = self._modality(own, other)
        if rng.random() < 0.45:
            source = own if rng.random() < 0.6 else other
            names = [n for n in SUMMARY_ATTRIBUTES if n in source.content]
            picked = rng.sample(names, k=min(len(names), rng.randint(1, 2)))
            cond["attributes"] = {n: self._attribute(n, source.content[n]) for n in picked}
        self._maybe_window(cond, own if rng.random() < 0.7 else other, 0.3)
        self._maybe_count(cond)
        return cond

    def _modality(self, own: Dated, other: Dated) -> Any:
        draw = self.rng.random()
        if draw < 0.1:
            return self.rng.choice(ABSENT_MODALITIES)
        if draw < 0.25:
            return sorted({own.modality, other.modality, self.rng.choice(self.modalities)})
        return own.modality

    def _attribute(self, name: str, stored: Any) -> Any:
        rng = self.rng
        value = rng.choice(stored) if isinstance(stored, list) else stored
        suffix = field_suffix(name)
        if suffix in ("integer", "float"):
            step = 1 if suffix == "integer" else rng.choice((0.5, 1.0, 2.5))
            return rng.choice(({"min": value}, {"max": value}, {"min": value - step, "max": value},
                               {"min": value + step}, value, [value, value + step]))
        if suffix == "date":
            day = dt.date.fromisoformat(value)
            shift = dt.timedelta(days=rng.choice((0, 1, 30, 400)))
            return rng.choice(({"min": (day - shift).isoformat()}, {"max": value},
                               {"min": (day + shift).isoformat()}, value,
                               {"min": (day - shift).isoformat(), "max": (day + shift).isoformat()}))
        return rng.choice((value, value, [value, "ABSENT"], "ABSENT"))

    # -- annotations ----------------------------------------------------------------------

    def annotation(self, patient: PatientFacts) -> dict[str, Any]:
        rng = self.rng
        own, other = rng.choice(patient.annotations), rng.choice(patient.annotations)
        mixed = rng.random() < 0.3          # conditions drawn from two annotations and items
        cond: dict[str, Any] = {}
        pick = (lambda: other.content if mixed and rng.random() < 0.5 else own.content)
        if rng.random() < 0.15:
            cond["kind"] = pick()["kind"]
        if rng.random() < 0.25:
            cond["template"] = pick()["template"]
        title = pick()["title"]
        if title and rng.random() < 0.25:
            cond["title"] = title
        for key, draw, most in (("codes", self._code, 3), ("numbers", self._number, 2),
                                ("texts", self._text, 1), ("dates", self._date, 1),
                                ("segments", self._segment, 2)):
            sources = [pick().get(key) for _ in range(rng.randint(0, most))]
            items = [item for item in (draw(source, mixed) for source in sources if source)
                     if item]
            if items:
                cond[key] = items
        fields = self._fields(pick(), pick(), cond.get("template"))
        if fields:
            cond["fields"] = fields
        self._maybe_window(cond, own if rng.random() < 0.7 else other, 0.2)
        self._maybe_count(cond)
        return cond

    def _fields(self, own: dict, other: dict, template: str | None) -> dict[str, Any]:
        """Conditions on declared fields by name: codes by canonical name or code (sometimes
        from another annotation), number bounds in the field's unit or another of its
        dimension, date ranges."""
        rng = self.rng
        stored = own.get("fields") or {}
        declared = self.declared if template is None else declared_fields(template)
        names = [n for n in sorted(stored) if declared.get(n)
                 and len({node.value_type for node in declared[n]}) == 1
                 and declared[n][0].value_type in ("CODE", "NUM", "DATE")]
        if not names or rng.random() >= 0.35:
            return {}
        conditions: dict[str, Any] = {}
        for name in rng.sample(names, k=min(len(names), rng.randint(1, 2))):
            node = declared[name][0]
            source = (other.get("fields") or {}).get(name, stored[name]) \
                if rng.random() < 0.3 else stored[name]
            value = rng.choice(source) if isinstance(source, list) else source
            if node.value_type == "CODE":
                by_code = {code: term for term, code, _ in node.terms}
                spelled = by_code.get(value, value) if rng.random() < 0.6 else value
                conditions[name] = spelled
                if node.terms and rng.random() < 0.3:
                    conditions[name] = [spelled, rng.choice(node.terms)[0]]
            elif node.value_type == "NUM":
                step = rng.choice((0.0, 0.5, 5.0))
                low, high = rng.choice(((value, value), (value - step, None),
                                        (None, value + step), (value + step, None)))
                bounds = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
                if node.unit and rng.random() < 0.4:
                    unit, low, high = rng.choice(equivalent_ranges(node.unit, low, high))
                    bounds = {k: v for k, v in (("min", low), ("max", high), ("unit", unit))
                              if v is not None}
                conditions[name] = bounds
            else:
                day = dt.date.fromisoformat(str(value))
                shift = dt.timedelta(days=rng.choice((0, 1, 30)))
                conditions[name] = rng.choice(({"min": (day - shift).isoformat()},
                                               {"max": (day - shift).isoformat()},
                                               {"min": day.isoformat(), "max": day.isoformat()}))
        return conditions

    def _code(self, items: list[dict], mixed: bool) -> dict[str, Any]:
        rng = self.rng
        item, sibling = rng.choice(items), rng.choice(items)
        cond: dict[str, Any] = {} if rng.random() < 0.1 else {"name": item["name"]}
        draw = rng.random()
        if draw < 0.7:
            cond["value"] = sibling["value"] if mixed else item["value"]   # nesting matters
        elif draw < 0.9:
            cond["value"] = sorted({item["value"], sibling["value"], ABSENT_CODE})
        elif draw < 0.95:
            cond["value"] = ABSENT_CODE
        return cond or {"name": item["name"]}

    def _number(self, items: list[dict], mixed: bool) -> dict[str, Any]:
        rng = self.rng
        item, sibling = rng.choice(items), rng.choice(items)
        value = (sibling if mixed else item)["value"]
        step = rng.choice((0.0, 0.5, 1.0, 10.0))
        low, high = rng.choice(((value, value), (value - step, None), (None, value + step),
                                (value + step, None), (None, value - step),
                                (value - step, value + step)))
        cond: dict[str, Any] = {"name": item["name"]}
        unit = item["unit"]
        draw = rng.random()
        if draw < 0.25:
            unit = None
        elif draw < 0.55:
            unit, low, high = rng.choice(equivalent_ranges(unit, low, high))
        elif draw < 0.6:
            unit = "kg"
        cond.update({k: v for k, v in (("min", low), ("max", high), ("unit", unit))
                     if v is not None})
        return cond

    def _text(self, items: list[dict], mixed: bool) -> dict[str, Any]:
        rng = self.rng
        item = rng.choice(items)
        value = item["value"]
        start = rng.randrange(len(value))
        needle = value[start:start + rng.randint(1, 8)]
        draw = rng.random()
        if draw < 0.1:
            needle = ABSENT_TEXT
        elif draw < 0.25 and len(needle) > 2:    # a wildcard in place of one character: as a
            k = rng.randrange(1, len(needle) - 1)   # pattern it would match, literally not
            needle = needle[:k] + rng.choice("*?") + needle[k + 1:]
        return {"contains": needle, **({"name": item["name"]} if rng.random() < 0.6 else {})}

    def _date(self, items: list[dict], mixed: bool) -> dict[str, Any]:
        rng = self.rng
        item, sibling = rng.choice(items), rng.choice(items)
        day = dt.date.fromisoformat((sibling if mixed else item)["value"])
        shift = dt.timedelta(days=rng.choice((0, 1, 10, 365)))
        low, high = rng.choice(((day - shift, day + shift), (day + shift, None),
                                (None, day - shift), (day, day)))
        return {"name": item["name"],
                **{k: v.isoformat() for k, v in (("min", low), ("max", high)) if v is not None}}

    def _segment(self, items: list[dict], mixed: bool) -> dict[str, Any]:
        rng = self.rng
        cond: dict[str, Any] = {}
        one = rng.choice(items)
        for key in rng.sample(SEGMENT_KEYS, k=rng.randint(1, 3)):
            source = rng.choice(items) if mixed else one  # keys from different segments
            if source.get(key) not in (None, ""):
                cond[key] = source[key]
        if rng.random() < 0.1:
            cond["label"] = "absent structure"
        return cond

    # -- shared ---------------------------------------------------------------------------

    def _maybe_window(self, cond: dict[str, Any], dated: Dated, chance: float) -> None:
        rng = self.rng
        if not self.events or rng.random() >= chance:
            return
        event = rng.choice(self.events)
        offset = dated.days_from.get(event, rng.randint(-400, 400))
        width = rng.choice((0, 1, 30, 90))
        cond["within"] = {"event": event, "days": rng.choice((
            [offset - width, offset], [offset, offset + width], [offset + 1, offset + 1 + width],
            [None, offset], [offset - width, None], [-90, 0]))}

    def _maybe_count(self, cond: dict[str, Any]) -> None:
        if self.rng.random() < 0.15:
            cond["at_least"] = self.rng.randint(2, 3)
