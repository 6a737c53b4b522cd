"""Label maps (NIfTI, NRRD) and a site's label table, read into one patient-coordinate convention.

Sites deliver segmentations as the tools they use write them: NIfTI from nnU-Net or ITK-SNAP
(affine in RAS), NRRD from 3D Slicer (any anatomical space, usually LPS or RAS). DICOM lives in
LPS, so every reader returns the affine that maps voxel indices ``(i, j, k)`` to LPS millimetres;
comparing it with the CT is then one convention, not one per format. A label value means nothing
until the site's label table names the structure, so the table is read here too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import yaml

from srcohort.seg.enum import Structure

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# NRRD anatomical spaces -> sign of each axis relative to LPS (NRRD format spec, "space").
NRRD_SPACES = {
    "left-posterior-superior": (1, 1, 1), "lps": (1, 1, 1),
    "right-anterior-superior": (-1, -1, 1), "ras": (-1, -1, 1),
    "left-anterior-superior": (1, -1, 1), "las": (1, -1, 1),
}
TABLE_COLUMNS = ("value", "structure")


class LabelMapError(ValueError):
    """A label map or label table that cannot become a correct DICOM SEG; says file and reason."""


@dataclass(frozen=True)
class LabelMap:
    """Integer labels indexed ``[i, j, k]`` and the 4x4 affine from ``(i, j, k)`` to LPS mm."""

    path: Path
    array: np.ndarray
    affine: np.ndarray


@dataclass(frozen=True)
class LabelTable:
    """A site's label value -> canonical structure, and the file it came from (for errors)."""

    path: Path
    structures: dict[int, Structure]


def read_label_map(path: Path) -> LabelMap:
    """Read a NIfTI (``.nii``, ``.nii.gz``) or NRRD (``.nrrd``, ``.nhdr``) label map."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        array, affine = _read_nifti(path)
    elif name.endswith((".nrrd", ".nhdr")):
        array, affine = _read_nrrd(path)
    else:
        raise LabelMapError(f"{path}: not a label map format srcohort reads "
                            "(.nii, .nii.gz, .nrrd, .nhdr)")
    return LabelMap(path, _labels(path, array), affine)


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """NIfTI's sform (or qform) is RAS; flipping x and y gives LPS.

    With both codes 0, nibabel still returns an affine, but one built from voxel sizes alone:
    no patient position, so such a file is refused rather than placed at an invented origin.
    """
    try:
        image = nib.load(path)
        array = np.asanyarray(image.dataobj)
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        raise LabelMapError(f"{path}: not readable as NIfTI: {exc}") from None
    if not (image.header["sform_code"] > 0 or image.header["qform_code"] > 0):
        raise LabelMapError(f"{path}: NIfTI sform_code and qform_code are 0 (no patient "
                            "coordinates)")
    return array, RAS_TO_LPS @ image.affine


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """NRRD's ``space directions`` are rows per axis; ``space`` says which anatomical space."""
    try:
        array, header = nrrd.read(str(path))
    except (OSError, EOFError, ValueError, nrrd.NRRDError) as exc:
        raise LabelMapError(f"{path}: not readable as NRRD: {exc}") from None
    space = str(header.get("space", "")).lower()
    if space not in NRRD_SPACES:
        raise LabelMapError(f"{path}: NRRD space {header.get('space')!r} is not a patient space "
                            "(want left-posterior-superior, right-anterior-superior or "
                            "left-anterior-superior)")
    directions = np.asarray(header.get("space directions", []), dtype=float)
    origin = np.asarray(header.get("space origin", []), dtype=float)
    if directions.shape != (3, 3) or origin.shape != (3,) or not np.isfinite(directions).all():
        raise LabelMapError(f"{path}: NRRD needs 'space directions' for three spatial axes and a "
                            f"'space origin' (got directions {directions.tolist()}, "
                            f"origin {origin.tolist()})")
    affine = np.eye(4)
    affine[:3, :3] = directions.T
    affine[:3, 3] = origin
    return array, np.diag([*NRRD_SPACES[space], 1.0]) @ affine


def _labels(path: Path, array: np.ndarray) -> np.ndarray:
    """A 3D integer array; a trailing axis of length 1 (4D NIfTI from some tools) is dropped."""
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise LabelMapError(f"{path}: a label map must be 3D, got shape {array.shape}")
    if array.dtype == np.bool_:                 # a single-structure mask
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.array_equal(array, array.round())):
            raise LabelMapError(f"{path}: label values must be whole numbers, got {array.dtype} "
                                "with fractional values")
        array = array.astype(np.int64)
    if array.min(initial=0) < 0:
        raise LabelMapError(f"{path}: negative label value {int(array.min())}")
    return np.asarray(array)


def read_label_table(path: Path) -> LabelTable:
    """A CSV (columns ``value,structure``) or YAML (``value: STRUCTURE``) label table."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelMapError(f"{path}: cannot read label table: {exc}") from None
    if path.suffix.lower() == ".csv":
        entries = _csv_entries(path, text)
    elif path.suffix.lower() in (".yaml", ".yml"):
        entries = _yaml_entries(path, text)
    else:
        raise LabelMapError(f"{path}: a label table is .csv, .yaml or .yml")
    structures: dict[int, Structure] = {}
    for where, value, name in entries:
        label = _label_value(path, where, value)
        if label in structures:
            raise LabelMapError(f"{path}, {where}: label value {label} is listed twice")
        structures[label] = _structure(path, where, name)
    if not structures:
        raise LabelMapError(f"{path}: label table lists no label")
    return LabelTable(path, structures)


def _csv_entries(path: Path, text: str) -> list[tuple[str, object, object]]:
    rows = list(csv.reader(text.splitlines()))
    header = tuple(cell.strip().lower() for cell in rows[0]) if rows else ()
    if header[:2] != TABLE_COLUMNS:
        raise LabelMapError(f"{path}: the first line must be the header 'value,structure', "
                            f"got {','.join(header)!r}")
    return [(f"line {number}", row[0], row[1] if len(row) > 1 else "")
            for number, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]


def _yaml_entries(path: Path, text: str) -> list[tuple[str, object, object]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LabelMapError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise LabelMapError(f"{path}: a YAML label table is a mapping 'value: STRUCTURE'")
    return [(f"key {value!r}", value, name) for value, name in data.items()]


def _label_value(path: Path, where: str, value: object) -> int:
    try:
        label = int(str(value).strip())
    except ValueError:
        raise LabelMapError(f"{path}, {where}: label value {value!r} is not a whole number") \
            from None
    if label <= 0:
        raise LabelMapError(f"{path}, {where}: label value {label} is not positive "
                            "(0 is the background)")
    return label


def _structure(path: Path, where: str, name: object) -> Structure:
    try:
        return Structure[str(name).strip().upper()]
    except KeyError:
        known = ", ".join(member.name for member in Structure)
        raise LabelMapError(f"{path}, {where}: unknown structure {name!r} (known: {known})") \
            from None
