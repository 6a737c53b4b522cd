"""Cohort definitions: validation before any query, and the shape of the compiled query."""

from __future__ import annotations

import json

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
    ("name: x\npatients: {annotation: {codes: [{}]}}",
     r"patients.annotation.codes\[0\]: needs at least one of name, value"),
    ("name: x\npatients: {annotation: {numbers: [{name: 'A:1', min: 5, max: 2}]}}",
     "min 5.0 is greater than max 2.0"),
    ("name: x\npatients: {annotation: {numbers: [{name: 'A:1', min: big}]}}", "expected a number"),
    ("name: x\npatients: {any: [{series: {modality: CT}}, {ecg: {}}]}",
     r"patients.any\[1\]: unknown condition 'ecg'"),
    ("name: [x", "not valid YAML"),
    ("name: x\npatients: {series: {attributes: {'00100010 PatientName_keyword_alphabetic': X}}}",
     r"patients.series.attributes\['00100010 PatientName_keyword_alphabetic'\]: not a "
     r"filterable series attribute"),
    ("name: x\npatients: {series: {attributes: {'00280010 Rows_integer': 1.5}}}",
     r"Rows_integer'\]\[0\]: expected a whole number"),
    ("name: x\npatients: {series: {attributes: {'00080070 Manufacturer_keyword': {min: a}}}}",
     "min/max need a numeric or date attribute"),
    ("name: x\npatients: {series: {attributes: {'00080020 StudyDate_date': {min: '2020-13'}}}}",
     r"StudyDate_date'\].min: expected a date YYYY-MM-DD"),
    ("name: x\npatients: {annotation: {dates: [{min: 2020-13-01}]}}",
     "not valid YAML: month must be in 1..12"),
    ("name: x\npatients: {annotation: {within: {event: surgery, days: [-90, 0]}}}",
     r"patients.annotation.within.event: unknown event 'surgery' \(known: .*tavi"),
    ("name: x\npatients: {series: {within: {event: tavi, days: 90}}}",
     r"patients.series.within.days: expected \[from, to\]"),
    ("name: x\npatients: {series: {within: {event: tavi, days: [0, -90]}}}",
     r"patients.series.within.days: min 0 is greater than max -90"),
    ("name: x\npatients: {series: {modality: CT, at_least: 0}}",
     r"patients.series.at_least: expected a whole number >= 1"),
    ("name: x\npatients: {annotation: {texts: [{name: 'A:1'}]}}",
     r"patients.annotation.texts\[0\]: missing contains"),
    ("name: x\npatients: {annotation: {dates: [{name: 'A:1', min: yesterday}]}}",
     r"dates\[0\].min: expected a date"),
    ("name: x\npatients: {annotation: {segments: [{number: one}]}}",
     r"segments\[0\].number: expected an integer"),
    ("name: x\npatients: {annotation: {segments: [{colour: red}]}}",
     r"segments\[0\]: unknown key\(s\) colour"),
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
    numbers: [{name: "SCT:81827009", min: 2, unit: cm}]
""")
    query = compile_expr(cohort.patients)
    assert query["nested"]["path"] == "annotations"
    inner = query["nested"]["query"]["bool"]["filter"]
    assert inner[0] == {"term": {"annotations.template": "1500"}}
    assert [f["nested"]["path"] for f in inner[1:]] == ["annotations.codes", "annotations.numbers"]
    name, units = inner[2]["nested"]["query"]["bool"]["filter"]
    assert name == {"term": {"annotations.numbers.name": "SCT:81827009"}}
    alternatives = [a["bool"]["filter"] for a in units["bool"]["should"]]
    assert [{"term": {"annotations.numbers.unit": "cm"}},
            {"range": {"annotations.numbers.value": {"gte": 2.0}}}] in alternatives
    assert [{"term": {"annotations.numbers.unit": "mm"}},
            {"range": {"annotations.numbers.value": {"gte": 20.0}}}] in alternatives


def test_not_and_any_compile_to_bool_clauses() -> None:
    cohort = load_cohort("name: x\npatients: {not: {any: [{series: {modality: CT}}, "
                         "{series: {modality: [MR, PT]}}]}}")
    query = compile_expr(cohort.patients)
    should = query["bool"]["must_not"][0]["bool"]["should"]
    assert should[1]["nested"]["query"]["bool"]["filter"] == \
        [{"terms": {"series.modality": ["MR", "PT"]}}]


def test_counts_windows_and_attributes_compile_without_scripts() -> None:
    cohort = load_cohort("""
name: two-recent-cts
patients:
  series:
    modality: CT
    attributes: {"00180050 SliceThickness_float": {max: 1}, "00080070 Manufacturer_keyword": X}
    within: {event: tavi, days: [-90, 0]}
    at_least: 2
""")
    query = compile_expr(cohort.patients)
    counted = query["function_score"]
    assert counted["min_score"] == 2
    nested = counted["query"]["nested"]
    assert nested["score_mode"] == "sum"
    filters = nested["query"]["constant_score"]["filter"]["bool"]["filter"]
    assert {"range": {"series.00180050 SliceThickness_float": {"lte": 1.0}}} in filters
    assert {"terms": {"series.00080070 Manufacturer_keyword": ["X"]}} in filters
    assert {"range": {"series.days_from.tavi": {"gte": -90, "lte": 0}}} in filters
    assert "script" not in json.dumps(query)


def test_text_contains_is_a_literal_substring() -> None:
    cohort = load_cohort({"name": "x", "patients": {"annotation": {
        "texts": [{"contains": "5-35a.0*? \\"}]}}})
    inner = compile_expr(cohort.patients)["nested"]["query"]["bool"]["filter"][0]
    wildcard = inner["nested"]["query"]["bool"]["filter"][0]["wildcard"]
    assert wildcard == {"annotations.texts.value.keyword": {"value": "*5-35a.0\\*\\? \\\\*"}}


def test_flattened_compilation_has_no_nested_queries() -> None:
    cohort = load_cohort("""
name: x
patients:
  all:
    - annotation: {codes: [{name: "A:1", value: "B:2"}], at_least: 2}
    - not: {series: {modality: CT}}
""")
    flat = json.dumps(compile_expr(cohort.patients, nested=False))
    assert '"nested"' not in flat and "function_score" not in flat
    assert '{"term": {"annotations.codes.name": "A:1"}}' in flat


def test_hostile_definitions_are_refused_with_a_reason() -> None:
    """Nested a thousand deep (Python's recursion would break), and a list beyond what
    OpenSearch's terms query takes: both refused before any query, with the path."""
    deep = "name: a\npatients: " + "{not: " * 1000 + "{series: {modality: CT}}" + "}" * 1000
    with pytest.raises(CohortError, match="nested too deeply"):
        load_cohort(deep)
    nested: dict = {"series": {"modality": "CT"}}
    for _ in range(40):
        nested = {"not": nested}
    with pytest.raises(CohortError, match="nested more than 32 levels"):
        load_cohort({"name": "a", "patients": nested})
    many = {"name": "b", "patients": {"annotation": {"codes": [
        {"value": [f"SCT:{n}" for n in range(100_000)]}]}}}
    with pytest.raises(CohortError, match=r"codes\[0\]\.value: 100000 entries"):
        load_cohort(many)
