"""Put a label map on the CT's frames, or refuse: never a silently shifted mask.

A SEG frame is tied to a CT slice, so the label map must sample exactly the CT's voxel grid.
Both grids are affine maps from voxel indices to LPS millimetres; they agree when each label-map
axis runs along a CT axis (either way round: dcm2niix stores rows bottom-up), with the same
spacing and shape, and the first voxels coincide. Then the label map is only transposed and
flipped, never resampled. Anything else raises ``LabelMapError`` naming the quantity (orientation,
spacing, shape, origin) and by how much it differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from srcohort.sources import labelmaps

DIRECTION_TOLERANCE = 1e-4        # length of the difference of two unit axis vectors
SPACING_TOLERANCE = 1e-4          # relative; 0.05 voxel over 512 voxels
POSITION_TOLERANCE_MM = 0.01      # origin; CT slice positions against a regular grid
SLICE_GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
                  "Columns")
AXES = ("column", "row", "slice")  # CT voxel index (i, j, k): along a row, down a column, slices


@dataclass(frozen=True)
class CTGrid:
    """The CT's slices in order along the slice normal and their voxel grid in LPS."""

    headers: list[Dataset]
    affine: np.ndarray             # (i, j, k) -> LPS mm
    shape: tuple[int, int, int]    # (columns, rows, slices)


def frames_on_ct(label_map: labelmaps.LabelMap,
                 ct_headers: Sequence[Dataset]) -> tuple[list[Dataset], np.ndarray]:
    """The CT slices in grid order and the labels as ``(slice, row, column)`` frames for them."""
    try:
        grid = ct_grid(ct_headers)
        return grid.headers, reorient(label_map, grid).transpose(2, 1, 0)
    except labelmaps.LabelMapError as exc:
        raise labelmaps.LabelMapError(f"{label_map.path}: {exc}") from None


def ct_grid(headers: Sequence[Dataset]) -> CTGrid:
    """The voxel grid of a single-frame CT series (at least two parallel, evenly spaced slices)."""
    series = {str(h.get("SeriesInstanceUID", "")) for h in headers}
    if len(series) != 1 or len(headers) < 2:
        raise labelmaps.LabelMapError(f"want the slices of one CT series (at least two), got "
                                      f"{len(headers)} header(s) of {len(series)} series")
    for header in headers:
        _require_slice_geometry(header)
    first = headers[0]
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    for header in headers:
        _same_slice_layout(first, header, orientation)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    ordered = sorted(headers, key=lambda h: float(np.dot(h.ImagePositionPatient, normal)))
    positions = np.array([h.ImagePositionPatient for h in ordered], dtype=float)
    step = (positions[-1] - positions[0]) / (len(ordered) - 1)
    if np.linalg.norm(step) <= POSITION_TOLERANCE_MM:
        raise labelmaps.LabelMapError("CT slices share one position")
    off = np.linalg.norm(positions - (positions[0] + np.outer(np.arange(len(ordered)), step)),
                         axis=1)
    if off.max() > POSITION_TOLERANCE_MM:
        raise labelmaps.LabelMapError(
            f"CT slice positions are not evenly spaced (slice {int(off.argmax())} is "
            f"{off.max():.3f} mm off the regular grid)")
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    affine = np.eye(4)
    affine[:3, :] = np.column_stack([row_dir * column_spacing, col_dir * row_spacing, step,
                                     positions[0]])
    return CTGrid(ordered, affine, (int(first.Columns), int(first.Rows), len(ordered)))


def _require_slice_geometry(header: Dataset) -> None:
    missing = [kw for kw in SLICE_GEOMETRY if kw not in header]
    if missing:
        raise labelmaps.LabelMapError(f"CT instance {header.get('SOPInstanceUID', '?')} lacks "
                                      f"{', '.join(missing)} (not a single-frame image slice)")


def _same_slice_layout(first: Dataset, header: Dataset, orientation: np.ndarray) -> None:
    if np.abs(np.asarray(header.ImageOrientationPatient, dtype=float) - orientation).max() \
            > DIRECTION_TOLERANCE:
        raise labelmaps.LabelMapError(f"CT slice {header.SOPInstanceUID} has another orientation")
    if (header.Rows, header.Columns, [float(v) for v in header.PixelSpacing]) != \
            (first.Rows, first.Columns, [float(v) for v in first.PixelSpacing]):
        raise labelmaps.LabelMapError(
            f"CT slice {header.SOPInstanceUID} has another matrix or pixel spacing")


def reorient(label_map: labelmaps.LabelMap, grid: CTGrid) -> np.ndarray:
    """The label array indexed like the CT, ``[column, row, slice]``, or LabelMapError."""
    axes, signs = _matching_axes(label_map.affine, grid.affine)
    array = label_map.array.transpose(axes)
    for ct_axis, sign in enumerate(signs):
        if sign < 0:
            array = np.flip(array, axis=ct_axis)
    for ct_axis, lm_axis in enumerate(axes):
        spacing = np.linalg.norm(label_map.affine[:3, lm_axis])
        ct_spacing = np.linalg.norm(grid.affine[:3, ct_axis])
        if abs(spacing - ct_spacing) > SPACING_TOLERANCE * ct_spacing:
            raise labelmaps.LabelMapError(
                f"spacing along the CT's {AXES[ct_axis]} axis differs: label map {spacing:.4f} "
                f"mm, CT {ct_spacing:.4f} mm (by {abs(spacing - ct_spacing):.4f} mm)")
    if array.shape != grid.shape:
        raise labelmaps.LabelMapError(
            f"shape differs: label map {'x'.join(map(str, array.shape))}, CT "
            f"{'x'.join(map(str, grid.shape))} voxels (columns x rows x slices)")
    first = [0 if sign > 0 else label_map.array.shape[axis] - 1
             for axis, sign in sorted(zip(axes, signs))]
    origin = (label_map.affine @ [*first, 1.0])[:3]
    shift = np.linalg.norm(origin - grid.affine[:3, 3])
    if shift > POSITION_TOLERANCE_MM:
        raise labelmaps.LabelMapError(
            f"origin differs by {shift:.3f} mm: label map's first voxel at {_mm(origin)}, "
            f"CT's at {_mm(grid.affine[:3, 3])} (LPS)")
    return array


def _matching_axes(affine: np.ndarray, ct_affine: np.ndarray) -> tuple[list[int], list[int]]:
    """For each CT axis: the label-map axis along it and whether it runs the same way (+1)."""
    axes, signs = [], []
    units = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    for ct_axis in range(3):
        ct_unit = ct_affine[:3, ct_axis] / np.linalg.norm(ct_affine[:3, ct_axis])
        dots = ct_unit @ units
        lm_axis = int(np.abs(dots).argmax())
        sign = 1 if dots[lm_axis] > 0 else -1
        deviation = np.linalg.norm(sign * units[:, lm_axis] - ct_unit)
        if deviation > DIRECTION_TOLERANCE or lm_axis in axes:
            angle = np.degrees(np.arccos(min(1.0, abs(float(dots[lm_axis])))))
            raise labelmaps.LabelMapError(
                f"orientation differs: no label-map axis runs along the CT's {AXES[ct_axis]} "
                f"axis {_mm(ct_unit, 4)} (nearest: {_mm(sign * units[:, lm_axis], 4)}, "
                f"{angle:.3f} degrees apart)")
        axes.append(lm_axis)
        signs.append(sign)
    return axes, signs


def _mm(vector: np.ndarray, digits: int = 3) -> str:
    return "(" + ", ".join(f"{v:.{digits}f}" for v in vector) + ")"
