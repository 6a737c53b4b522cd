"""The demo sites' ECG files and label maps, each site in its own formats.

ECGs are written in the site's vendor format (GE MUSE, Philips, HL7 aECG, SCP-ECG, DICOM), some
weeks before the TAVI, showing LBBB exactly when the registry says so. Label maps sit on the
patient's CT grid; some patients have the left and right ventricle in two *different* label
maps, the case that only nested queries answer correctly ("a SEG with both ventricles").
Ground truth is taken from what was written, not from what was meant.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srcohort.demo.ct import CTStudy
from srcohort.demo.ecg_files import (synthetic_recording, write_aecg, write_dicom, write_muse,
                                     write_philips, write_scp)
from srcohort.demo.labelmaps import (ct_affine, label_style, label_volume, save_label_map,
                                    write_label_table)
from srcohort.seg.enum import Structure

ECG_WRITERS: dict[str, tuple[Callable[..., Path], str]] = {
    "ge-muse": (write_muse, ".xml"), "philips": (write_philips, ".xml"),
    "hl7-aecg": (write_aecg, ".xml"), "scp": (write_scp, ".scp"), "dicom": (write_dicom, ".dcm"),
}
ECG_SHARE, SEG_SHARE = 0.8, 0.7
# How a patient's structures are split over label maps: one map with both ventricles, one
# ventricle only, or the two ventricles in two separate maps.
SEG_LAYOUTS = {"both": 0.6, "left-only": 0.15, "right-only": 0.1, "split": 0.15}
LV, RV = Structure.LEFT_VENTRICLE, Structure.RIGHT_VENTRICLE


@dataclass
class SignalsWritten:
    """What one site's ECG and label map files hold, for the ground truth and mapping.yaml."""

    ecg: dict[str, dict[str, Any]] = field(default_factory=dict)            # patient -> truth
    segmentations: dict[str, list[list[str]]] = field(default_factory=dict)  # patient -> maps
    faults: list[dict[str, Any]] = field(default_factory=list)
    mapping: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)


def ecg_format(site_number: int) -> str:
    return list(ECG_WRITERS)[(site_number - 1) % len(ECG_WRITERS)]


def write_signals(root: Path, site_number: int, seed: int, patients: list, *,
                  truncated_ecg: bool, shifted_labelmap: bool) -> SignalsWritten:
    """Write ``root``/ecg, ``root``/labelmaps and their tables for ``patients``."""
    rng = np.random.default_rng([seed, site_number, 7])
    written = SignalsWritten()
    _ecgs(root, site_number, seed, patients, rng, written, truncated_ecg)
    _label_maps(root, site_number, [p for p in patients if p.ct is not None], rng, written,
                shifted_labelmap)
    return written


def _ecgs(root: Path, site_number: int, seed: int, patients: list, rng: np.random.Generator,
          written: SignalsWritten, truncated: bool) -> None:
    name = ecg_format(site_number)
    writer, suffix = ECG_WRITERS[name]
    (root / "ecg").mkdir(parents=True, exist_ok=True)
    files = []
    for serial, patient in enumerate(patients, start=1):
        if rng.random() >= ECG_SHARE:
            continue
        acquired = dt.datetime.combine(
            patient.tavi_date - dt.timedelta(days=int(rng.integers(1, 150))),
            dt.time(int(rng.integers(7, 17)), int(rng.integers(0, 60))))
        recording = synthetic_recording(
            patient.patient_id, patient_name=patient.name, birth_date=patient.birth_date,
            sex=patient.sex, acquired=acquired, lbbb=patient.lbbb, seed=seed)
        path = writer(recording, root / "ecg" / f"ECG{site_number:02d}{serial:04d}{suffix}")
        files.append(path)
        written.ecg[patient.patient_id] = {"format": name, "date": acquired.date().isoformat(),
                                           "lbbb": patient.lbbb,
                                           "file": str(path.relative_to(root))}
    if truncated and files:
        broken = files[0].with_name(f"{files[0].stem}_copy{suffix}")
        data = files[0].read_bytes()
        broken.write_bytes(data[: len(data) // 2])
        written.faults.append({"file": str(broken.relative_to(root)), "line": None,
                               "kind": "truncated_ecg", "patient_id": None})
    written.mapping["ecg"] = "ecg"


def _label_maps(root: Path, site_number: int, patients: list, rng: np.random.Generator,
                written: SignalsWritten, shifted: bool) -> None:
    style = label_style(site_number)
    rows = []
    for serial, patient in enumerate(patients, start=1):
        if rng.random() >= SEG_SHARE:
            continue
        layout = str(rng.choice(list(SEG_LAYOUTS), p=list(SEG_LAYOUTS.values())))
        drops = {"both": [()], "left-only": [(RV,)], "right-only": [(LV,)],
                 "split": [(RV,), (LV,)]}[layout]
        for k, dropped in enumerate(drops, start=1):
            rel = f"labelmaps/{site_number:02d}{serial:04d}_{k}{style.suffix}"
            present = _write_map(root / rel, patient.ct, style, dropped)
            rows.append((patient.patient_id, rel))
            written.segmentations.setdefault(patient.patient_id, []).append(present)
    if shifted and rows:
        pid, rel = rows[0]
        bad = rel.replace(style.suffix, f"_shifted{style.suffix}")
        _write_map(root / bad, next(p for p in patients if p.patient_id == pid).ct, style, (),
                   shift=(0.0, 0.0, 5.0))
        rows.append((pid, bad))
        written.faults.append({"file": "tables/segmentations.csv", "line": len(rows) + 1,
                               "kind": "labelmap_geometry", "patient_id": pid})
    table = root / "tables" / "segmentations.csv"
    table.parent.mkdir(parents=True, exist_ok=True)
    with table.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("PatientID", "Labelmap"), *rows])
    label_table = write_label_table(root / "tables" / f"labels{style.table_suffix}", style)
    written.mapping["label_table"] = str(label_table.relative_to(root))
    written.tables["segmentations"] = {"file": "tables/segmentations.csv",
                                       "columns": {"patient_id": "PatientID", "file": "Labelmap"}}


def _write_map(path: Path, study: CTStudy, style, dropped: tuple[Structure, ...],
               shift: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> list[str]:
    """One label map without the ``dropped`` structures; returns the structures it holds."""
    labels = label_volume(study, style)
    for structure in dropped:
        labels[labels == style.values[structure]] = 0
    affine = ct_affine(study.geometry)
    affine[:3, 3] += shift
    save_label_map(path, labels, affine)
    values = {int(v) for v in np.unique(labels) if v}
    return sorted(s.name for s, v in style.values.items() if v in values)
