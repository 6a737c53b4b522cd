"""A synthetic hospital site at clinical size, written at disk speed.

Each patient has a planning CT (``matrix`` x ``matrix`` x ``slices``, 0.7 mm pixels at 512,
1 mm slices), a label map on it with 3 to 6 cardiac structures, a 10 s 500 Hz ECG (GE MUSE
XML), a registry row and the TAVI's procedure code, laid out as docs/site-exports.md describes.

Encoding 300 slices with pydicom costs seconds per patient, so one CT series is encoded once
per size: its headers are srcohort.demo.ct's (every Type 1 and 2 attribute of the CT Image
IOD) with placeholder UIDs, patient id and name of fixed length, and its pixels are one
phantom shared by all patients (body, lungs, spine, a contrast-filled heart and aorta, noise).
A patient then costs replacing the placeholders in each header and writing the file. Label
maps are written once per number of structures and hard-linked per patient.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from srcohort.demo.ct import CTStudy, Geometry, ct_series
from srcohort.demo.ecg_files import synthetic_recording, write_muse
from srcohort.demo.labelmaps import save_label_map
from srcohort.logs import get_logger, progress
from srcohort.seg.enum import Structure

log = get_logger("benchmarks.clinical_site")
PIXEL_MM_AT_512 = 0.7
SLICE_MM = 1.0
STUDY_DATE = dt.date(2023, 3, 14)
TAVI_DATE = dt.date(2023, 4, 20)
# Label value -> structure and ellipsoid (centre, radii) in fractions of the field of view.
STRUCTURES = (
    (1, Structure.LEFT_VENTRICLE, (0.52, 0.47, 0.40), (0.11, 0.09, 0.13)),
    (2, Structure.RIGHT_VENTRICLE, (0.42, 0.45, 0.40), (0.09, 0.08, 0.12)),
    (3, Structure.AORTIC_ROOT, (0.50, 0.50, 0.55), (0.03, 0.03, 0.05)),
    (4, Structure.LEFT_ATRIUM, (0.55, 0.58, 0.55), (0.07, 0.05, 0.07)),
    (5, Structure.RIGHT_ATRIUM, (0.40, 0.55, 0.55), (0.06, 0.05, 0.07)),
    (6, Structure.CALCIFICATION, (0.51, 0.50, 0.52), (0.006, 0.006, 0.01)),
)
MIN_STRUCTURES = 3


def uid(*parts: str) -> str:
    """A UID of fixed length (2.25 and 39 digits, no leading zero) derived from ``parts``."""
    value = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:16], "big")
    return f"2.25.{10 ** 38 + value % (9 * 10 ** 38)}"


def structures(n: int) -> int:
    """How many structures patient ``n``'s label map holds: 3 to 6, in turn."""
    return MIN_STRUCTURES + n % (len(STRUCTURES) - MIN_STRUCTURES + 1)


def patient_id(n: int) -> str:
    return f"CLIN{n:06d}"


def _name(n: int) -> str:
    return f"Musterfrau^Erika{n:06d}"


class _Study(CTStudy):
    """The demo's CT study with fixed-length UIDs, so they can be replaced in encoded bytes."""

    def uid(self, *parts: str) -> str:
        return uid(*self.uid_parts, *parts)


@dataclass(frozen=True)
class Size:
    """One CT size of the benchmark."""

    matrix: int
    slices: int

    @property
    def pixel_mm(self) -> float:
        return PIXEL_MM_AT_512 * 512 / self.matrix

    @property
    def label(self) -> str:
        return f"{self.matrix}x{self.matrix}x{self.slices}"

    def geometry(self) -> Geometry:
        half = (self.matrix - 1) * self.pixel_mm / 2
        return Geometry(origin=(-half, -half - 20.0, -200.0), pixel_spacing=self.pixel_mm,
                        slice_spacing=SLICE_MM, size=self.matrix, slices=self.slices)


def _study(n: int, size: Size) -> _Study:
    return _Study(("srcohort-clinical-benchmark", size.label, str(n)), patient_id(n), _name(n),
                  dt.date(1948, 5, 17), "F", STUDY_DATE, "101500", "CLINACC0000001",
                  "Referrer^Anna", "Example Heart Centre", "SIEMENS",
                  "SOMATOM Force", "Cardiac 1.0 Bv40", size.geometry(), (0.0, 0.0), 12.0)


class Phantom:
    """HU slices of a chest: air, body, lungs, spine, a heart with contrast that moves and
    narrows from slice to slice, and CT-like noise (a pool of fields, shifted per slice)."""

    def __init__(self, size: Size, seed: int = 0) -> None:
        n = size.matrix
        self.size = size
        self.y, self.x = np.mgrid[0:n, 0:n] / n
        x, y = self.x, self.y
        base = np.full((n, n), -1000.0)
        base[((x - 0.5) / 0.45) ** 2 + ((y - 0.5) / 0.33) ** 2 <= 1] = 40.0
        for cx in (0.3, 0.7):
            base[((x - cx) / 0.13) ** 2 + ((y - 0.47) / 0.2) ** 2 <= 1] = -850.0
        base[((x - 0.5) / 0.04) ** 2 + ((y - 0.74) / 0.04) ** 2 <= 1] = 700.0
        self.base = base
        rng = np.random.default_rng(seed)
        self.noise = rng.normal(0.0, 18.0, (8, n, n))

    def slice(self, k: int) -> np.ndarray:
        z = k / max(self.size.slices - 1, 1)
        hu = self.base.copy()
        hu[((self.x - 0.48 - 0.03 * z) / 0.13) ** 2 + ((self.y - 0.47) / 0.11) ** 2
           <= 1 - (2 * z - 1) ** 2] = 350.0
        hu += np.roll(self.noise[k % len(self.noise)], k, axis=1)
        return np.rint(hu)


@dataclass(frozen=True)
class _Template:
    """The encoded slices of one CT series and the placeholders to replace per patient."""

    headers: list[bytes]
    pixels: list[memoryview]
    per_patient: tuple[str, ...]        # template values, each replaced by the patient's own
    instances: list[str]                # the template's SOP Instance UID of each slice


def _template(size: Size) -> _Template:
    study = _study(0, size)
    phantom = Phantom(size)
    headers, pixels = [], []
    for k, ds in enumerate(ct_series(study)):
        ds.PixelData = (phantom.slice(k) + 1024).astype("<i2").tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        encoded = buffer.getvalue()
        split = len(encoded) - len(ds.PixelData)
        headers.append(encoded[:split])
        pixels.append(memoryview(encoded)[split:])
    return _Template(headers, pixels, (study.study_uid, study.series_uid,
                                       study.frame_of_reference_uid, study.patient_id,
                                       study.patient_name),
                     [study.sop_instance_uid(k) for k in range(size.slices)])


def _label_maps(folder: Path, size: Size) -> dict[int, Path]:
    """One label map per number of structures (3..6), on the CT's grid, LPS affine. Each
    ellipsoid is drawn inside its bounding box only."""
    shape = np.array([size.matrix, size.matrix, size.slices])
    geometry = size.geometry()
    affine = np.diag([geometry.pixel_spacing, geometry.pixel_spacing, SLICE_MM, 1.0])
    affine[:3, 3] = geometry.origin
    maps = {}
    for count in range(MIN_STRUCTURES, len(STRUCTURES) + 1):
        labels = np.zeros(tuple(shape), dtype=np.uint8)
        for value, _, centre, radii in STRUCTURES[:count]:
            low = np.maximum(np.floor((np.subtract(centre, radii)) * shape), 0).astype(int)
            high = np.minimum(np.ceil((np.add(centre, radii)) * shape) + 1, shape).astype(int)
            box = np.ogrid[tuple(slice(a, b) for a, b in zip(low, high))]
            inside = sum(((g / n - c) / r) ** 2 for g, n, c, r
                         in zip(box, shape, centre, radii)) <= 1
            labels[tuple(slice(a, b) for a, b in zip(low, high))][inside] = value
        maps[count] = save_label_map(folder / f"structures-{count}.nii.gz", labels, affine)
    return maps


def write_site(root: Path, site: str, size: Size, patients: int) -> list[str]:
    """Write the site export into ``root`` and return the patient ids."""
    template = _template(size)
    for folder in ("images", "ecg", "labelmaps", "tables", ".shared"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    shared = _label_maps(root / ".shared", size)
    ids = [patient_id(n) for n in range(1, patients + 1)]
    for n, pid in progress(enumerate(ids, start=1), total=len(ids), what="patients written",
                           logger=log):
        study = _study(n, size)
        own = (study.study_uid, study.series_uid, study.frame_of_reference_uid, pid, _name(n))
        folder = root / "images" / pid
        folder.mkdir()
        for k, (header, pixels) in enumerate(zip(template.headers, template.pixels)):
            for old, new in zip((*template.per_patient, template.instances[k]),
                                (*own, study.sop_instance_uid(k))):
                header = header.replace(old.encode(), new.encode())
            with open(folder / f"IM{k + 1:05d}.dcm", "wb") as handle:
                handle.write(header)
                handle.write(pixels)
        os.link(shared[structures(n)], root / "labelmaps" / f"{pid}.nii.gz")
        recording = synthetic_recording(
            pid, patient_name=_name(n), birth_date=dt.date(1948, 5, 17), sex="F",
            acquired=dt.datetime(2023, 3, 20, 9, 30), lbbb=n % 3 == 0, seed=n)
        write_muse(recording, root / "ecg" / f"{pid}.xml")
    _tables(root, ids)
    return ids


def _tables(root: Path, ids: list[str]) -> None:
    tables = root / "tables"
    _csv(tables / "registry.csv", ["patient", "tavi", "valve", "size"],
         [[pid, TAVI_DATE.isoformat(), "Evolut PRO+", "29"] for pid in ids])
    _csv(tables / "procedures.csv", ["patient", "code", "date"],
         [[pid, "5-35a.00", TAVI_DATE.isoformat()] for pid in ids])
    _csv(tables / "segmentations.csv", ["patient", "file"],
         [[pid, f"labelmaps/{pid}.nii.gz"] for pid in ids])
    _csv(tables / "labels.csv", ["value", "structure"],
         [[value, structure.name] for value, structure, _, _ in STRUCTURES])
    mapping = {
        "site": root.name, "institution": "Example Heart Centre", "images": "images",
        "ecg": "ecg", "label_table": "tables/labels.csv",
        "tables": {
            "registry": {"file": "tables/registry.csv", "date_format": "%Y-%m-%d",
                         "columns": {"patient_id": "patient", "tavi_date": "tavi",
                                     "prosthesis": "valve", "prosthesis_size": "size"},
                         "values": {"prosthesis": {"Evolut PRO+": "EVOLUT"}}},
            "procedures": {"file": "tables/procedures.csv", "date_format": "%Y-%m-%d",
                           "columns": {"patient_id": "patient", "code": "code",
                                       "date": "date"}},
            "segmentations": {"file": "tables/segmentations.csv",
                              "columns": {"patient_id": "patient", "file": "file"}}}}
    (root / "mapping.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False), "utf-8")


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


