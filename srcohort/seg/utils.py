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
    """The CT's slices in order along the slice normal and their voxel grid in LPS.

    A series may lack slices (a broken file set aside at conversion): the grid then still spans
    every slice position from the first to the last, and ``present`` says at which grid
    positions the slices in ``headers`` lie.
    """

    headers: list[Dataset]
    affine: np.ndarray             # (i, j, k) -> LPS mm
    shape: tuple[int, int, int]    # (columns, rows, slices)
    present: tuple[int, ...]       # grid slice index of each header


def frames_on_ct(label_map: labelmaps.LabelMap, ct_headers: Sequence[Dataset]
                 ) -> tuple[list[Dataset], np.ndarray, int]:
    """The CT slices in grid order, the labels as ``(slice, row, column)`` frames for them,
    and how many labelled slices of the label map have no CT slice (a slice the conversion set
    aside): those frames cannot be written, the rest of the label map is."""
    try:
        grid = ct_grid(ct_headers, step=_slice_spacing(label_map, ct_headers))
        frames = reorient(label_map, grid).transpose(2, 1, 0)
    except labelmaps.LabelMapError as exc:
        raise labelmaps.LabelMapError(f"{label_map.path}: {exc}") from None
    missing = sorted(set(range(grid.shape[2])) - set(grid.present))
    dropped = sum(bool(frames[k].any()) for k in missing)
    return grid.headers, frames[list(grid.present)], dropped


def _slice_spacing(label_map: labelmaps.LabelMap, headers: Sequence[Dataset]) -> float | None:
    """The label map's voxel size along the CT's slice normal: where slices are missing from
    the CT, the label map (made on the complete series) still tells the slice step."""
    try:
        orientation = np.asarray(headers[0].ImageOrientationPatient, dtype=float)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    return float(np.abs(label_map.affine[:3, :3].T @ normal).max())


def ct_grid(headers: Sequence[Dataset], step: float | None = None) -> CTGrid:
    """The voxel grid of a single-frame CT series (at least two parallel, evenly spaced slices).

    Slices may be missing: gaps that are whole multiples of the step are the positions of
    missing slices. The step is the smallest gap, or ``step`` (mm) when every gap is a whole
    multiple of it (two slices left of four cannot tell their own step).
    """
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
    gaps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    if gaps.min() <= POSITION_TOLERANCE_MM:
        raise labelmaps.LabelMapError("CT slices share one position")
    spacing = float(gaps.min())                      # the series' own step; missing slices
    if step and step > POSITION_TOLERANCE_MM and np.all(    # leave gaps of whole steps
            np.abs(gaps / step - np.rint(gaps / step)) * step <= POSITION_TOLERANCE_MM):
        spacing = step
    index = np.concatenate([[0], np.cumsum(np.rint(gaps / spacing))]).astype(int)
    step = (positions[-1] - positions[0]) / index[-1]
    off = np.linalg.norm(positions - (positions[0] + np.outer(index, step)), axis=1)
    if off.max() > POSITION_TOLERANCE_MM:
        raise labelmaps.LabelMapError(
            f"CT slice positions are not evenly spaced (slice {int(off.argmax())} is "
            f"{off.max():.3f} mm off the regular grid)")
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    affine = np.eye(4)
    affine[:3, :] = np.column_stack([row_dir * column_spacing, col_dir * row_spacing, step,
                                     positions[0]])
    return CTGrid(ordered, affine, (int(first.Columns), int(first.Rows), int(index[-1]) + 1),
                  tuple(int(i) for i in index))


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
