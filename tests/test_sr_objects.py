"""Every SR family, with and without images as evidence, judged by dciodvfy and dsrdump."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from srcohort.convert.patients import PatientInputs, PatientResult
from srcohort.convert.patients import build_patient as build
from srcohort.index.content import sr_annotation
from srcohort.sources.tables import TableRecord
from srcohort.sr.profiles import default_profiles, nonconformities
from srcohort.study.load import load_study
from tests.dicom_validators import dciodvfy, dsrdump, pixelmed_sr, require_tool

CSV = Path("tables/registry.csv")
STUDY = load_study("tavi")


def build_patient(inputs: PatientInputs) -> PatientResult:
    return build(STUDY, inputs)


def _ct_headers() -> list[pydicom.Dataset]:
    folder = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/98892001/CT5N"
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]


def _inputs(with_ct: bool) -> PatientInputs:
    pid = str(_ct_headers()[0].PatientID) if with_ct else "NO-IMAGES-1"
    inputs = PatientInputs("site-t", "Test Hospital", pid, _ct_headers() if with_ct else [])
    inputs.tables["registry"] = [TableRecord(CSV, 2, {
        "patient_id": pid, "tavi_date": dt.date(2021, 3, 4), "prosthesis": "ACURATE",
        "prosthesis_size": 25.0, "diabetes": "no", "smoking": "current", "lbbb": "yes"})]
    inputs.tables["procedures"] = [
        TableRecord(CSV, 2, {"patient_id": pid, "code": "5-35a.00", "date": dt.date(2021, 3, 4)}),
        TableRecord(CSV, 3, {"patient_id": pid, "code": "5-377.30", "date": dt.date(2021, 3, 9)})]
    if with_ct:
        inputs.tables["landmarks"] = [TableRecord(CSV, 2, {
            "patient_id": pid, "landmark": "LCC_HINGE", "x": 1.0, "y": 2.0, "z": 3.0})]
        inputs.tables["measurements"] = [
            TableRecord(CSV, 2, {"patient_id": pid, "measurement": "ANNULUS_DIAMETER",
                                 "value": 2.41, "unit": "cm"}),
            TableRecord(CSV, 3, {"patient_id": pid, "measurement": "MS_LENGTH",
                                 "value": 4.0, "unit": "furlong"})]
    return inputs


@pytest.mark.validators
@pytest.mark.parametrize("with_ct", [True, False], ids=["with-ct", "registry-only"])
def test_every_sr_passes_dciodvfy_and_dsrdump(tmp_path: Path, with_ct: bool) -> None:
    require_tool("dciodvfy")
    require_tool("dsrdump")
    require_tool("pixelmed")
    result = build_patient(_inputs(with_ct))
    assert len(result.reports) == (3 if with_ct else 2)
    for sr, _ in result.reports:
        path = tmp_path / f"{sr.SOPInstanceUID}.dcm"
        sr.save_as(path, enforce_file_format=True)
        assert dciodvfy(path) == [], path
        assert dsrdump(path) == [], path
        assert pixelmed_sr(path) == [], path      # knows TID 1500; checks the rest generically


def test_unknown_unit_sets_only_that_measurement_aside() -> None:
    result = build_patient(_inputs(True))
    assert [(e.line, "furlong" in e.reason) for e in result.errors] == [(3, True)]
    planning = sr_annotation(result.reports[2][0])
    assert [(n["name"], round(n["value"], 6), n["unit"]) for n in planning["numbers"]] == \
        [("SCT:81827009", 24.1, "mm")]          # 2.41 cm converted to mm


def test_srs_reference_the_ct_or_nothing() -> None:
    with_ct = build_patient(_inputs(True))
    ct_series = str(_ct_headers()[0].SeriesInstanceUID)
    for sr, _ in with_ct.reports:
        assert sr_annotation(sr)["referenced_series"] == [ct_series]
        assert sr.StudyInstanceUID == _ct_headers()[0].StudyInstanceUID
    for sr, _ in build_patient(_inputs(False)).reports:
        assert "CurrentRequestedProcedureEvidenceSequence" not in sr
        assert sr.PatientID == "NO-IMAGES-1"


def test_conversion_is_deterministic() -> None:
    first = [sr.SOPInstanceUID for sr, _ in build_patient(_inputs(True)).reports]
    again = [sr.SOPInstanceUID for sr, _ in build_patient(_inputs(True)).reports]
    assert first == again and len(set(first)) == 3


def test_landmarks_without_images_are_rejected_by_patient() -> None:
    inputs = _inputs(False)
    inputs.tables["landmarks"] = [TableRecord(CSV, 7, {
        "patient_id": "NO-IMAGES-1", "landmark": "RCA_OSTIUM", "x": 0.0, "y": 0.0, "z": 0.0})]
    result = build_patient(inputs)
    assert [(e.line, "matches no images" in e.reason) for e in result.errors] == [(7, True)]


def test_every_sr_conforms_to_exactly_one_template_profile() -> None:
    profiles = default_profiles()
    assert {p.template for p in profiles} >= {"3802", "1500", "srcohort-tavi-outcome"}
    for with_ct in (True, False):
        for sr, _ in build_patient(_inputs(with_ct)).reports:
            (profile,) = [p for p in profiles if p.matches(sr)]
            assert nonconformities(sr, profile) == [], profile.template


def test_profile_check_finds_undeclared_and_missing_items() -> None:
    outcome = build_patient(_inputs(False)).reports[1][0]
    (profile,) = [p for p in default_profiles() if p.matches(outcome)]
    root = outcome.ContentSequence
    root[2].ConceptCodeSequence[0].CodeValue = "261665006"      # "Unknown": not allowed
    del root[4]                                                 # required source codes
    problems = nonconformities(outcome, profile)
    assert any("not an allowed value" in p for p in problems)
    assert any("SOURCE_PROC_CODES is required" in p for p in problems)
