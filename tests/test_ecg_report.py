"""ECG report SR (TID 3700) on pydicom's real 12-lead waveform sample: validators, template
profile, index extraction, evidence, UIDs and refused input."""

from __future__ import annotations

import datetime as dt
import math
import re
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from srcohort.index.content import sr_annotation
from srcohort.sources.ecg.model import FINDINGS, MEASUREMENT_UNITS, STANDARD_LEADS, EcgRecording
from srcohort.sr.ecg import EcgReport, EcgReportSR
from srcohort.sr.ecg import enum as codes
from srcohort.sr.profiles import default_profiles, nonconformities
from tests.dicom_validators import (PIXELMED_CMD, TIMEOUT_SECONDS, dciodvfy, dsrdump,
                                    pixelmed_sr, require_tool)

PATIENT = "ECG-TEST-7"
SITE = "site-e"
ALL_MEASUREMENTS = {"heart_rate": 71.0, "rr_interval": 845.0, "pr_interval": 184.0,
                    "qrs_duration": 152.0, "qt_interval": 440.0, "qtc_interval": 480.0,
                    "p_axis": 55.0, "qrs_axis": -35.0, "t_axis": 120.0}
VARIANTS = {
    "all": dict(measurements=ALL_MEASUREMENTS, findings=["LBBB", "SINUS_RHYTHM", "AV_BLOCK_1"]),
    "some": dict(measurements={"heart_rate": 64.0, "qtc_interval": 480.0}, findings=["LBBB"]),
    "none": dict(measurements={}, findings=[], acquired=None, birth_date=None, sex=""),
}


def _key(code: Code) -> str:
    return f"{code.scheme_designator}:{code.value}"


def _waveform(**attributes: object) -> Dataset:
    """The real sample 12-lead ECG, re-identified to the test patient."""
    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    ds.PatientID = PATIENT
    ds.PatientName = "Test^Ecg"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _recording(**fields: object) -> EcgRecording:
    """A recording of the sample's first multiplex group, as a reader would hand it over."""
    sample = _waveform()
    group = sample.WaveformSequence[0]
    samples = sample.waveform_array(0)
    values: dict = dict(
        patient_id=PATIENT, source_format="dicom", sampling_rate=float(group.SamplingFrequency),
        leads={lead: samples[:, i].astype(float) for i, lead in enumerate(STANDARD_LEADS)},
        acquired=dt.datetime(2013, 1, 25, 10, 59, 19), birth_date=dt.date(1971, 1, 23),
        sex="F")
    return EcgRecording(**{**values, **fields})  # type: ignore[arg-type]


def _report(recording: EcgRecording, waveform: Dataset | None = None,
            site: str = SITE) -> EcgReportSR:
    waveform = waveform if waveform is not None else _waveform(PatientSize=1.68,
                                                                PatientWeight=72)
    return EcgReportSR(waveform, EcgReport(recording, waveform), site=site,
                       institution="Test Heart Centre")


def _saved(tmp_path: Path, variant: str) -> Path:
    path = tmp_path / f"ecg-{variant}.dcm"
    _report(_recording(**VARIANTS[variant])).save_as(path, enforce_file_format=True)
    return path


@pytest.mark.validators
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_report_passes_all_three_validators(tmp_path: Path, variant: str) -> None:
    for tool in ("dciodvfy", "dsrdump", "pixelmed"):
        require_tool(tool)
    path = _saved(tmp_path, variant)
    assert dciodvfy(path) == []
    assert dsrdump(path) == []
    assert pixelmed_sr(path) == []


@pytest.mark.validators
def test_pixelmed_checks_the_iod_but_knows_no_ecg_report_template(tmp_path: Path) -> None:
    """DicomSRValidator names each root template it recognises ("Found Root Template TID_1500
    ..."); for TID 3700 it names none and lists every item as "not in template" (a warning),
    so its zero errors cover the Comprehensive SR IOD and relationships, not TID 3700."""
    require_tool("pixelmed")
    result = subprocess.run([*PIXELMED_CMD, str(_saved(tmp_path, "all"))], capture_output=True,
                            text=True, timeout=TIMEOUT_SECONDS, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    assert "Found ComprehensiveSR IOD" in lines
    assert not [line for line in lines if line.startswith("Found Root Template")]
    assert any("Content Item not in template" in line for line in lines)


def test_every_report_conforms_to_the_ecg_report_profile() -> None:
    profiles = default_profiles()
    recordings = [_recording(**variant) for variant in VARIANTS.values()]
    recordings += [_recording(findings=[name]) for name in FINDINGS]
    for recording in recordings:
        sr = _report(recording)
        (profile,) = [p for p in profiles if p.matches(sr)]
        assert profile.template == "3700"
        assert nonconformities(sr, profile) == [], recording.findings


def test_profile_declares_exactly_the_codes_the_report_writes() -> None:
    (profile,) = [p for p in default_profiles() if p.template == "3700"]
    findings = profile.nodes[(("DCM:122145", "SCT:271921002"), "CODE")]
    assert set(findings.values) == {_key(code) for code in codes.FINDINGS.values()}
    measured = {path[2] for path, _ in profile.nodes
                if path[:2] == ("DCM:122144", "DCM:122158") and len(path) == 3}
    assert measured == {_key(code) for code in codes.MEASUREMENT_CODES.values()}


def test_every_canonical_name_of_the_model_has_a_code() -> None:
    assert set(codes.FINDINGS) == set(FINDINGS)
    assert set(codes.MEASUREMENT_CODES) == set(MEASUREMENT_UNITS)


def test_index_finds_lbbb_as_a_code_and_qtc_as_a_number_in_ms() -> None:
    annotation = sr_annotation(_report(_recording(**VARIANTS["some"])))
    assert {"name": "SCT:271921002", "value": "SCT:63467002"}.items() <= \
        next(c for c in annotation["codes"] if c["value"] == "SCT:63467002").items()
    assert [(n["value"], n["unit"]) for n in annotation["numbers"]
            if n["name"] == "MDC:2:15876"] == [(480.0, "ms")]
    assert annotation["template"] == "3700" and annotation["title"] == "LN:11524-0"


def test_all_measurements_are_written_with_their_ucum_units() -> None:
    numbers = sr_annotation(_report(_recording(**VARIANTS["all"])))["numbers"]
    written = {n["name"]: (n["value"], n["unit"]) for n in numbers}
    assert {name: written[_key(code)] for name, code in codes.MEASUREMENT_CODES.items()} == \
        {name: (ALL_MEASUREMENTS[name], MEASUREMENT_UNITS[name]) for name in ALL_MEASUREMENTS}


def test_patient_characteristics_come_from_recording_and_waveform_header() -> None:
    annotation = sr_annotation(_report(_recording()))
    numbers = {n["name"]: (n["value"], n["unit"]) for n in annotation["numbers"]}
    assert numbers == {"DCM:121033": (42.0, "a"), "LN:8302-2": (168.0, "cm"),
                       "LN:29463-7": (72.0, "kg")}
    assert [c["value"] for c in annotation["codes"] if c["name"] == "DCM:121032"] == ["DCM:F"]


def test_minimal_report_holds_only_language_and_waveform_reference() -> None:
    sr = _report(_recording(**VARIANTS["none"]), waveform=_waveform())
    assert [(item.ValueType, item.ConceptNameCodeSequence[0].CodeValue)
            for item in sr.ContentSequence] == [("CODE", "121049"), ("CONTAINER", "55111-9")]
    (waveform_item,) = sr.ContentSequence[1].ContentSequence
    assert waveform_item.ValueType == "WAVEFORM"


def test_report_references_the_waveform_and_joins_its_patient_and_study() -> None:
    waveform = _waveform()
    sr = _report(_recording(), waveform=waveform)
    (item,) = [i for i in sr.ContentSequence[1].ContentSequence if i.ValueType == "WAVEFORM"]
    reference = item.ReferencedSOPSequence[0]
    assert (reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID) == \
        (waveform.SOPClassUID, waveform.SOPInstanceUID)
    assert (sr.PatientID, sr.StudyInstanceUID) == (PATIENT, waveform.StudyInstanceUID)
    assert sr_annotation(sr)["referenced_series"] == [waveform.SeriesInstanceUID]


def test_a_repeated_statement_is_one_finding() -> None:
    annotation = sr_annotation(_report(_recording(findings=["LBBB", "AF", "LBBB"])))
    assert [c["value"] for c in annotation["codes"] if c["name"] == "SCT:271921002"] == \
        ["SCT:63467002", "SCT:49436004"]
    assert [t["value"] for t in annotation["texts"]] == \
        ["Left bundle branch block; Atrial fibrillation"]


def test_uids_are_deterministic_per_site_and_waveform() -> None:
    first, again = _report(_recording()), _report(_recording())
    assert (first.SOPInstanceUID, first.SeriesInstanceUID) == \
        (again.SOPInstanceUID, again.SeriesInstanceUID)
    assert first.ContentSequence == again.ContentSequence
    other_ecg = _report(_recording(), waveform=_waveform(SOPInstanceUID="2.25.1234567"))
    other_site = _report(_recording(), site="site-f")
    uids = {sr.SOPInstanceUID for sr in (first, other_ecg, other_site)}
    series = {sr.SeriesInstanceUID for sr in (first, other_ecg, other_site)}
    assert len(uids) == len(series) == 3 and not uids & series


def _ct_as_evidence() -> Dataset:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct.PatientID = PATIENT
    return ct


@pytest.mark.parametrize(("recording", "waveform", "reason"), [
    (lambda: _recording(patient_id="SOMEONE-ELSE"), _waveform,
     "belongs to patient 'ECG-TEST-7', the recording to 'SOMEONE-ELSE'"),
    (_recording, _ct_as_evidence, "is not an ECG waveform: SOP class 1.2.840.10008.5.1.4.1.1.2"),
    (lambda: _recording(birth_date=dt.date(2014, 5, 1)), _waveform, "after the ECG of 2013-01-25"),
    (lambda: _recording(measurements={"qtc_interval": math.nan}), _waveform,
     "measurement qtc_interval of patient 'ECG-TEST-7' is nan, not a number"),
    (lambda: _recording(sex="X"), _waveform, "sex 'X' of patient 'ECG-TEST-7' is not one of"),
], ids=["other-patient", "not-a-waveform", "born-after-ecg", "nan-measurement", "unknown-sex"])
def test_bad_input_is_refused_naming_the_reason(recording, waveform, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        EcgReport(recording(), waveform())
