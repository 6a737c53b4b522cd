"""TID 2000 Basic Diagnostic Imaging Report: a template added as data only.

srcohort/templates/tid2000-basic-diagnostic-imaging-report.yaml describes the template; nothing in
srcohort knows TID 2000. These tests write TID 2000 reports with highdicom's generic content
items, have three validators judge them (PixelMed's DicomSRValidator checks TID 2000 itself),
and select a cohort on a coded finding and an impression text from the real index.

No real TID 2000 sample ships on this machine: DCMTK's share directory holds no SR, the
PixelMed jar no DICOM files, highdicom's wheel no test data, and pydicom's SRs are test-SR.dcm
(no template) and reportsi.dcm, an IHE "Simple Image Report" with private 99_OFFIS_DCMTK
concepts and no TemplateIdentifier. The latter is used to show the profile does not claim it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.coding import Code

from srcohort.cohort.definition import load_cohort
from srcohort.cohort.run import count_patients, list_patients
from srcohort.index.content import sr_annotation
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names
from srcohort.sr.profiles import default_profiles, nonconformities, profile_for
from tests.dicom_validators import (PIXELMED_CMD, dciodvfy, dsrdump, pixelmed_sr,
                                    require_tool)

PROFILE = "2000"
AAA = Code("233985008", "SCT", "Abdominal aortic aneurysm")
NODULE = Code("427359005", "SCT", "Solitary nodule of lung")
FINDING = Code("121071", "DCM", "Finding")
IMPRESSION = Code("121073", "DCM", "Impression")
MM = Code("mm", "UCUM", "millimeter")
UNNAMED = Code("UNNAMED", "99SRCOHORT-TEST", "removed once the SR is built")

COHORT = """
name: aaa-confirmed
description: TID 2000 report with a coded AAA finding whose impression mentions the aneurysm
patients:
  annotation:
    template: "2000"                          # Basic Diagnostic Imaging Report
    codes:
      - {name: "DCM:121071", value: "SCT:233985008"}    # Finding: abdominal aortic aneurysm
    texts:
      - {name: "DCM:121073", contains: "infrarenal aortic aneurysm"}   # Impression
"""


def _ct(patient_id: str, name: str) -> pydicom.Dataset:
    """pydicom's CT_small.dcm as the image of a patient of our own (fresh UIDs)."""
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct.PatientID, ct.PatientName = patient_id, name
    ct.StudyInstanceUID, ct.SeriesInstanceUID = hd.UID(), hd.UID()
    ct.SOPInstanceUID = hd.UID()
    ct.file_meta.MediaStorageSOPInstanceUID = ct.SOPInstanceUID
    return ct


def _image(name: Code, ct: pydicom.Dataset, relationship: str | None) -> hd.sr.ImageContentItem:
    return hd.sr.ImageContentItem(name, ct.SOPClassUID, ct.SOPInstanceUID,
                                  relationship_type=relationship)


def _diameter(value: float, ct: pydicom.Dataset) -> hd.sr.NumContentItem:
    """TID 1400 linear measurement: NUM > INFERRED FROM SCOORD path >> SELECTED FROM IMAGE."""
    num = hd.sr.NumContentItem(Code("81827009", "SCT", "Diameter"), value, MM,
                               relationship_type="INFERRED FROM")
    path = hd.sr.ScoordContentItem(Code("121055", "DCM", "Path"), "POLYLINE",
                                   np.array([[40.0, 60.0], [80.0, 60.0]]),
                                   relationship_type="INFERRED FROM")
    path.ContentSequence = [_image(UNNAMED, ct, "SELECTED FROM")]
    num.ContentSequence = [path]
    return num


def _report(ct: pydicom.Dataset, finding: Code, diameter: float, impression: str,
            conclusion: str) -> hd.sr.ComprehensiveSR:
    """A CT report the way TID 2000 lays it out: context, then Findings / Impressions /
    Conclusions / Recommendations sections of TID 2002 statements over TID 2001 observations."""
    root = hd.sr.ContainerContentItem(Code("18748-4", "LN", "Diagnostic Imaging Report"),
                                      template_id="2000")
    language = hd.sr.CodeContentItem(Code("121049", "DCM", "Language of Content Item and "
                                          "Descendants"), Code("en", "RFC5646", "English"),
                                     relationship_type="HAS CONCEPT MOD")
    language.ContentSequence = [hd.sr.CodeContentItem(
        Code("121046", "DCM", "Country of Language"), Code("US", "ISO3166_1", "United States"),
        relationship_type="HAS CONCEPT MOD")]

    def section(code: Code, *items: hd.sr.ContentItem) -> hd.sr.ContainerContentItem:
        container = hd.sr.ContainerContentItem(code, relationship_type="CONTAINS")
        container.ContentSequence = list(items)
        return container

    def text(code: Code, value: str) -> hd.sr.TextContentItem:
        return hd.sr.TextContentItem(code, value, relationship_type="CONTAINS")

    coded_finding = hd.sr.CodeContentItem(FINDING, finding, relationship_type="CONTAINS")
    coded_finding.ContentSequence = [_diameter(diameter, ct)]
    # TID 2001 row 1: an IMAGE is INFERRED FROM only where no measurement is
    narrative = text(IMPRESSION, impression)
    narrative.ContentSequence = [
        _image(Code("121080", "DCM", "Best illustration of finding"), ct, "INFERRED FROM")]

    root.ContentSequence = [
        language,
        hd.sr.CodeContentItem(Code("121058", "DCM", "Procedure reported"),
                              Code("77477000", "SCT", "Computed tomography"),
                              relationship_type="HAS CONCEPT MOD"),
        hd.sr.CodeContentItem(Code("121005", "DCM", "Observer Type"),
                              Code("121006", "DCM", "Person"),
                              relationship_type="HAS OBS CONTEXT"),
        hd.sr.PnameContentItem(Code("121008", "DCM", "Person Observer Name"),
                               "Reader^Rita", relationship_type="HAS OBS CONTEXT"),
        hd.sr.TextContentItem(Code("121009", "DCM", "Person Observer's Organization Name"),
                              "Test Hospital Radiology", relationship_type="HAS OBS CONTEXT"),
        section(Code("121060", "DCM", "History"),
                text(Code("121060", "DCM", "History"), "Follow-up of a known vascular finding.")),
        section(Code("121070", "DCM", "Findings"), coded_finding,
                text(FINDING, "Mural thrombus along the aneurysm wall.")),   # TID 2002 TEXT
        section(Code("121072", "DCM", "Impressions"), narrative),
        section(Code("121076", "DCM", "Conclusions"),
                text(Code("121077", "DCM", "Conclusion"), conclusion)),
        section(Code("121074", "DCM", "Recommendations"),
                text(Code("121075", "DCM", "Recommendation"), "Follow-up CT in 12 months.")),
    ]
    sr = hd.sr.ComprehensiveSR(
        evidence=[ct], content=root, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="srcohort tests",
        is_complete=True, is_final=True, is_verified=False)
    _unname(sr)
    return sr


def _unname(item: pydicom.Dataset) -> None:
    """TID 1400 row 3: the IMAGE a path is SELECTED FROM has no concept name. highdicom's
    content items insist on one, so a placeholder is set and dropped from the finished SR."""
    for child in item.get("ContentSequence", []):
        names = child.get("ConceptNameCodeSequence")
        if names and names[0].CodingSchemeDesignator == UNNAMED.scheme_designator:
            del child.ConceptNameCodeSequence
        _unname(child)


PATIENTS = {   # patient id -> (finding, diameter in mm, impression)
    "TID2000-AAA": (AAA, 52.0, "Infrarenal aortic aneurysm of 52 mm; infrarenal aortic "
                               "aneurysm has grown since the prior study."),
    "TID2000-NODULE": (NODULE, 8.0, "Solitary pulmonary nodule; no infrarenal aortic aneurysm."),
    "TID2000-AAA-NOTEXT": (AAA, 31.0, "Ectatic abdominal aorta, below aneurysmal size."),
}


def _write_patients(folder: Path) -> dict[str, Path]:
    """CT plus TID 2000 report per patient, as a site export would hold them."""
    written = {}
    for pid, (finding, diameter, impression) in PATIENTS.items():
        ct = _ct(pid, f"Report^{pid}")
        sr = _report(ct, finding, diameter, impression, f"{finding.meaning}.")
        (folder / pid).mkdir(parents=True)
        ct.save_as(folder / pid / "ct.dcm", enforce_file_format=True)
        sr.save_as(folder / pid / "sr.dcm", enforce_file_format=True)
        written[pid] = folder / pid / "sr.dcm"
    return written


def _profile():
    return next(p for p in default_profiles() if p.template == PROFILE)


def test_report_is_recognised_conforms_and_names_its_fields() -> None:
    sr = _report(_ct("P1", "A^B"), AAA, 52.0, "Infrarenal aortic aneurysm.", "AAA.")
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    assert sr.ContentTemplateSequence[0].MappingResource == "DCMR"
    assert profile_for(sr, default_profiles()) == _profile()
    assert nonconformities(sr, _profile()) == []
    annotation = sr_annotation(sr)
    assert annotation["profile"] == PROFILE
    assert annotation["fields"] == {
        "finding_code": "SCT:233985008", "diameter": 52.0,
        "finding_text": "Mural thrombus along the aneurysm wall.", "impression_text":
        "Infrarenal aortic aneurysm.", "conclusion": "AAA.", "history":
        "Follow-up of a known vascular finding.", "recommendation": "Follow-up CT in 12 months.",
        "procedure_reported": "SCT:77477000"}
    # generic extraction: the diameter sits in the Findings group, tagged with its finding
    (number,) = annotation["numbers"]
    assert (number["name"], number["value"], number["unit"], number["finding"]) == \
        ("SCT:81827009", 52.0, "mm", "SCT:233985008")
    assert [p["graphic_type"] for p in annotation["points"]] == ["POLYLINE"]


def test_profile_claims_no_other_sr(converted: Path) -> None:
    """Our TID 1500/3700/3802/outcome SRs keep their own profiles; foreign SRs stay generic."""
    claimed: dict[str, set[str]] = {}
    for path in sorted(converted.glob("*/dicom/*/*/*.dcm")):
        ds = pydicom.dcmread(path)
        if ds.Modality == "SR":
            profile = profile_for(ds, default_profiles())
            claimed.setdefault(profile.template if profile else "", set()).add(
                str(ds.ContentTemplateSequence[0].TemplateIdentifier)
                if ds.get("ContentTemplateSequence") else "")
    assert PROFILE not in claimed and "" not in claimed
    assert {"1500", "3802", "srcohort-tavi-outcome"} <= claimed.keys()
    for name in ("reportsi.dcm", "test-SR.dcm"):
        foreign = pydicom.dcmread(get_testdata_file(name))
        assert profile_for(foreign, default_profiles()) is None, name


@pytest.mark.validators
def test_three_validators_accept_the_report(tmp_path: Path) -> None:
    require_tool("dciodvfy")
    require_tool("dsrdump")
    require_tool("pixelmed")
    for pid, path in _write_patients(tmp_path).items():
        assert pixelmed_sr(path) == [], pid
        assert dciodvfy(path) == [], pid
        assert dsrdump(path) == [], pid
    # PixelMed did check TID 2000 itself, not only the SR IOD
    out = subprocess.run([*PIXELMED_CMD, str(path)], capture_output=True, text=True,
                         check=False).stdout
    assert "Found Root Template TID_2000 (BasicDiagnosticImagingReport)" in out, out


@pytest.mark.opensearch
def test_cohort_on_coded_finding_and_impression_text(
        opensearch_client, index_prefix: str, tmp_path: Path) -> None:
    _write_patients(tmp_path / "export")
    stats = index_directory(opensearch_client, tmp_path / "export", site="site-tid2000",
                            prefix=index_prefix)
    assert stats.errors == [] and stats.patients == len(PATIENTS)
    cohort = load_cohort(COHORT)
    assert count_patients(opensearch_client, cohort, prefix=index_prefix) == \
        {"site-tid2000": 1, "total": 1}
    (patient,) = list_patients(opensearch_client, cohort, prefix=index_prefix)
    assert patient["patient_id"] == "TID2000-AAA"
    (report,) = [a for a in patient["annotations"] if a.get("profile") == PROFILE]
    assert report["fields"]["finding_code"] == "SCT:233985008"
    assert report["fields"]["diameter"] == 52.0
    # the declared fields are indexed too: the same patients by field name
    _, patients = index_names(index_prefix)

    def by_field(query: dict) -> set[str]:
        body = {"query": {"nested": {"path": "annotations", "query": query}}}
        hits = opensearch_client.search(index=patients, body=body, size=10)["hits"]["hits"]
        return {hit["_source"]["patient_id"] for hit in hits}
    assert by_field({"term": {"annotations.fields.finding_code": "SCT:233985008"}}) == \
        {"TID2000-AAA", "TID2000-AAA-NOTEXT"}
    assert by_field({"range": {"annotations.fields.diameter": {"gte": 50}}}) == {"TID2000-AAA"}
    assert by_field({"term": {"annotations.fields.finding_code": "SCT:427359005"}}) == \
        {"TID2000-NODULE"}
