"""Generic SR extraction and Kaapana-style fields, on SRs nobody here wrote."""

from __future__ import annotations

import pydicom
from pydicom.data import get_testdata_file

from srcohort.codes import concept_key
from srcohort.index.content import sr_annotation
from srcohort.index.documents import SERIES_KEYS, patient_documents, series_document
from srcohort.index.fields import kaapana_fields
from srcohort.index.mapping import SUMMARY_ATTRIBUTES, patients_index_body


def test_foreign_sr_is_extracted_by_value_type() -> None:
    """Every valued item of an SR nobody here wrote is extracted with its concept and value."""
    ds = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    annotation = sr_annotation(ds)
    assert annotation["title"] and annotation["sop_instance_uid"] == ds.SOPInstanceUID
    extracted = sorted(
        [("codes", c["name"], c["value"]) for c in annotation["codes"]]
        + [("numbers", n["name"], n["value"], n["unit"]) for n in annotation["numbers"]]
        + [("points", p["name"], p["graphic_type"]) for p in annotation["points"]]
        + [("texts", t["name"], t["value"]) for t in annotation["texts"]]
        + [("dates", d["name"], d["value"]) for d in annotation["dates"]])
    walked = sorted(_leaf_items(ds))
    assert walked and extracted == walked
    assert {kind for kind, *_ in walked} >= {"codes", "numbers", "texts"}


def _leaf_items(ds: pydicom.Dataset) -> list[tuple]:
    """(kind, concept, value...) of every valued item, read with pydicom directly."""
    found: list[tuple] = []
    for item in ds.get("ContentSequence", []):
        kind = item.get("ValueType")
        name = concept_key(item.ConceptNameCodeSequence[0]) \
            if item.get("ConceptNameCodeSequence") else ""
        if kind == "CODE" and item.get("ConceptCodeSequence"):
            found.append(("codes", name, concept_key(item.ConceptCodeSequence[0])))
        elif kind == "NUM" and item.get("MeasuredValueSequence"):
            measured = item.MeasuredValueSequence[0]
            unit = measured.get("MeasurementUnitsCodeSequence")
            found.append(("numbers", name, float(measured.NumericValue),
                          str(unit[0].CodeValue) if unit else ""))
        elif kind in ("SCOORD", "SCOORD3D"):
            found.append(("points", name, str(item.get("GraphicType", ""))))
        elif kind == "TEXT" and item.get("TextValue"):
            found.append(("texts", name, str(item.TextValue)))
        elif kind == "DATE" and item.get("Date"):
            text = str(item.Date)
            found.append(("dates", name, f"{text[:4]}-{text[4:6]}-{text[6:8]}"))
        found += _leaf_items(item)
    return found


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


def test_series_summaries_carry_the_filterable_attributes_only() -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    (patient,) = patient_documents([series_document("s1", [ct], ["/a.dcm"])]).values()
    (summary,) = patient["series"]
    assert summary["00080070 Manufacturer_keyword"] == ct.Manufacturer
    assert summary["00280030 PixelSpacing_float"] == [float(v) for v in ct.PixelSpacing]
    assert set(summary) - set(SERIES_KEYS) <= set(SUMMARY_ATTRIBUTES)
    assert "00100010 PatientName_keyword_alphabetic" not in summary


def _fields(properties: dict, path: str = "") -> list[tuple[str, str]]:
    """(path, type) of every mapped field, objects and nested included."""
    found = []
    for name, mapping in properties.items():
        found.append((f"{path}{name}", mapping.get("type", "object")))
        found += _fields(mapping.get("properties", {}), f"{path}{name}.")
        found += [(f"{path}{name}.{sub}", m["type"]) for sub, m in mapping.get("fields", {}).items()]
    return found


def test_patient_mapping_stays_within_opensearch_default_limits() -> None:
    fields = _fields(patients_index_body()["mappings"]["properties"])
    assert sum(kind == "nested" for _, kind in fields) <= 50      # nested_fields.limit
    assert len(fields) < 1000 - 200        # total_fields.limit, room for events and days_from
    assert {f"series.{name}" for name in SUMMARY_ATTRIBUTES} <= {path for path, _ in fields}
