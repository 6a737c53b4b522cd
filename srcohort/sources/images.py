"""DICOM folders -> series, with unreadable files reported instead of crashing the scan.

Sites export images in any folder structure and with any file names, so every regular file is
tried; what pydicom cannot read as DICOM (or reads without the identifiers matching needs) is
returned as an error for quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from srcohort.sources.tables import RowError

REQUIRED = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality")


@dataclass
class Series:
    """The files of one series and the header of its first instance (for patient/study data)."""

    uid: str
    patient_id: str
    study_uid: str
    modality: str
    files: list[Path] = field(default_factory=list)
    headers: list[Dataset] = field(default_factory=list)


def read_header(path: Path) -> Dataset:
    """Read a DICOM header without pixel data; raise ValueError with a reason otherwise."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not readable as DICOM: {exc.__class__.__name__}: {exc}") from None
    missing = [kw for kw in REQUIRED if not str(ds.get(kw, "")).strip()]
    if missing:
        raise ValueError(f"DICOM file lacks {', '.join(missing)}")
    return ds


def scan_series(folder: Path) -> tuple[dict[str, Series], list[RowError]]:
    """Group every readable DICOM file below ``folder`` by SeriesInstanceUID."""
    series: dict[str, Series] = {}
    errors: list[RowError] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = read_header(path)
        except ValueError as exc:
            errors.append(RowError(path, None, str(exc)))
            continue
        entry = series.setdefault(ds.SeriesInstanceUID, Series(
            ds.SeriesInstanceUID, str(ds.PatientID).strip(), ds.StudyInstanceUID,
            str(ds.Modality)))
        entry.files.append(path)
        entry.headers.append(ds)
    for entry in series.values():
        order = sorted(range(len(entry.files)),
                       key=lambda i: int(entry.headers[i].get("InstanceNumber", 0) or 0))
        entry.files = [entry.files[i] for i in order]
        entry.headers = [entry.headers[i] for i in order]
    return series, errors
