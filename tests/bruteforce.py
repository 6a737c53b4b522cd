"""The reference answer: evaluate a cohort over the source DICOM files, in plain Python.

The OpenSearch path has several places to get semantics subtly wrong: nested scoping (two
conditions met by two different annotations), the roll-up (a series lost, an offset computed
from the wrong date), time windows, counting. This evaluator shares none of it. It reads the
converted files with pydicom, extracts SR and SEG content with the same pure extraction
functions the indexer uses (what an SR *says* is not in question here), dates every object
against the patient's events itself, and evaluates each condition by looping over objects.
tests/test_cohort_exactness.py demands that both answers agree for every generated cohort.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pydicom
from pydicom.dataset import Dataset

from srcohort.cohort.model import (AnnotationCondition, AttributeCondition, BoolExpr,
                                   CodeCondition, DateCondition, Expr, FieldCondition,
                                   NumberCondition, SegmentCondition, SeriesCondition,
                                   TextCondition, Window)
from srcohort.units import equivalent_ranges
from srcohort.index.content import sr_annotation
from srcohort.index.fields import kaapana_fields
from srcohort.index.mapping import TEXT_KEYWORD_LIMIT
from srcohort.index.seg_content import seg_annotation
from srcohort.sr.profiles import Profile, default_profiles


@dataclass
class Dated:
    """A series or an annotation, with its study date and its offsets from the events."""

    modality: str
    study_date: dt.date | None
    content: dict[str, Any]               # Kaapana fields (series) or extracted content
    days_from: dict[str, int] = field(default_factory=dict)


@dataclass
class PatientFacts:
    key: str
    series: list[Dated] = field(default_factory=list)
    annotations: list[Dated] = field(default_factory=list)
    events: dict[str, dt.date] = field(default_factory=dict)


def read_patients(sites: Mapping[str, Path], profiles: Iterable[Profile] | None = None
                  ) -> dict[str, PatientFacts]:
    """Patient key -> facts, from every DICOM file below each site's folder."""
    profiles = list(default_profiles() if profiles is None else profiles)
    patients: dict[str, PatientFacts] = {}
    for site, folder in sorted(sites.items()):
        by_series: dict[str, list[Dataset]] = defaultdict(list)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            by_series[str(ds.SeriesInstanceUID)].append(ds)
        for instances in by_series.values():
            first = instances[0]
            key = f"{site}/{str(first.PatientID).strip()}"
            patient = patients.setdefault(key, PatientFacts(key))
            date = _date(first.get("StudyDate"))
            patient.series.append(Dated(str(first.Modality), date, kaapana_fields(first)))
            for ds in instances:
                if ds.Modality == "SR":
                    content = sr_annotation(ds)
                    _note_events(patient, ds, content, profiles)
                elif ds.Modality == "SEG":
                    content = seg_annotation(ds)
                else:
                    continue
                patient.annotations.append(Dated(str(first.Modality), date, content))
    for patient in patients.values():
        for item in patient.series + patient.annotations:
            if item.study_date is not None:
                item.days_from = {name: (item.study_date - day).days
                                  for name, day in patient.events.items()}
    return patients


def evaluate(expr: Expr, patients: Mapping[str, PatientFacts]) -> set[str]:
    """Keys of the patients ``expr`` holds for."""
    return {key for key, patient in patients.items() if holds(expr, patient)}


def holds(expr: Expr, patient: PatientFacts) -> bool:
    if isinstance(expr, BoolExpr):
        results = (holds(child, patient) for child in expr.children)
        if expr.op == "all":
            return all(results)
        if expr.op == "any":
            return any(results)
        return not any(results)
    if isinstance(expr, SeriesCondition):
        return sum(_series_matches(expr, s) for s in patient.series) >= expr.at_least
    return sum(_annotation_matches(expr, a) for a in patient.annotations) >= expr.at_least


def _note_events(patient: PatientFacts, ds: Dataset, content: dict, profiles: list[Profile]
                 ) -> None:
    """An event is dated by the earliest anchor DATE of any SR of the anchor's template."""
    for profile in profiles:
        if not profile.matches(ds):
            continue
        for event, concept in profile.anchors.items():
            for item in content["dates"]:
                day = dt.date.fromisoformat(item["value"])
                if item["name"] == concept and (event not in patient.events
                                                or day < patient.events[event]):
                    patient.events[event] = day


def _series_matches(cond: SeriesCondition, series: Dated) -> bool:
    return ((not cond.modalities or series.modality in cond.modalities)
            and all(_attribute_matches(a, series.content.get(a.name)) for a in cond.attributes)
            and _in_window(cond.within, series))


def _attribute_matches(cond: AttributeCondition, stored: Any) -> bool:
    """Any of a multi-valued attribute's values may satisfy the condition."""
    values = stored if isinstance(stored, list) else [] if stored is None else [stored]
    for value in values:
        if cond.values and value in cond.values:
            return True
        if not cond.values and _between(value, cond.min, cond.max):
            return True
    return False


def _annotation_matches(cond: AnnotationCondition, annotation: Dated) -> bool:
    content = annotation.content
    return ((not cond.kinds or content.get("kind") in cond.kinds)
            and (cond.template is None or content.get("template") == cond.template)
            and (cond.title is None or content.get("title") == cond.title)
            and all(any(_code_matches(c, item) for item in content.get("codes", []))
                    for c in cond.codes)
            and all(any(_number_matches(n, item) for item in content.get("numbers", []))
                    for n in cond.numbers)
            and all(any(_text_matches(t, item) for item in content.get("texts", []))
                    for t in cond.texts)
            and all(any(_date_matches(d, item) for item in content.get("dates", []))
                    for d in cond.dates)
            and all(any(_segment_matches(s, item) for item in content.get("segments", []))
                    for s in cond.segments)
            and all(_field_matches(f, (content.get("fields") or {}).get(f.name))
                    for f in cond.fields)
            and _in_window(cond.within, annotation))


def _field_matches(cond: FieldCondition, stored: Any) -> bool:
    """Any of a repeated field's values may satisfy the condition."""
    values = stored if isinstance(stored, list) else [] if stored is None else [stored]
    if cond.values:
        return any(value in cond.values for value in values)
    return any(_between(value, cond.min, cond.max) for value in values)


def _code_matches(cond: CodeCondition, item: dict) -> bool:
    return (cond.name is None or item["name"] == cond.name) and \
        (not cond.values or item["value"] in cond.values)


def _number_matches(cond: NumberCondition, item: dict) -> bool:
    if cond.name is not None and item["name"] != cond.name:
        return False
    return any((unit is None or item["unit"] == unit) and _between(item["value"], low, high)
               for unit, low, high in equivalent_ranges(cond.unit, cond.min, cond.max))


def _text_matches(cond: TextCondition, item: dict) -> bool:
    """Substring, case-sensitive; texts too long to index as one term are not searchable."""
    value = item["value"]
    utf16_units = len(value.encode("utf-16-le")) // 2
    return (cond.name is None or item["name"] == cond.name) and \
        utf16_units <= TEXT_KEYWORD_LIMIT and cond.contains in value


def _date_matches(cond: DateCondition, item: dict) -> bool:
    return (cond.name is None or item["name"] == cond.name) and \
        _between(item["value"], cond.min, cond.max)


def _segment_matches(cond: SegmentCondition, item: dict) -> bool:
    return all(wanted is None or str(item.get(key)) == str(wanted) for key, wanted in (
        ("number", cond.number), ("label", cond.label), ("category", cond.category),
        ("type", cond.type), ("algorithm_type", cond.algorithm_type)))


def _in_window(window: Window | None, item: Dated) -> bool:
    if window is None:
        return True
    offset = item.days_from.get(window.event)
    return offset is not None and _between(offset, window.min_days, window.max_days)


def _between(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _date(value: Any) -> dt.date | None:
    text = str(value or "")
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) >= 8 else None
