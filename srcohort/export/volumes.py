"""CT series and their SEGs as voxel arrays on one grid, the form every site's training reads.

A training pipeline sees arrays, not DICOM: every site must turn the same series into the same
array and the same voxel -> world map, or models learn the sites' export habits. ``Volume`` holds
an array indexed ``(i, j, k)`` as nibabel indexes it (along a CT row, down a column, across
slices) and the affine from those indices to NIfTI world millimetres (RAS+, DICOM's LPS with x
and y negated). Every function here is pure: files in, arrays out, nothing written.

Geometry is checked, never guessed. A slice may lie at most ``SLICE_TOLERANCE`` of the slice step
off the regular grid its first and last slice span: DICOM positions are decimal strings that
scanners round (often to 0.01 mm), which stays far below this bound at any slice thickness in
use, whereas a missing or doubled slice is off by a whole step. Slices closer than
``DUPLICATE_MM`` are one position written twice. A stack whose step leaves the slice normal by
more than ``TILT_TOLERANCE`` (the sine of the angle; gantry tilt) is refused, because its voxels
are not boxes and NIfTI's qform cannot say so.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from scipy import ndimage

# DICOM LPS <-> NIfTI RAS: negate x and y (the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SLICE_TOLERANCE = 0.05       # fraction of the slice step a slice may sit off the regular grid
DUPLICATE_MM = 0.01          # slices closer than this along the normal share one position
DIRECTION_TOLERANCE = 1e-4   # largest component difference of two slices' direction cosines
TILT_TOLERANCE = 1e-3        # sine of the angle between the slice step and the slice normal
GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")
INT16 = np.iinfo(np.int16)
# highdicom indexes volumes (slice, row, column); srcohort (column, row, slice): swap 1st and 3rd.
HD_AXES = np.eye(4)[[2, 1, 0, 3]]
NIFTI_DESCRIPTION_BYTES = 80          # size of the NIfTI-1 ``descrip`` field
XFORM_SCANNER = 1                     # NIFTI_XFORM_SCANNER_ANAT: DICOM patient coordinates
# gzip level 1, nibabel's own for .nii.gz: level 9 takes up to 16x as long for ~3% smaller CTs.
GZIP_LEVEL = 1


class VolumeError(ValueError):
    """A series or SEG that cannot become a correct voxel array; says which file and why."""


@dataclass(frozen=True)
class Volume:
    """A 3-D array indexed ``(i, j, k)`` and the 4x4 float64 affine to RAS+ millimetres."""

    array: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) along i, j, k: the lengths of the affine's columns."""
        i, j, k = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(i), float(j), float(k)


@dataclass(frozen=True)
class _Stack:
    """The slices of one series in order along the normal, and their grid in LPS."""

    datasets: list[Dataset]
    affine_lps: np.ndarray         # (i, j, k) -> LPS mm
    shape: tuple[int, int, int]    # (columns, rows, slices)


def ct_volume(files: Sequence[Path]) -> Volume:
    """The HU volume of one single-frame CT series, whatever order ``files`` come in.

    HU = stored value * RescaleSlope + RescaleIntercept per slice (identity when absent, as
    DICOM defines). The array is int16 when slope and intercept are whole numbers and the
    values fit, which keeps every HU exact at half the memory; float32 otherwise.
    """
    stack = _stack([(Path(f), _read(Path(f), pixels=True)) for f in files])
    rescale = [(float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0))
               for ds in stack.datasets]
    stored = [ds.pixel_array for ds in stack.datasets]
    ends = [value * slope + intercept for pixels, (slope, intercept) in zip(stored, rescale)
            for value in (float(pixels.min()), float(pixels.max()))]
    whole = all(slope.is_integer() and intercept.is_integer() for slope, intercept in rescale)
    dtype = np.int16 if whole and INT16.min <= min(ends) and max(ends) <= INT16.max \
        else np.float32
    array = np.empty(stack.shape, dtype=dtype, order="F")
    for k, (pixels, (slope, intercept)) in enumerate(zip(stored, rescale)):
        array[:, :, k] = pixels.T.astype(np.float64) * slope + intercept
    return Volume(array, LPS_TO_RAS @ stack.affine_lps)


def seg_masks(seg_files: Sequence[Path], ct: Sequence[Path] | Volume) -> dict[str, Volume]:
    """One uint8 mask per segment type (``"SCHEME:VALUE"``) on the CT's grid.

    ``ct`` is the referenced series' files (headers suffice) or its ``ct_volume``. Frames are
    placed by their plane positions (highdicom's ``get_volume`` and ``match_geometry``: axis
    permutations, flips, padding, never resampling), so frame order and omitted empty frames do
    not matter. A frame between CT slices, outside the CT, or in another frame of reference
    (checked when ``ct`` is files) is a VolumeError. The same type from several SEGs (e.g. the
    ventricles split over two SEGs) is OR-ed into one mask.
    """
    if isinstance(ct, Volume):
        affine_lps, shape, frame_of_reference = LPS_TO_RAS @ ct.affine, ct.array.shape, None
    else:
        stack = _stack([(Path(f), _read(Path(f), pixels=False)) for f in ct])
        affine_lps, shape = stack.affine_lps, stack.shape
        frame_of_reference = str(stack.datasets[0].get("FrameOfReferenceUID", "")) or None
    grid = hd.VolumeGeometry(affine_lps @ HD_AXES, shape[::-1], "PATIENT", frame_of_reference)
    masks: dict[str, np.ndarray] = {}
    for path in seg_files:
        for key, mask in _seg_on_grid(Path(path), grid):
            masks[key] = masks[key] | mask if key in masks else mask
    return {key: Volume(mask, LPS_TO_RAS @ affine_lps) for key, mask in sorted(masks.items())}


def _seg_on_grid(path: Path, grid: hd.VolumeGeometry) -> list[tuple[str, np.ndarray]]:
    """The segments of one binary SEG on ``grid``: type key and ``(i, j, k)`` uint8 array."""
    try:
        seg = hd.seg.segread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, AttributeError) as exc:
        raise VolumeError(f"{path}: not readable as a DICOM SEG: {exc}") from None
    own = str(seg.get("FrameOfReferenceUID", ""))
    if grid.frame_of_reference_uid is not None and own != grid.frame_of_reference_uid:
        raise VolumeError(f"{path}: SEG frame of reference {own} is not the CT's "
                          f"{grid.frame_of_reference_uid}")
    try:
        volume = seg.get_volume(dtype=np.uint8)
        placed = volume.match_geometry(grid)
    except (RuntimeError, ValueError) as exc:
        raise VolumeError(f"{path}: SEG frames do not land on the CT's voxels: {exc}") from None
    numbers = volume.get_channel_values("ReferencedSegmentNumber")
    lost = [n for c, n in enumerate(numbers)
            if int(volume.array[..., c].sum()) != int(placed.array[..., c].sum())]
    if lost:
        raise VolumeError(f"{path}: segment(s) {', '.join(map(str, lost))} reach outside the CT")
    codes = [seg.get_segment_description(n).segmented_property_type for n in numbers]
    return [(f"{code.scheme_designator}:{code.value}",
             np.asfortranarray(placed.array[..., channel].transpose(2, 1, 0)))
            for channel, code in enumerate(codes)]


def canonical(volume: Volume, *, spacing: tuple[float, float, float] | None = None,
              order: int = 1) -> Volume:
    """``volume`` reoriented to RAS+ and, given ``spacing`` (mm), resampled to it.

    Reorienting only permutes and flips axes (nibabel's closest canonical), so no value
    changes. Resampling keeps the field of view: ``round(extent / spacing)`` voxels per axis,
    centred where the old grid was centred, so the extent changes by at most half a new voxel
    and every sample point lies inside the old field of view. Samples within half an old voxel
    of its border take the border voxel's value (``mode="nearest"``), not a padding constant that
    would darken CT edges or cut masks. ``order`` is the spline order: 1 for CT (float32 out),
    0 for masks (nearest neighbour, dtype kept). The new grid depends only on the affine, shape
    and spacing, so a CT and its masks stay voxel-aligned under the same call.
    """
    orientation = nib.orientations.io_orientation(volume.affine)
    array = nib.orientations.apply_orientation(volume.array, orientation)
    affine = volume.affine @ nib.orientations.inv_ornt_aff(orientation, volume.array.shape)
    if spacing is None:
        return Volume(array, affine)
    old = np.linalg.norm(affine[:3, :3], axis=0)
    step = np.asarray(spacing, dtype=float) / old          # new voxel size in old voxels
    shape = np.maximum(1, np.rint(np.asarray(array.shape) / step)).astype(int)
    start = (np.asarray(array.shape) - 1) / 2 - (shape - 1) / 2 * step   # centres coincide
    output = array.dtype if order == 0 else np.float32
    resampled = ndimage.affine_transform(array, step, offset=start, output_shape=tuple(shape),
                                         output=output, order=order, mode="nearest")
    index_map = np.diag([*step, 1.0])
    index_map[:3, 3] = start
    return Volume(resampled, affine @ index_map)


def nifti_bytes(volume: Volume, *, description: str = "") -> bytes:
    """The volume as ``.nii.gz`` bytes, identical for identical input.

    qform and sform both hold the affine with code 1 (scanner anatomical: the DICOM patient
    coordinates, as dcm2niix writes them), units are mm. The gzip header has mtime 0 and no file
    name, so re-exporting gives the same bytes and checksums. The only free text in the header is
    ``description`` (at most 80 ASCII bytes); nothing about the patient is written.
    """
    if not description.isascii() or len(description) > NIFTI_DESCRIPTION_BYTES:
        raise VolumeError(f"NIfTI description must be at most {NIFTI_DESCRIPTION_BYTES} ASCII "
                          f"characters, got {description!r}")
    image = nib.Nifti1Image(np.asarray(volume.array), np.asarray(volume.affine, dtype=float))
    image.set_qform(volume.affine, code=XFORM_SCANNER)
    image.set_sform(volume.affine, code=XFORM_SCANNER)
    image.header.set_xyzt_units(xyz="mm")
    image.header["descrip"] = description.encode("ascii")
    return gzip.compress(image.to_bytes(), compresslevel=GZIP_LEVEL, mtime=0)


def _read(path: Path, *, pixels: bool) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise VolumeError(f"{path}: not readable as DICOM: {exc}") from None


def _stack(files: list[tuple[Path, Dataset]]) -> _Stack:
    """The slices sorted along the normal and their grid, or VolumeError naming the culprit."""
    if not files:
        raise VolumeError("no CT files given")
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in files})
    if len(series) != 1:
        raise VolumeError(f"files of {len(series)} series given, want one: {', '.join(series)}")
    name = f"series {series[0]}"
    for path, ds in files:
        missing = [kw for kw in GEOMETRY if kw not in ds]
        if missing:
            raise VolumeError(f"{name}: {path} lacks {', '.join(missing)}")
        if int(ds.get("NumberOfFrames", 1) or 1) != 1:
            raise VolumeError(f"{name}: {path} is a multi-frame image; want single-frame slices")
    first_path, first = files[0]
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    layout = (int(first.Rows), int(first.Columns), [float(v) for v in first.PixelSpacing])
    for path, ds in files:
        if np.abs(np.asarray(ds.ImageOrientationPatient, dtype=float) - orientation).max() \
                > DIRECTION_TOLERANCE:
            raise VolumeError(f"{name}: mixed orientation: {path} has ImageOrientationPatient "
                              f"{list(ds.ImageOrientationPatient)}, {first_path} "
                              f"{list(first.ImageOrientationPatient)}")
        own = (int(ds.Rows), int(ds.Columns), [float(v) for v in ds.PixelSpacing])
        if own != layout:
            raise VolumeError(f"{name}: different shapes: {path} has {own[0]}x{own[1]} pixels "
                              f"of {own[2]} mm, {first_path} {layout[0]}x{layout[1]} of "
                              f"{layout[2]} mm")
    if len(files) < 2:
        raise VolumeError(f"{name}: one slice; a volume needs at least two")
    normal = np.cross(orientation[:3], orientation[3:])
    files = sorted(files, key=lambda f: float(np.dot(f[1].ImagePositionPatient, normal)))
    positions = np.array([ds.ImagePositionPatient for _, ds in files], dtype=float)
    _check_positions(name, [path for path, _ in files], positions, normal)
    step = (positions[-1] - positions[0]) / (len(files) - 1)
    affine = np.eye(4)
    affine[:3, :] = np.column_stack([orientation[:3] * layout[2][1],
                                     orientation[3:] * layout[2][0], step, positions[0]])
    return _Stack([ds for _, ds in files], affine, (layout[1], layout[0], len(files)))


def _check_positions(name: str, paths: list[Path], positions: np.ndarray,
                     normal: np.ndarray) -> None:
    """Refuse duplicate positions, tilted stacks and slices off the regular grid."""
    along = positions @ normal
    gaps = np.diff(along)
    if gaps.min() < DUPLICATE_MM:
        k = int(gaps.argmin())
        raise VolumeError(f"{name}: duplicate position {positions[k].tolist()} in {paths[k]} "
                          f"and {paths[k + 1]}")
    step = (positions[-1] - positions[0]) / (len(paths) - 1)
    tilt = np.linalg.norm(np.cross(step / np.linalg.norm(step), normal))
    if tilt > TILT_TOLERANCE:
        raise VolumeError(f"{name}: slices are not stacked along their normal (tilted by "
                          f"{np.degrees(np.arcsin(min(tilt, 1.0))):.3f} degrees; gantry tilt?)")
    off = np.linalg.norm(positions - positions[0] - np.outer(np.arange(len(paths)), step), axis=1)
    if off.max() > SLICE_TOLERANCE * np.linalg.norm(step):
        k = int(off.argmax())
        raise VolumeError(
            f"{name}: non-uniform slice spacing: {paths[k]} lies {off[k]:.3f} mm off the regular "
            f"grid (gaps {gaps.min():.3f} to {gaps.max():.3f} mm; tolerance "
            f"{SLICE_TOLERANCE:.0%} of the {np.linalg.norm(step):.3f} mm step)")
