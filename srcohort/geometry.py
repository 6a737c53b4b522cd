"""Where a CT series' voxels are, checked by one rule, for every step that places voxels on it.

Three steps put voxels on a CT's grid without resampling: a site's label map becomes SEG frames
on the CT's slices (``srcohort.seg``), CT slices become a volume and SEG frames become masks on
it (``srcohort.export.volumes``). They must agree on when two grids are the same, or one step
accepts what the next refuses. The rule, for all of them:

    every voxel centre lies at most ``TOLERANCE`` (5 %) of a voxel from where the CT grid puts
    it, measured along each axis of the CT grid in that axis's voxel size.

5 % of a voxel is far above what the decimal rounding of DICOM positions does (scanners write
0.01 mm or finer: 1.4 % of a 0.7 mm pixel) and far below what moves a voxel (half a voxel
lands a sample on the neighbour; a missing or doubled slice is off by a whole one). Small
errors of direction or spacing grow with the distance from the first voxel, so they are
checked where they are largest, at the far end of the grid: an orientation off by 0.01 degrees
moves the end of a 512-pixel row by 0.06 mm, 9 % of a 0.7 mm pixel, and is refused.

The grid itself is highdicom's ``VolumeGeometry`` (``Grid.volume_geometry``); srcohort indexes
it ``(i, j, k)``: along a CT row, down a column, across slices, as nibabel indexes volumes.
Everything here is pure: headers and affines in, grids and index maps out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

TOLERANCE = 0.05                # fraction of a CT voxel, along each CT axis
GEOMETRY_ATTRIBUTES = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
                       "Columns")
AXES = ("column", "row", "slice")   # what the CT axes i, j, k run across
# highdicom indexes volumes (slice, row, column); srcohort (column, row, slice): swap 1st and 3rd.
HD_AXES = np.eye(4)[[2, 1, 0, 3]]


class GeometryError(ValueError):
    """Grids that do not agree under the rule; the message names the quantity and by how much."""


@dataclass(frozen=True)
class Slice:
    """The geometry of one single-frame image; ``name`` is how messages call it (a file path,
    or ``CT slice <SOP Instance UID>``)."""

    name: str
    position: np.ndarray            # ImagePositionPatient: centre of the first pixel, LPS mm
    orientation: np.ndarray         # ImageOrientationPatient: row direction, column direction
    pixel_spacing: tuple[float, float]   # between rows, between columns (DICOM's order)
    rows: int
    columns: int

    @classmethod
    def of(cls, ds: Dataset, name: str) -> Slice:
        """The slice geometry of ``ds``, or GeometryError naming what it lacks."""
        missing = [keyword for keyword in GEOMETRY_ATTRIBUTES if keyword not in ds]
        if missing:
            raise GeometryError(f"{name} lacks {', '.join(missing)}")
        if int(ds.get("NumberOfFrames", 1) or 1) != 1:
            raise GeometryError(f"{name} is a multi-frame image; want single-frame slices")
        row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
        return cls(name, np.asarray(ds.ImagePositionPatient, dtype=float),
                   np.asarray(ds.ImageOrientationPatient, dtype=float),
                   (row_spacing, column_spacing), int(ds.Rows), int(ds.Columns))

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.orientation[:3], self.orientation[3:])

    def in_plane(self) -> np.ndarray:
        """LPS vectors of one pixel step along a row and down a column (3 x 2)."""
        return np.column_stack([self.orientation[:3] * self.pixel_spacing[1],
                                self.orientation[3:] * self.pixel_spacing[0]])


@dataclass(frozen=True)
class Grid:
    """A CT's voxel grid: ``affine`` maps ``(i, j, k)`` to LPS mm; ``shape`` is
    (columns, rows, slices)."""

    affine: np.ndarray
    shape: tuple[int, int, int]
    frame_of_reference_uid: str | None = None

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size (mm) along i, j, k."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @cached_property
    def volume_geometry(self) -> hd.VolumeGeometry:
        """The same grid as highdicom's VolumeGeometry (indexed slice, row, column)."""
        return hd.VolumeGeometry(self.affine @ HD_AXES, self.shape[::-1], "PATIENT",
                                 self.frame_of_reference_uid)

    def indices(self, points: np.ndarray) -> np.ndarray:
        """Continuous ``(i, j, k)`` of LPS points (n x 3), through highdicom's inverse affine."""
        mapped = self.volume_geometry.map_reference_to_indices(np.atleast_2d(points))
        return np.asarray(mapped, dtype=float)[:, ::-1]

    def voxels(self, vectors_mm: np.ndarray) -> np.ndarray:
        """LPS displacement vectors (3 x n) in voxels along i, j, k."""
        return np.linalg.solve(self.affine[:3, :3], vectors_mm)


def stack(slices: Sequence[Slice], frame_of_reference_uid: str | None = None
          ) -> tuple[list[int], Grid]:
    """The order of ``slices`` along their normal and the grid they span, or GeometryError.

    The slices must share rows, columns, pixel spacing and orientation and lie on a regular
    grid that runs along their normal, all under the rule; the grid's third axis is the mean
    step from the first slice to the last, so every slice keeps its own position.
    """
    order, _, grid = stack_with_gaps(slices, frame_of_reference_uid)
    return order, grid


def stack_with_gaps(slices: Sequence[Slice], frame_of_reference_uid: str | None = None,
                    step_mm: float | None = None
                    ) -> tuple[list[int], tuple[int, ...], Grid]:
    """``stack`` for a series that may lack slices (a broken file set aside at conversion):
    with ``step_mm``, the slice step known from elsewhere (the label map drawn on the complete
    series), gaps that are whole steps under the rule are the places of missing slices. Returns
    the order, the grid slice index of each ordered slice, and the grid, which spans every
    slice position from the first to the last."""
    if not slices:
        raise GeometryError("no slices given")
    first = slices[0]
    for other in slices[1:]:
        _same_layout(first, other)
    if len(slices) < 2:
        raise GeometryError(f"one slice ({first.name}); a volume needs at least two")
    normal = first.normal
    order = sorted(range(len(slices)), key=lambda n: float(slices[n].position @ normal))
    positions = np.array([slices[n].position for n in order])
    names = [slices[n].name for n in order]
    gaps = np.diff(positions @ normal)
    if gaps.min() < TOLERANCE * float(np.median(gaps)):   # the median: robust to outliers
        k = int(gaps.argmin())
        raise GeometryError(f"duplicate position {positions[k].tolist()} in {names[k]} and "
                            f"{names[k + 1]}")
    index = np.arange(len(order))
    if step_mm:
        steps = gaps / step_mm
        # Whole steps (two slices left of four cannot tell their own step). A label map finer
        # than its CT would read as a CT with slices set aside: the caller reports the
        # labelled slices that found no CT slice, never drops them silently.
        if np.all(np.abs(steps - np.rint(steps)) <= TOLERANCE) and np.rint(steps).min() >= 1:
            index = np.concatenate([[0], np.cumsum(np.rint(steps))]).astype(int)
    step = (positions[-1] - positions[0]) / index[-1]
    along = float(step @ normal)
    # Deviations in voxels of the box grid the slices should form: pixels in-plane, steps across.
    box = np.column_stack([first.in_plane(), normal * along])
    drift = np.abs(np.linalg.solve(box, step)[:2]) * index[-1]
    if drift.max() > TOLERANCE:        # the last slice sits beside the normal through the first
        sine = np.linalg.norm(np.cross(step / np.linalg.norm(step), normal))
        raise GeometryError(
            f"slices are not stacked along their normal (tilted by "
            f"{np.degrees(np.arcsin(min(sine, 1.0))):.3f} degrees, the last slice "
            f"{drift.max():.2f} pixels beside the first; gantry tilt?)")
    regular = positions[0] + np.outer(index, step)
    off = np.abs(np.linalg.solve(box, (positions - regular).T)).max(axis=0)
    if off.max() > TOLERANCE:
        k = int(off.argmax())
        raise GeometryError(
            f"non-uniform slice spacing: {names[k]} lies "
            f"{np.linalg.norm(positions[k] - regular[k]):.3f} mm off the regular grid (gaps "
            f"{gaps.min():.3f} to {gaps.max():.3f} mm; tolerance {TOLERANCE:.0%} of a voxel)")
    affine = np.eye(4)
    affine[:3, :] = np.column_stack([first.in_plane(), step, positions[0]])
    return order, tuple(int(k) for k in index), Grid(
        affine, (first.columns, first.rows, int(index[-1]) + 1), frame_of_reference_uid)


def _same_layout(first: Slice, other: Slice) -> None:
    """Refuse a slice whose matrix, pixel spacing or orientation differs from the first's."""
    extent = np.array([first.rows - 1, first.columns - 1], dtype=float)   # pixel spacing order
    spacing_drift = np.abs(np.subtract(other.pixel_spacing, first.pixel_spacing)) * extent
    if (other.rows, other.columns) != (first.rows, first.columns) or \
            np.any(spacing_drift > TOLERANCE * np.asarray(first.pixel_spacing)):
        raise GeometryError(
            f"different shapes: {other.name} has {other.rows}x{other.columns} pixels of "
            f"{list(other.pixel_spacing)} mm, {first.name} {first.rows}x{first.columns} of "
            f"{list(first.pixel_spacing)} mm")
    row_end = (other.orientation[:3] - first.orientation[:3]) * first.pixel_spacing[1] * extent[1]
    column_end = (other.orientation[3:] - first.orientation[3:]) * first.pixel_spacing[0] \
        * extent[0]
    if max(np.linalg.norm(row_end), np.linalg.norm(column_end)) \
            > TOLERANCE * min(first.pixel_spacing):
        raise GeometryError(
            f"mixed orientation: {other.name} has ImageOrientationPatient "
            f"{other.orientation.tolist()}, {first.name} {first.orientation.tolist()}")


@dataclass(frozen=True)
class Placement:
    """How the voxels of another grid land on a CT grid, without resampling: its axis ``a``
    runs along CT axis ``axes[a]`` in direction ``signs[a]``; ``first`` is the continuous CT
    index of its first voxel."""

    axes: tuple[int, int, int]
    signs: tuple[int, int, int]
    first: np.ndarray

    @property
    def origin(self) -> tuple[int, int, int]:
        """The CT voxel the first voxel lands on (nearest)."""
        return tuple(int(v) for v in np.rint(self.first))

    @property
    def off(self) -> float:
        """How far the first voxel lies from that CT voxel, in voxels (largest axis)."""
        return float(np.abs(self.first - np.rint(self.first)).max())

    @property
    def on_voxel(self) -> bool:
        return self.off <= TOLERANCE


def place(affine: np.ndarray, shape: Sequence[int], grid: Grid, *, what: str) -> Placement:
    """Where a grid of ``shape`` voxels whose ``affine`` maps its indices to LPS mm lands on the
    CT ``grid``, or GeometryError naming the quantity that breaks the rule.

    Each axis must run along one CT axis (either way round) with the CT's spacing, checked at
    its far end; an axis one voxel long (a 2-D frame's third) takes the CT axis left over.
    Whether the first voxel lies on a CT voxel is the caller's question (``Placement.on_voxel``):
    a label map must start at the CT's first voxel, a SEG frame on any slice. ``what`` names the
    placed grid in messages (``label map``, ``SEG frame``).
    """
    in_ct = grid.voxels(affine[:3, :3])                 # each axis's step, in CT voxels
    axes, signs = [-1, -1, -1], [1, 1, 1]
    for axis in sorted(range(3), key=lambda a: shape[a] <= 1):
        free = [c for c in range(3) if c not in axes]
        if shape[axis] <= 1:
            axes[axis] = free[0]
            continue
        ct_axis = max(free, key=lambda c: abs(in_ct[c, axis]))
        sign = 1 if in_ct[ct_axis, axis] > 0 else -1
        far = (in_ct[:, axis] - sign * np.eye(3)[ct_axis]) * (shape[axis] - 1)
        if np.abs(np.delete(far, ct_axis)).max() > TOLERANCE:
            _orientation_differs(affine[:3, axis], grid, ct_axis, what)
        if abs(far[ct_axis]) > TOLERANCE:
            ct_spacing, own = grid.spacing[ct_axis], np.linalg.norm(affine[:3, axis])
            raise GeometryError(
                f"spacing along the CT's {AXES[ct_axis]} axis differs: {what} {own:.4f} mm, CT "
                f"{ct_spacing:.4f} mm (by {abs(own - ct_spacing):.4f} mm)")
        axes[axis], signs[axis] = ct_axis, sign
    return Placement(tuple(axes), tuple(signs), grid.indices(affine[:3, 3])[0])


def _orientation_differs(direction: np.ndarray, grid: Grid, ct_axis: int, what: str) -> None:
    ct_unit = grid.affine[:3, ct_axis] / grid.spacing[ct_axis]
    unit = direction / np.linalg.norm(direction)
    cosine = float(unit @ ct_unit)
    nearest = unit if cosine >= 0 else -unit
    raise GeometryError(
        f"orientation differs: no {what.replace(' ', '-')} axis runs along the CT's "
        f"{AXES[ct_axis]} axis {as_mm(ct_unit, 4)} (nearest: {as_mm(nearest, 4)}, "
        f"{np.degrees(np.arccos(min(1.0, abs(cosine)))):.3f} degrees apart)")


def as_mm(vector: np.ndarray, digits: int = 3) -> str:
    """A vector as messages print it: ``(x, y, z)`` with ``digits`` decimals."""
    return "(" + ", ".join(f"{v:.{digits}f}" for v in vector) + ")"
