"""Put a label map on the CT's frames, or refuse: never a silently shifted mask.

A SEG frame is tied to a CT slice, so the label map must sample exactly the CT's voxel grid:
each label-map axis runs along a CT axis (either way round: dcm2niix stores rows bottom-up),
with the same spacing and shape, and the first voxels coincide. Then the label map is only
transposed and flipped, never resampled. Whether two grids agree is decided by the one rule of
``srcohort.geometry`` (every voxel within 5 % of a voxel of the CT's, checked at the far end);
anything else raises ``LabelMapError`` naming the quantity (orientation, spacing, shape,
origin) and by how much it differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from srcohort.geometry import GeometryError, Grid, Slice, as_mm, place, stack_with_gaps
from srcohort.sources import labelmaps


def frames_on_ct(label_map: labelmaps.LabelMap, ct_headers: Sequence[Dataset]
                 ) -> tuple[list[Dataset], np.ndarray, int]:
    """The CT slices in grid order, the labels as ``(slice, row, column)`` frames for them,
    and how many labelled slices of the label map have no CT slice (a slice the conversion set
    aside): those frames cannot be written, the rest of the label map is."""
    try:
        order, present, grid = ct_grid(ct_headers, step_mm=_slice_spacing(label_map, ct_headers))
        frames = reorient(label_map, grid).transpose(2, 1, 0)
    except (labelmaps.LabelMapError, GeometryError) as exc:
        raise labelmaps.LabelMapError(f"{label_map.path}: {exc}") from None
    missing = sorted(set(range(grid.shape[2])) - set(present))
    dropped = sum(bool(frames[k].any()) for k in missing)
    return [ct_headers[n] for n in order], frames[list(present)], dropped


def _slice_spacing(label_map: labelmaps.LabelMap, headers: Sequence[Dataset]) -> float | None:
    """The label map's voxel size along the CT's slice normal: where slices are missing from
    the CT, the label map (made on the complete series) still tells the slice step."""
    try:
        orientation = np.asarray(headers[0].ImageOrientationPatient, dtype=float)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    return float(np.abs(label_map.affine[:3, :3].T @ normal).max())


def ct_grid(headers: Sequence[Dataset], step_mm: float | None = None
            ) -> tuple[list[int], tuple[int, ...], Grid]:
    """The order of a single-frame CT series' slices, the grid slice index of each, and their
    voxel grid (gaps of whole ``step_mm`` steps are missing slices), or GeometryError."""
    series = {str(h.get("SeriesInstanceUID", "")) for h in headers}
    if len(series) != 1 or len(headers) < 2:
        raise GeometryError(f"want the slices of one CT series (at least two), got "
                            f"{len(headers)} header(s) of {len(series)} series")
    slices = [Slice.of(h, f"CT slice {h.get('SOPInstanceUID', '?')}") for h in headers]
    return stack_with_gaps(slices, str(headers[0].get("FrameOfReferenceUID", "")) or None,
                           step_mm)


def reorient(label_map: labelmaps.LabelMap, grid: Grid) -> np.ndarray:
    """The label array indexed like the CT, ``[column, row, slice]``, or GeometryError."""
    placement = place(label_map.affine, label_map.array.shape, grid, what="label map")
    lm_axes = [placement.axes.index(ct_axis) for ct_axis in range(3)]
    array = label_map.array.transpose(lm_axes)
    for ct_axis, lm_axis in enumerate(lm_axes):
        if placement.signs[lm_axis] < 0:
            array = np.flip(array, axis=ct_axis)
    if array.shape != grid.shape:
        raise GeometryError(
            f"shape differs: label map {'x'.join(map(str, array.shape))}, CT "
            f"{'x'.join(map(str, grid.shape))} voxels (columns x rows x slices)")
    # The CT voxel the label map's first voxel must land on: the far end of flipped axes.
    expected = np.array([0 if placement.signs[lm_axis] > 0 else grid.shape[ct_axis] - 1
                         for ct_axis, lm_axis in enumerate(lm_axes)], dtype=float)
    if not placement.on_voxel or np.any(np.rint(placement.first) != expected):
        first = [0 if placement.signs[axis] > 0 else label_map.array.shape[axis] - 1
                 for axis in range(3)]
        origin = (label_map.affine @ [*first, 1.0])[:3]
        shift = np.linalg.norm(origin - grid.affine[:3, 3])
        raise GeometryError(
            f"origin differs by {shift:.3f} mm: label map's first voxel at {as_mm(origin)}, "
            f"CT's at {as_mm(grid.affine[:3, 3])} (LPS)")
    return array
