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

from srcohort.geometry import GeometryError, Grid, Slice, as_mm, place, stack
from srcohort.sources import labelmaps


def frames_on_ct(label_map: labelmaps.LabelMap,
                 ct_headers: Sequence[Dataset]) -> tuple[list[Dataset], np.ndarray]:
    """The CT slices in grid order and the labels as ``(slice, row, column)`` frames for them."""
    try:
        order, grid = ct_grid(ct_headers)
        return [ct_headers[n] for n in order], reorient(label_map, grid).transpose(2, 1, 0)
    except (labelmaps.LabelMapError, GeometryError) as exc:
        raise labelmaps.LabelMapError(f"{label_map.path}: {exc}") from None


def ct_grid(headers: Sequence[Dataset]) -> tuple[list[int], Grid]:
    """The order of a single-frame CT series' slices and their voxel grid, or GeometryError."""
    series = {str(h.get("SeriesInstanceUID", "")) for h in headers}
    if len(series) != 1 or len(headers) < 2:
        raise GeometryError(f"want the slices of one CT series (at least two), got "
                            f"{len(headers)} header(s) of {len(series)} series")
    slices = [Slice.of(h, f"CT slice {h.get('SOPInstanceUID', '?')}") for h in headers]
    return stack(slices, str(headers[0].get("FrameOfReferenceUID", "")) or None)


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
