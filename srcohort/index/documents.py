"""Pure document builders: DICOM headers -> series document -> patient roll-up.

Series documents are what Kaapana's metadata index holds (one per series, ``_id`` the
SeriesInstanceUID) plus the nested annotations of the series' SR instances. Patient documents
gather a patient's series and annotations, so one query can require a CT *and* an SR finding
*and* an outcome of the same patient; docs/index.md explains the trade-off.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

from pydicom.dataset import Dataset

from srcohort.index.content import sr_annotation
from srcohort.index.fields import kaapana_fields
from srcohort.index.mapping import SUMMARY_ATTRIBUTES
from srcohort.index.seg_content import seg_annotation
from srcohort.index.timeline import add_offsets, anchors_of
from srcohort.sr.profiles import default_profiles

Document = dict[str, Any]
SERIES_KEYS = ("series_instance_uid", "study_instance_uid", "modality", "study_date",
               "instances", "series_description")


def patient_key(site: str, patient_id: str) -> str:
    return f"{site}/{patient_id}"


def patient_doc_id(key: str) -> str:
    """Opaque, stable document id: the same patient always lands on the same document."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _date(value: Any) -> str | None:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) >= 8 else None


def series_document(site: str, instances: Sequence[Dataset], files: Sequence[str]) -> Document:
    """One series: Kaapana fields of its first instance, srcohort fields, and one annotation
    per SR or SEG instance (both shaped alike, so a cohort queries them the same way).

    ``files`` are every file of the series (one instance each); ``instances`` the datasets the
    document is read from: at least the first file's, and every SR and SEG instance. An image
    series' other slices add nothing but their count, so their headers need not be read."""
    first = instances[0]
    pid = str(first.PatientID).strip()
    doc: Document = kaapana_fields(first)
    doc.update({
        "site": site, "patient_id": pid, "patient_key": patient_key(site, pid),
        "series_instance_uid": str(first.SeriesInstanceUID),
        "study_instance_uid": str(first.StudyInstanceUID),
        "modality": str(first.Modality), "study_date": _date(first.get("StudyDate")),
        "series_description": str(first.get("SeriesDescription", "")),
        "instances": len(files), "files": sorted(files),
        "annotations": [sr_annotation(ds) if ds.Modality == "SR" else seg_annotation(ds)
                        for ds in instances if ds.Modality in ("SR", "SEG")],
    })
    return doc


def patient_documents(series_docs: Iterable[Document]) -> dict[str, Document]:
    """Roll series documents up into one document per patient, keyed by document id.

    Series summaries carry the DICOM attributes listed in ``SUMMARY_ATTRIBUTES`` (what a cohort
    may filter series on), not the whole series document: that keeps the patient mapping bounded.
    """
    patients: dict[str, Document] = {}
    for doc in sorted(series_docs, key=lambda d: d["series_instance_uid"]):
        key = doc["patient_key"]
        patient = patients.setdefault(patient_doc_id(key), {
            "site": doc["site"], "patient_id": doc["patient_id"], "patient_key": key,
            "modalities": [], "series": [], "annotations": []})
        summary = {k: doc.get(k) for k in SERIES_KEYS}
        summary.update({name: doc[name] for name in SUMMARY_ATTRIBUTES if name in doc})
        patient["series"].append(summary)
        if doc["modality"] not in patient["modalities"]:
            patient["modalities"].append(doc["modality"])
        for annotation in doc.get("annotations", []):
            patient["annotations"].append({**annotation, "modality": doc["modality"],
                                           "study_date": doc.get("study_date")})
    anchors = anchors_of(default_profiles())
    for patient in patients.values():
        patient["modalities"].sort()
        add_offsets(patient, anchors)
    return patients
