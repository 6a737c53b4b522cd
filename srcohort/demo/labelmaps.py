"""Synthetic label maps on the demo CTs, written the way different sites' tools write them.

The SEG path must be tested without patient data and against the habits real exports have: a
NIfTI in RAS with rows stored bottom-up (as dcm2niix writes), an NRRD in LPS (as 3D Slicer
writes), and per-site label values that only the site's label table explains. The shapes are
crude ellipsoids around the CT's contrast-filled aortic root so a viewer shows them in place.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import yaml

from srcohort.demo.ct import CTStudy, Geometry
from srcohort.seg.enum import Structure
from srcohort.sources.labelmaps import RAS_TO_LPS

# Ellipsoids relative to the aortic root centre (LPS mm: +x left, +y posterior, +z superior):
# centre offset and radii. The ventricles lie below and in front of the root.
ELLIPSOIDS = {
    Structure.LEFT_VENTRICLE: ((25.0, -15.0, -12.0), (35.0, 28.0, 14.0)),
    Structure.RIGHT_VENTRICLE: ((-25.0, -35.0, -12.0), (30.0, 20.0, 12.0)),
}
CALCIFICATION_ANGLES = (0.4, 2.6, 4.5)   # radians on the valve ring: a few single-voxel nodules


@dataclass(frozen=True)
class LabelStyle:
    """How one site delivers label maps: file format, its label values, its table format."""

    suffix: str
    values: dict[Structure, int]
    table_suffix: str


STYLES = (
    LabelStyle(".nii.gz", {Structure.LEFT_VENTRICLE: 1, Structure.RIGHT_VENTRICLE: 2,
                           Structure.AORTIC_VALVE: 3, Structure.CALCIFICATION: 4}, ".csv"),
    LabelStyle(".nrrd", {Structure.AORTIC_VALVE: 1, Structure.CALCIFICATION: 2,
                         Structure.LEFT_VENTRICLE: 5, Structure.RIGHT_VENTRICLE: 6}, ".yaml"),
)


def label_style(site_number: int) -> LabelStyle:
    """Odd sites deliver NIfTI with a CSV table, even sites NRRD with a YAML table."""
    return STYLES[(site_number + 1) % 2]


def label_volume(study: CTStudy, style: LabelStyle) -> np.ndarray:
    """Labels on ``study``'s CT grid, indexed ``[column, row, slice]`` like the demo's affine."""
    g = study.geometry
    x, y, z = np.meshgrid(*(origin + np.arange(n) * step for origin, n, step in (
        (g.origin[0], g.size, g.pixel_spacing), (g.origin[1], g.size, g.pixel_spacing),
        (g.origin[2], g.slices, g.slice_spacing))), indexing="ij")
    (cx, cy), radius = study.lumen_center, study.lumen_radius
    cz = g.origin[2] + g.slice_spacing        # the annulus plane: second slice from the bottom
    labels = np.zeros(x.shape, dtype=np.uint8)
    for structure, ((dx, dy, dz), (rx, ry, rz)) in ELLIPSOIDS.items():
        inside = ((x - cx - dx) / rx) ** 2 + ((y - cy - dy) / ry) ** 2 + ((z - cz - dz) / rz) ** 2
        labels[inside <= 1] = style.values[structure]
    ring = np.hypot(x - cx, y - cy) <= max(radius, g.pixel_spacing)
    labels[ring & (np.abs(z - cz) < g.slice_spacing / 2)] = style.values[Structure.AORTIC_VALVE]
    for angle in CALCIFICATION_ANGLES:
        i = _index(cx + radius * np.cos(angle), g.origin[0], g.pixel_spacing, g.size)
        j = _index(cy + radius * np.sin(angle), g.origin[1], g.pixel_spacing, g.size)
        labels[i, j, _index(cz, g.origin[2], g.slice_spacing, g.slices)] = \
            style.values[Structure.CALCIFICATION]
    return labels


def _index(position: float, origin: float, spacing: float, size: int) -> int:
    return int(np.clip(round((position - origin) / spacing), 0, size - 1))


def ct_affine(geometry: Geometry) -> np.ndarray:
    """Voxel ``[column, row, slice]`` -> LPS mm of the demo's axial CT."""
    affine = np.diag([geometry.pixel_spacing, geometry.pixel_spacing, geometry.slice_spacing, 1.0])
    affine[:3, 3] = geometry.origin
    return affine


def write_label_map(path: Path, study: CTStudy, style: LabelStyle, *,
                    origin_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Path:
    """``study``'s label map at ``path``; a nonzero ``origin_shift_mm`` makes a mismatched one.

    NIfTI is written with rows reversed, as dcm2niix does, so readers must undo the flip.
    """
    labels, affine = label_volume(study, style), ct_affine(study.geometry)
    affine[:3, 3] += origin_shift_mm
    if Path(path).name.endswith(".nii.gz"):
        labels, affine = _flipped(labels, affine, axis=1)
    return save_label_map(path, labels, affine)


def _flipped(array: np.ndarray, affine: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The same voxels with ``axis`` stored in reverse order, and the affine that says so."""
    flip = np.eye(4)
    flip[axis, axis], flip[axis, 3] = -1.0, array.shape[axis] - 1
    return np.flip(array, axis=axis), affine @ flip


def save_label_map(path: Path, labels: np.ndarray, affine_lps: np.ndarray) -> Path:
    """Write ``labels`` (``[i, j, k]``) with its LPS affine as NIfTI (RAS) or NRRD (LPS, gzip)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith((".nii", ".nii.gz")):
        image = nib.Nifti1Image(np.ascontiguousarray(labels), RAS_TO_LPS @ affine_lps)
        image.set_qform(image.affine, code=1)       # 1: scanner-based anatomical coordinates
        image.set_sform(image.affine, code=1)
        nib.save(image, path)
    else:
        buffer = io.BytesIO()
        nrrd.write(buffer, np.ascontiguousarray(labels), {
            "space": "left-posterior-superior", "space directions": affine_lps[:3, :3].T,
            "space origin": affine_lps[:3, 3], "kinds": ["domain"] * 3, "encoding": "gzip"})
        header, data = buffer.getvalue().split(b"\n\n", 1)
        # pynrrd's comment lines carry the time of writing; the demo must reproduce every byte
        fields = [line for line in header.split(b"\n") if not line.startswith(b"#")]
        path.write_bytes(b"\n".join(fields) + b"\n\n" + data)
    return path


def write_label_table(path: Path, style: LabelStyle) -> Path:
    """The site's label table: CSV ``value,structure`` or YAML ``value: STRUCTURE``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted((value, structure.name) for structure, value in style.values.items())
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("value", "structure"), *rows])
    else:
        path.write_text(yaml.safe_dump(dict(rows), sort_keys=True), encoding="utf-8")
    return path
