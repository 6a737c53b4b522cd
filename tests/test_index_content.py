"""Generic SR extraction and Kaapana-style fields, on SRs nobody here wrote."""

from __future__ import annotations

import pydicom
from pydicom.data import get_testdata_file

from srcohort.index.content import sr_annotation
from srcohort.index.documents import patient_documents, series_document
from srcohort.index.fields import kaapana_fields


def test_foreign_sr_is_extracted_by_value_type() -> None:
    ds = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    annotation = sr_annotation(ds)
    assert annotation["title"] and annotation["sop_instance_uid"] == ds.SOPInstanceUID
    extracted = sum(len(annotation[k]) for k in ("codes", "numbers", "points", "texts", "dates"))
    walked = _count_leaf_items(ds)
    assert extracted == walked > 0


def _count_leaf_items(ds: pydicom.Dataset) -> int:
    total = 0
    for item in ds.get("ContentSequence", []):
        kind = item.get("ValueType")
        if kind in ("CODE", "NUM", "SCOORD", "SCOORD3D", "TEXT", "DATE"):
            has_value = {"CODE": "ConceptCodeSequence", "NUM": "MeasuredValueSequence",
                         "TEXT": "TextValue", "DATE": "Date"}.get(kind)
            total += 1 if has_value is None or item.get(has_value) else 0
        total += _count_leaf_items(item)
    return total


def test_kaapana_field_names_and_types() -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    fields = kaapana_fields(ds)
    assert fields["00080060 Modality_keyword"] == "CT"
    assert fields["00100010 PatientName_keyword_alphabetic"] == str(ds.PatientName)
    assert fields["00080020 StudyDate_date"] == "2004-01-19"
    assert fields["00280010 Rows_integer"] == 128
    assert fields["00180050 SliceThickness_float"] == 5.0
    assert fields["00280030 PixelSpacing_float"] == [0.661468, 0.661468]
    assert not any(k.startswith("7FE00010") for k in fields)


def test_patient_rollup_gathers_series_and_annotations() -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    sr = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    sr.PatientID = ct.PatientID
    docs = [series_document("s1", [ct], ["/a.dcm"]), series_document("s1", [sr], ["/b.dcm"])]
    (patient,) = patient_documents(docs).values()
    assert patient["modalities"] == ["CT", "SR"]
    assert len(patient["series"]) == 2 and len(patient["annotations"]) == 1
    assert patient["annotations"][0]["modality"] == "SR"
