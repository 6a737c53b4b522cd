"""Cohort definitions: validation before any query, and the shape of the compiled query."""

from __future__ import annotations

import pytest

from srcohort.cohort.definition import CohortError, load_cohort
from srcohort.cohort.library import resolve_cohort, saved_cohorts
from srcohort.cohort.query import compile_expr


def test_saved_example_cohort_loads() -> None:
    assert "tavi-self-expanding" in saved_cohorts()
    cohort = resolve_cohort("tavi-self-expanding")
    assert cohort.name == "tavi-self-expanding"


@pytest.mark.parametrize("text, message", [
    ("name: x", "cohort: missing patients"),
    ("name: x\npatients: {all: []}", r"patients.all: expected a non-empty list"),
    ("name: x\npatients: {series: {modality: CT}, annotation: {template: '1'}}", "exactly one"),
    ("name: x\npatients: {annotation: {code: []}}", r"unknown key\(s\) code"),
    ("name: x\npatients: {annotation: {codes: [{name: LBBB}]}}", "SCHEME:VALUE"),
    ("name: x\npatients: {annotation: {numbers: [{name: 'A:1', min: 5, max: 2}]}}",
     "min 5.0 is greater than max 2.0"),
    ("name: x\npatients: {annotation: {numbers: [{name: 'A:1', min: big}]}}", "expected a number"),
    ("name: x\npatients: {any: [{series: {modality: CT}}, {ecg: {}}]}",
     r"patients.any\[1\]: unknown condition 'ecg'"),
    ("name: [x", "not valid YAML"),
])
def test_invalid_definitions_fail_with_their_path(text: str, message: str) -> None:
    with pytest.raises(CohortError, match=message):
        load_cohort(text)


def test_all_conditions_of_an_annotation_sit_in_one_nested_query() -> None:
    cohort = load_cohort("""
name: same-annotation
patients:
  annotation:
    template: "1500"
    codes: [{name: "DCM:121071", value: "SCT:87878005"}]
    numbers: [{name: "SCT:81827009", min: 20, unit: mm}]
""")
    query = compile_expr(cohort.patients)
    assert query["nested"]["path"] == "annotations"
    inner = query["nested"]["query"]["bool"]["filter"]
    assert inner[0] == {"term": {"annotations.template": "1500"}}
    assert [f["nested"]["path"] for f in inner[1:]] == ["annotations.codes", "annotations.numbers"]
    number = inner[2]["nested"]["query"]["bool"]["filter"]
    assert {"range": {"annotations.numbers.value": {"gte": 20.0}}} in number
    assert {"term": {"annotations.numbers.unit": "mm"}} in number


def test_not_and_any_compile_to_bool_clauses() -> None:
    cohort = load_cohort("name: x\npatients: {not: {any: [{series: {modality: CT}}, "
                         "{series: {modality: [MR, PT]}}]}}")
    query = compile_expr(cohort.patients)
    should = query["bool"]["must_not"][0]["bool"]["should"]
    assert should[1]["nested"]["query"]["bool"]["filter"] == \
        [{"terms": {"series.modality": ["MR", "PT"]}}]
