"""The brute-force evaluator's semantics on hand-made patients (no OpenSearch, no files).

The exactness test trusts this evaluator as the reference, so its own meaning of "the same
annotation", units, windows and counts is pinned here on cases small enough to check by eye.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.bruteforce import Dated, PatientFacts, evaluate
from srcohort.cohort.definition import load_cohort
from srcohort.units import equivalent_ranges
from srcohort.index.mapping import TEXT_KEYWORD_LIMIT

DAY = dt.date(2020, 1, 1)


def _sr(codes: list[tuple[str, str]] = (), numbers: list[tuple[str, float, str]] = (),
        texts: list[str] = (), days: int | None = None) -> Dated:
    content = {"kind": "SR", "template": "1500", "title": "DCM:126000",
               "codes": [{"name": n, "value": v} for n, v in codes],
               "numbers": [{"name": n, "value": v, "unit": u} for n, v, u in numbers],
               "texts": [{"name": "DCM:121071", "value": t} for t in texts], "dates": []}
    return Dated("SR", DAY, content, {} if days is None else {"tavi": days})


def _ct(days: int | None = None, attributes: dict | None = None) -> Dated:
    return Dated("CT", DAY, attributes or {}, {} if days is None else {"tavi": days})


PATIENTS = {
    "s/one-report": PatientFacts("s/one-report", [_ct(-90, {
        "00280030 PixelSpacing_float": [0.5, 0.7]}), _ct(-10)], [
        _sr([("A:1", "X:1"), ("B:2", "Y:2")], [("S:1", 23.0, "mm")], ["Aortic Root"], days=0)]),
    "s/two-reports": PatientFacts("s/two-reports", [_ct()], [
        _sr([("A:1", "X:1")]), _sr([("B:2", "Y:2")], [("S:1", 2.0, "cm")],
                                   ["x" * (TEXT_KEYWORD_LIMIT + 1) + "Aortic"])]),
}


def _answer(patients: object) -> set[str]:
    return evaluate(load_cohort({"name": "t", "patients": patients}).patients, PATIENTS)


@pytest.mark.parametrize("patients, expected", [
    ({"annotation": {"codes": [{"name": "A:1", "value": "X:1"}, {"name": "B:2", "value": "Y:2"}]}},
     {"s/one-report"}),
    ({"all": [{"annotation": {"codes": [{"name": "A:1", "value": "X:1"}]}},
              {"annotation": {"codes": [{"name": "B:2", "value": "Y:2"}]}}]},
     {"s/one-report", "s/two-reports"}),
    ({"annotation": {"codes": [{"name": "A:1", "value": "Y:2"}]}}, set()),
    ({"annotation": {"numbers": [{"name": "S:1", "min": 2.3, "max": 2.3, "unit": "cm"}]}},
     {"s/one-report"}),
    ({"annotation": {"numbers": [{"name": "S:1", "min": 20, "unit": "mm"}]}},
     {"s/one-report", "s/two-reports"}),
    ({"annotation": {"numbers": [{"name": "S:1", "min": 20}]}}, {"s/one-report"}),
    ({"annotation": {"numbers": [{"name": "S:1", "min": 0, "unit": "kg"}]}}, set()),
    ({"annotation": {"texts": [{"contains": "Aortic"}]}}, {"s/one-report"}),
    ({"annotation": {"texts": [{"contains": "aortic"}]}}, set()),
    ({"series": {"modality": "CT", "within": {"event": "tavi", "days": [-90, 0]}}},
     {"s/one-report"}),
    ({"series": {"modality": "CT", "within": {"event": "tavi", "days": [-90, -11]}}},
     {"s/one-report"}),
    ({"series": {"modality": "CT", "within": {"event": "tavi", "days": [-89, -11]}}}, set()),
    ({"not": {"series": {"within": {"event": "tavi", "days": [None, 0]}}}}, {"s/two-reports"}),
    ({"series": {"modality": "CT", "at_least": 2}}, {"s/one-report"}),
    ({"series": {"modality": "CT", "at_least": 3}}, set()),
    ({"annotation": {"kind": "SR", "at_least": 2}}, {"s/two-reports"}),
    ({"series": {"attributes": {"00280030 PixelSpacing_float": {"min": 0.6}}}},
     {"s/one-report"}),
    ({"series": {"attributes": {"00280030 PixelSpacing_float": [0.6, 0.7]}}},
     {"s/one-report"}),
])
def test_bruteforce_semantics(patients: object, expected: set[str]) -> None:
    assert _answer(patients) == expected


def test_units_convert_exactly_within_a_dimension() -> None:
    ranges = {unit: (low, high) for unit, low, high in equivalent_ranges("cm", 2.3, None)}
    assert ranges["mm"] == (23.0, None) and ranges["m"] == (0.023, None)
    assert "mm2" not in ranges and "kg" not in ranges
    assert equivalent_ranges("mL", 1, 2)[-1] == ("mm3", 1000.0, 2000.0)
    assert equivalent_ranges("{beats}/min", 60, None) == [("{beats}/min", 60, None)]
    assert equivalent_ranges(None, None, 5) == [(None, None, 5)]
