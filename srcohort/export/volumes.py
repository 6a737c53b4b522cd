"""CT series and their SEGs as voxel arrays on one grid, the form every site's training reads.

A training pipeline sees arrays, not DICOM: every site must turn the same series into the same
array and the same voxel -> world map, or models learn the sites' export habits. ``Volume`` holds
an array indexed ``(i, j, k)`` as nibabel indexes it (along a CT row, down a column, across
slices) and the affine from those indices to NIfTI world millimetres (RAS+, DICOM's LPS with x
and y negated). Every function here is pure: files in, arrays out, nothing written.

Geometry is checked, never guessed, by the one rule of ``srcohort.geometry``: every voxel
within ``SLICE_TOLERANCE`` (5 %) of a voxel of where the grid puts it, so a missing or doubled
slice, mixed orientations or a tilted (gantry) stack are refused, while the decimal rounding of
DICOM positions is not. SEG frames are placed on the CT's voxels by the same rule.

Memory stays bounded by one CT's size, never by a series' file count times its pixels: the
slices are read one at a time, and the training export's CT (``CTSeries.resampled``) is
resampled while it is read, so the native volume is never held at all; masks are made one
segment type at a time (``iter_seg_masks``).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import pixel_array

from srcohort.geometry import (TOLERANCE, GeometryError, Grid, Placement, Slice, place,
                               stack)

# DICOM LPS <-> NIfTI RAS: negate x and y (the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SLICE_TOLERANCE = TOLERANCE   # fraction of a voxel a slice or SEG frame may sit off the grid
INT16 = np.iinfo(np.int16)
NIFTI_DESCRIPTION_BYTES = 80          # size of the NIfTI-1 ``descrip`` field
NIFTI_DATA_OFFSET = 352               # 348-byte header, 4 bytes saying "no extensions"
XFORM_SCANNER = 1                     # NIFTI_XFORM_SCANNER_ANAT: DICOM patient coordinates
# gzip level 1, nibabel's own for .nii.gz: level 9 takes up to 16x as long for ~3% smaller CTs.
GZIP_LEVEL = 1
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
T = TypeVar("T")


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


# --- CT series ----------------------------------------------------------------------------------

class _NotInt16(Exception):
    """A slice's HU do not fit int16 exactly: the volume must be float32."""


@dataclass(frozen=True)
class CTSeries:
    """A single-frame CT series read as far as its headers: slices in order and their grid.

    ``volume`` and ``resampled`` read the pixels, one slice at a time. HU = stored value *
    RescaleSlope + RescaleIntercept per slice (identity when absent, as DICOM defines); arrays
    are int16 when every slope and intercept is a whole number and every value fits, which keeps
    each HU exact at half the memory, float32 otherwise.
    """

    name: str                           # "series <SeriesInstanceUID>", for messages
    files: tuple[Path, ...]             # in grid order along the slice normal
    grid: Grid                          # (i, j, k) -> LPS mm
    rescale: tuple[tuple[float, float], ...]    # (slope, intercept) per slice

    def volume(self) -> Volume:
        """The native HU volume (the scanner's grid and axis order)."""
        def native(read: Callable[[int], np.ndarray], dtype: np.dtype) -> Volume:
            array = np.empty(self.grid.shape, dtype=dtype, order="F")
            for k in range(len(self.files)):
                array[:, :, k] = read(k)
            return Volume(array, LPS_TO_RAS @ self.grid.affine)
        return self._in_hu(native)

    def resampled(self, spacing: tuple[float, float, float] | None) -> Volume:
        """``canonical(self.volume(), spacing=spacing)``, made while the slices are read: only
        the output and two resampled slices are held. Interpolated HU are rounded back to the
        volume's int16 (by at most 0.5 HU, far below CT noise), which compresses to about half
        the size of float32."""
        return self._in_hu(self._plan(spacing).volume)

    def nifti(self, spacing: tuple[float, float, float] | None) -> bytes:
        """``nifti_bytes(self.resampled(spacing))``, for an axial series compressed while the
        slices are read and resampled: neither the native nor the resampled volume is held."""
        return self._in_hu(self._plan(spacing).nifti)

    def _plan(self, spacing: tuple[float, float, float] | None) -> _Plan:
        return _Plan.of(self.grid.shape, LPS_TO_RAS @ self.grid.affine, spacing, order=1)

    def _in_hu(self, make: Callable[[Callable[[int], np.ndarray], np.dtype], T]) -> T:
        """``make`` from the HU slices: in int16, or once more in float32 when a slice's HU
        turn out not to fit it (the reading is then repeated: rare, and memory stays flat)."""
        for dtype in ((np.int16, np.float32) if _whole(self.rescale) else (np.float32,)):
            try:
                return make(lambda k, dtype=dtype: self._hu(k, dtype), np.dtype(dtype))
            except _NotInt16:
                continue
        raise AssertionError("float32 holds every HU")

    def _hu(self, k: int, dtype: type) -> np.ndarray:
        """Slice ``k`` in HU, indexed ``(i, j)``; _NotInt16 when int16 cannot hold it exactly."""
        path, (slope, intercept) = self.files[k], self.rescale[k]
        try:
            stored = pixel_array(path)
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError,
                AttributeError, NotImplementedError, RuntimeError) as exc:
            raise VolumeError(f"{self.name}: {path}: pixel data not readable: {exc}") from None
        if stored.shape != self.grid.shape[1::-1]:
            raise VolumeError(f"{self.name}: {path}: pixel data of shape {stored.shape}, the "
                              f"header says {self.grid.shape[1]}x{self.grid.shape[0]}")
        if dtype == np.int16:
            low, high = (float(stored.min()) * slope + intercept,
                         float(stored.max()) * slope + intercept)
            if low < INT16.min or high > INT16.max:
                raise _NotInt16
            if slope == 1 and intercept == 0 and stored.dtype == np.int16:
                return stored.T
            return (stored.T.astype(np.int32) * int(slope) + int(intercept)).astype(np.int16)
        return (stored.T.astype(np.float64) * slope + intercept).astype(np.float32)


def ct_series(files: Sequence[Path]) -> CTSeries:
    """The headers of one single-frame CT series, whatever order ``files`` come in, checked by
    the geometry rule; VolumeError names the series, the file and the reason."""
    headers = [(Path(f), _read(Path(f))) for f in files]
    if not headers:
        raise VolumeError("no CT files given")
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in headers})
    if len(series) != 1:
        raise VolumeError(f"files of {len(series)} series given, want one: {', '.join(series)}")
    name = f"series {series[0]}"
    try:
        slices = [Slice.of(ds, str(path)) for path, ds in headers]
        order, grid = stack(slices, str(headers[0][1].get("FrameOfReferenceUID", "")) or None)
    except GeometryError as exc:
        raise VolumeError(f"{name}: {exc}") from None
    rescale = tuple((float(ds.get("RescaleSlope", 1) or 1),
                     float(ds.get("RescaleIntercept", 0) or 0))
                    for ds in (headers[n][1] for n in order))
    return CTSeries(name, tuple(headers[n][0] for n in order), grid, rescale)


def ct_volume(files: Sequence[Path]) -> Volume:
    """The native HU volume of one single-frame CT series (``CTSeries.volume``)."""
    return ct_series(files).volume()


def _whole(rescale: Sequence[tuple[float, float]]) -> bool:
    return all(slope.is_integer() and intercept.is_integer() for slope, intercept in rescale)


def _read(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise VolumeError(f"{path}: not readable as DICOM: {exc}") from None


# --- SEG masks ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Frame:
    """One SEG frame and where its pixels land on the CT: ``target`` indexes the mask, ``rows``
    and ``columns`` crop the frame to the part inside the CT, ``flips`` reverse its column and
    row axes, ``swap`` transposes them, so that the result matches ``mask[target]``."""

    seg: Dataset
    index: int                                  # 0-based frame index
    target: tuple[slice | int, slice | int, slice | int]
    rows: slice
    columns: slice
    flips: tuple[bool, bool]
    swap: bool

    def pixels(self) -> np.ndarray:
        """The frame's kept pixels (1 where the segment is present), oriented like the CT."""
        frame = pixel_array(self.seg, index=self.index)
        if self.seg.SegmentationType == "FRACTIONAL":
            frame = frame >= int(self.seg.MaximumFractionalValue) / 2
        kept = frame[self.rows, self.columns].astype(np.uint8, copy=False).T   # (column, row)
        kept = kept[::-1 if self.flips[0] else 1, ::-1 if self.flips[1] else 1]
        return kept.T if self.swap else kept


def seg_masks(seg_files: Sequence[Path], ct: Sequence[Path] | Volume | Grid
              ) -> dict[str, Volume]:
    """One uint8 mask per segment type (``"SCHEME:VALUE"``) on the CT's grid (``iter_seg_masks``,
    all at once)."""
    return dict(iter_seg_masks(seg_files, ct))


def iter_seg_masks(seg_files: Sequence[Path], ct: Sequence[Path] | Volume | Grid
                   ) -> Iterator[tuple[str, Volume]]:
    """One uint8 mask per segment type on the CT's grid, in key order, one at a time.

    ``ct`` is the referenced series' files (headers suffice), its ``Volume`` or its ``Grid``.
    Frames are placed by their plane positions under the geometry rule (axis permutations and
    flips, never resampling), so frame order and omitted empty frames do not matter. Every
    frame is placed before the first mask is made: a frame between CT slices, content outside
    the CT, or another frame of reference (checked when ``ct`` carries one) is a VolumeError
    naming the SEG, and no mask is given. The same type from several SEGs (e.g. the ventricles
    split over two SEGs) is OR-ed into one mask.
    """
    grid = _grid_of(ct)
    for key, frames in sorted(_placed_frames(seg_files, grid).items()):
        yield key, Volume(_mask(frames, grid), LPS_TO_RAS @ grid.affine)


def seg_mask_niftis(seg_files: Sequence[Path], ct: Sequence[Path] | Volume | Grid,
                    spacing: tuple[float, float, float] | None) -> Iterator[tuple[str, bytes]]:
    """What the training export writes of each mask of ``iter_seg_masks``:
    ``nifti_bytes(canonical(mask, spacing=spacing, order=0))``. When every frame of a type lies
    in a CT slice (SEGs of axial CTs), its mask is made slice by slice from the frames as the
    output needs them, so the mask on the CT's grid is never held; otherwise from that mask."""
    grid = _grid_of(ct)
    plan = _Plan.of(grid.shape, LPS_TO_RAS @ grid.affine, spacing, order=0)
    for key, frames in sorted(_placed_frames(seg_files, grid).items()):
        if all(isinstance(frame.target[2], int) for frame in frames):
            by_slice: dict[int, list[_Frame]] = {}
            for frame in frames:
                by_slice.setdefault(frame.target[2], []).append(frame)
            yield key, plan.nifti(lambda k, by_slice=by_slice: _mask_slice(
                by_slice.get(k, []), grid), np.dtype(np.uint8))
        else:
            mask = Volume(_mask(frames, grid), LPS_TO_RAS @ grid.affine)
            yield key, nifti_bytes(canonical(mask, spacing=spacing, order=0))


def _placed_frames(seg_files: Sequence[Path], grid: Grid) -> dict[str, list[_Frame]]:
    """Every frame of the SEGs by segment type, placed on ``grid`` (or VolumeError)."""
    frames: dict[str, list[_Frame]] = {}
    for path in seg_files:
        for key, frame in _frames(Path(path), grid):
            frames.setdefault(key, []).append(frame)
    return frames


def _mask(frames: Sequence[_Frame], grid: Grid) -> np.ndarray:
    mask = np.zeros(grid.shape, dtype=np.uint8, order="F")
    for frame in frames:
        mask[frame.target] |= frame.pixels()
    return mask


def _mask_slice(frames: Sequence[_Frame], grid: Grid) -> np.ndarray:
    """Slice ``k`` of the mask from the frames that lie in it (``target`` = (i, j, k))."""
    plane = np.zeros(grid.shape[:2], dtype=np.uint8, order="F")
    for frame in frames:
        plane[frame.target[0], frame.target[1]] |= frame.pixels()
    return plane


def _grid_of(ct: Sequence[Path] | Volume | Grid) -> Grid:
    if isinstance(ct, Grid):
        return ct
    if isinstance(ct, Volume):
        return Grid(LPS_TO_RAS @ ct.affine, ct.array.shape)
    return ct_series(ct).grid


def _read_seg(path: Path) -> Dataset:
    try:
        seg = pydicom.dcmread(path)
        if str(seg.get("SOPClassUID", "")) != SEGMENTATION_STORAGE:
            raise ValueError(f"SOP class {seg.get('SOPClassUID', 'missing')} is not "
                             "Segmentation Storage")
        seg.PerFrameFunctionalGroupsSequence      # noqa: B018 -- required; raises when absent
        seg.SegmentSequence                       # noqa: B018
    except (InvalidDicomError, OSError, EOFError, ValueError, AttributeError, KeyError) as exc:
        raise VolumeError(f"{path}: not readable as a DICOM SEG: {exc}") from None
    if seg.get("SegmentationType") not in ("BINARY", "FRACTIONAL"):
        raise VolumeError(f"{path}: SegmentationType {seg.get('SegmentationType')} is not "
                          "BINARY or FRACTIONAL")
    return seg


def _frames(path: Path, grid: Grid) -> list[tuple[str, _Frame]]:
    """Every frame of one SEG with its segment type and place on ``grid``, or VolumeError."""
    seg = _read_seg(path)
    own = str(seg.get("FrameOfReferenceUID", ""))
    if grid.frame_of_reference_uid is not None and own != grid.frame_of_reference_uid:
        raise VolumeError(f"{path}: SEG frame of reference {own} is not the CT's "
                          f"{grid.frame_of_reference_uid}")
    keys = {int(item.SegmentNumber): "{0.CodingSchemeDesignator}:{0.CodeValue}".format(
        item.SegmentedPropertyTypeCodeSequence[0]) for item in seg.SegmentSequence}
    shared = seg.SharedFunctionalGroupsSequence[0] \
        if "SharedFunctionalGroupsSequence" in seg else Dataset()
    rows, columns = int(seg.Rows), int(seg.Columns)
    placed, lost = [], set()
    for index, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        try:
            number = int(_group(item, shared, "SegmentIdentificationSequence")
                         .ReferencedSegmentNumber)
            orientation = np.asarray(_group(item, shared, "PlaneOrientationSequence")
                                     .ImageOrientationPatient, dtype=float)
            row_spacing, column_spacing = (float(v) for v in _group(
                item, shared, "PixelMeasuresSequence").PixelSpacing)
            position = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
            key = keys[number]
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise VolumeError(f"{path}: frame {index + 1} lacks its plane or segment: "
                              f"{exc}") from None
        affine = np.eye(4)
        normal = np.cross(orientation[:3], orientation[3:])
        affine[:3, :] = np.column_stack([orientation[:3] * column_spacing,
                                         orientation[3:] * row_spacing, normal, position])
        try:
            placement = place(affine, (columns, rows, 1), grid, what="SEG frame")
        except GeometryError as exc:
            raise VolumeError(f"{path}: SEG frames do not land on the CT's voxels: frame "
                              f"{index + 1}: {exc}") from None
        if not placement.on_voxel:
            raise VolumeError(f"{path}: SEG frames do not land on the CT's voxels: frame "
                              f"{index + 1} lies {placement.off:.3f} voxels off the CT grid")
        frame = _fit(seg, index, placement, (columns, rows), grid)
        if frame is None or frame.rows != slice(0, rows) or frame.columns != slice(0, columns):
            inside = 0 if frame is None else int(frame.pixels().sum())
            if int(np.count_nonzero(pixel_array(seg, index=index))) > inside:
                lost.add(number)
        if frame is not None:
            placed.append((key, frame))
    if lost:
        raise VolumeError(f"{path}: segment(s) {', '.join(map(str, sorted(lost)))} reach "
                          "outside the CT")
    return placed


def _group(item: Dataset, shared: Dataset, name: str) -> Dataset:
    """A functional group of one frame: its own, else the shared one."""
    return (item if name in item else shared)[name][0]


def _fit(seg: Dataset, index: int, placement: Placement, size: tuple[int, int], grid: Grid
         ) -> _Frame | None:
    """The part of a placed frame (``size`` = columns, rows) inside the CT; None if none is."""
    ct_slice = placement.axes[2]
    target: list[slice | int] = [0, 0, 0]
    target[ct_slice] = placement.origin[ct_slice]
    if not 0 <= target[ct_slice] < grid.shape[ct_slice]:
        return None
    kept = []
    for axis in (0, 1):                          # frame columns, then rows
        ct_axis, sign = placement.axes[axis], placement.signs[axis]
        start, n = placement.origin[ct_axis], grid.shape[ct_axis]
        # pixel p lands on CT index start + sign * p; keep the pixels with 0 <= index < n
        low, high = (max(0, -start), min(size[axis], n - start)) if sign > 0 else \
            (max(0, start - n + 1), min(size[axis], start + 1))
        if low >= high:
            return None
        first, last = sorted((start + sign * low, start + sign * (high - 1)))
        target[ct_axis] = slice(first, last + 1)
        kept.append(slice(low, high))
    return _Frame(seg, index, (target[0], target[1], target[2]), kept[1], kept[0],
                  (placement.signs[0] < 0, placement.signs[1] < 0),
                  placement.axes[0] > placement.axes[1])


# --- orientation and resampling -----------------------------------------------------------------

def canonical(volume: Volume, *, spacing: tuple[float, float, float] | None = None,
              order: int = 1, dtype: np.dtype | type | None = None) -> Volume:
    """``volume`` reoriented to RAS+ and, given ``spacing`` (mm), resampled to it.

    Reorienting only permutes and flips axes (nibabel's closest canonical), so no value
    changes. Resampling keeps the field of view: ``round(extent / spacing)`` voxels per axis,
    centred where the old grid was centred, so the extent changes by at most half a new voxel
    and every sample point lies inside the old field of view. Samples within half an old voxel
    of its border take the border voxel's value (as ``scipy.ndimage``'s ``mode="nearest"``), not
    a padding constant that would darken CT edges or cut masks. ``order`` 1 interpolates
    linearly (CT; float32 out unless ``dtype`` is given, integers are rounded), 0 takes the
    nearest voxel (masks; dtype kept). The new grid depends only on the affine, shape and
    spacing, so a CT and its masks stay voxel-aligned under the same call.

    Both interpolations are separable (the new grid runs along the old one's axes), so each
    slice is resampled in-plane once and output slices mix two of them: the same values as a
    trilinear ``scipy.ndimage.affine_transform`` with a diagonal matrix at a fraction of the
    cost, and one slice at a time (docs/performance.md).
    """
    if spacing is None:
        orientation = nib.orientations.io_orientation(volume.affine)
        array = nib.orientations.apply_orientation(volume.array, orientation)
        return Volume(array, volume.affine @ nib.orientations.inv_ornt_aff(
            orientation, volume.array.shape))
    array = volume.array
    out = np.dtype(dtype) if dtype is not None else array.dtype if order == 0 else \
        np.dtype(np.float32)
    return _resample(array.shape, volume.affine, lambda k: array[:, :, k], spacing=spacing,
                     order=order, dtype=out)


@dataclass(frozen=True)
class _Samples:
    """Where the samples along one source axis come from: two source indices and the weight
    of the second (0 for nearest neighbour)."""

    low: np.ndarray
    high: np.ndarray
    weight: np.ndarray

    @classmethod
    def at(cls, positions: np.ndarray, size: int, order: int, *, flip: bool) -> _Samples:
        """Samples at ``positions`` (canonical indices) of an axis of ``size`` voxels that the
        source stores in reverse when ``flip``."""
        if order == 0:      # round half up in canonical order, as ndimage's order 0
            low = np.clip(np.floor(positions + 0.5), 0, size - 1).astype(np.intp)
            low = size - 1 - low if flip else low
            return cls(low, low, np.zeros(len(low)))
        clipped = np.clip(size - 1 - positions if flip else positions, 0, size - 1)
        low = np.floor(clipped).astype(np.intp)
        return cls(low, np.minimum(low + 1, size - 1), clipped - low)

    def along(self, array: np.ndarray, axis: int, compute: np.dtype) -> np.ndarray:
        """``array`` sampled along ``axis``: taken (weight 0) or mixed linearly."""
        low = np.take(array, self.low, axis=axis)
        if not self.weight.any():
            return low
        shape = [1, 1]
        shape[axis] = len(self.weight)
        weight = self.weight.astype(compute).reshape(shape)
        return low.astype(compute) * (1 - weight) + \
            np.take(array, self.high, axis=axis).astype(compute) * weight


@dataclass(frozen=True)
class _Plan:
    """How a canonical resampling reads its source: samples along each source axis (flips to
    RAS+ folded into their positions), the permutation from source to canonical axis order,
    and the new grid's affine."""

    samples: tuple[_Samples, _Samples, _Samples]
    canonical_axes: tuple[int, int, int]        # canonical axis c holds source axis [c]
    affine: np.ndarray

    @classmethod
    def of(cls, shape: Sequence[int], affine: np.ndarray,
           spacing: tuple[float, float, float] | None, order: int) -> _Plan:
        orientation = nib.orientations.io_orientation(affine)
        canonical_affine = affine @ nib.orientations.inv_ornt_aff(orientation, shape)
        source_of = np.argsort(orientation[:, 0])                 # canonical -> source axis
        canonical_shape = np.asarray(shape)[source_of]
        step = np.ones(3) if spacing is None else \
            np.asarray(spacing, float) / np.linalg.norm(canonical_affine[:3, :3], axis=0)
        new_shape = np.maximum(1, np.rint(canonical_shape / step)).astype(int)
        start = (canonical_shape - 1) / 2 - (new_shape - 1) / 2 * step    # centres coincide
        samples = []
        for axis in range(3):                                     # source axes
            c = int(orientation[axis, 0])
            positions = start[c] + np.arange(new_shape[c]) * step[c]
            samples.append(_Samples.at(positions, shape[axis], order,
                                       flip=orientation[axis, 1] < 0))
        index_map = np.diag([*step, 1.0])
        index_map[:3, 3] = start
        return cls(tuple(samples), tuple(int(a) for a in source_of),
                   canonical_affine @ index_map)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The output's shape in source axis order."""
        return tuple(len(s.low) for s in self.samples)

    @property
    def slices_last(self) -> bool:
        """Whether the source's slices stay the last axis (axial CTs): then output slices are
        the NIfTI file's order and can be written as they are made."""
        return self.canonical_axes[2] == 2

    def planes(self, read: Callable[[int], np.ndarray], dtype: np.dtype
               ) -> Iterator[np.ndarray]:
        """Output slices along the source's slice axis, in order, each from the one or two
        source slices ``read`` gives (each read once, held only while needed)."""
        cached: dict[int, np.ndarray] = {}
        along_slices = self.samples[2]
        compute = None
        for m in range(len(along_slices.low)):
            low, high, weight = (int(along_slices.low[m]), int(along_slices.high[m]),
                                 along_slices.weight[m])
            for k in [k for k in cached if k not in (low, high)]:
                del cached[k]
            for k in (low, high):
                if k not in cached:
                    source = read(k)
                    compute = compute or (np.dtype(np.float64) if source.dtype == np.float64
                                          else np.dtype(np.float32))
                    cached[k] = _plane(source, self.samples[0], self.samples[1], compute)
            if weight == 0:
                value = cached[low]
            else:
                w = compute.type(weight)
                value = cached[low] * (1 - w) + cached[high] * w
            if np.issubdtype(dtype, np.integer) and not np.issubdtype(value.dtype, np.integer):
                info = np.iinfo(dtype)
                value = np.clip(np.rint(value), info.min, info.max)
            yield value.astype(dtype, copy=False)

    def volume(self, read: Callable[[int], np.ndarray], dtype: np.dtype) -> Volume:
        """The whole resampled volume, canonical."""
        out = np.empty(self.shape, dtype=dtype, order="F")
        for m, plane in enumerate(self.planes(read, dtype)):
            out[:, :, m] = plane
        return Volume(out.transpose(self.canonical_axes), self.affine)

    def nifti(self, read: Callable[[int], np.ndarray], dtype: np.dtype,
              description: str = "") -> bytes:
        """``nifti_bytes`` of ``volume``, compressed slice by slice as the slices are made
        when ``slices_last`` (the whole output is never held), else of the whole volume."""
        if not self.slices_last:
            return nifti_bytes(self.volume(read, dtype), description=description)
        swap = self.canonical_axes[0] == 1
        canonical_shape = tuple(self.shape[a] for a in self.canonical_axes)
        return _gzip_nifti(self.affine, canonical_shape, dtype, description,
                           (plane.T if swap else plane for plane in self.planes(read, dtype)))


def _resample(shape: Sequence[int], affine: np.ndarray, read: Callable[[int], np.ndarray], *,
              spacing: tuple[float, float, float] | None, order: int, dtype: np.dtype
              ) -> Volume:
    """The volume whose slice ``k`` ``read`` returns, canonical and resampled (``canonical``)."""
    return _Plan.of(shape, affine, spacing, order).volume(read, dtype)


def _plane(source: np.ndarray, along_i: _Samples, along_j: _Samples, compute: np.dtype
           ) -> np.ndarray:
    """One source slice ``(i, j)`` resampled in-plane. Rows (j) first: a slice read from DICOM
    is stored row by row, so gathering whole rows is a block copy (twice as fast as columns
    first). An empty slice (most of a mask) stays empty without being sampled."""
    if source.dtype == np.uint8 and not source.any():
        return np.zeros((len(along_i.low), len(along_j.low)), dtype=np.uint8)
    rows = along_j.along(source.T, 0, compute)
    return along_i.along(rows, 1, compute).T


# --- NIfTI --------------------------------------------------------------------------------------

def nifti_bytes(volume: Volume, *, description: str = "") -> bytes:
    """The volume as ``.nii.gz`` bytes, identical for identical input.

    qform and sform both hold the affine with code 1 (scanner anatomical: the DICOM patient
    coordinates, as dcm2niix writes them), units are mm. The gzip header has mtime 0 and no file
    name, so re-exporting gives the same bytes and checksums. The only free text in the header is
    ``description`` (at most 80 ASCII bytes); nothing about the patient is written. The array
    is compressed slice by slice: no uncompressed copy of it is made.
    """
    array = np.asarray(volume.array)
    return _gzip_nifti(volume.affine, array.shape, array.dtype, description,
                       (array[:, :, k] for k in range(array.shape[2])))


def _gzip_nifti(affine: np.ndarray, shape: Sequence[int], dtype: np.dtype, description: str,
                planes: Iterable[np.ndarray]) -> bytes:
    """A NIfTI-1 file of ``shape`` (header by nibabel, no extensions) whose voxels are
    ``planes`` (``(i, j)`` slices in order), gzip-compressed as they come."""
    if not description.isascii() or len(description) > NIFTI_DESCRIPTION_BYTES:
        raise VolumeError(f"NIfTI description must be at most {NIFTI_DESCRIPTION_BYTES} ASCII "
                          f"characters, got {description!r}")
    header = nib.Nifti1Header()
    header.set_data_shape(tuple(shape))
    header.set_data_dtype(dtype)
    header.set_qform(affine, code=XFORM_SCANNER)
    header.set_sform(affine, code=XFORM_SCANNER)
    header.set_xyzt_units(xyz="mm")
    header["descrip"] = description.encode("ascii")
    header["vox_offset"] = NIFTI_DATA_OFFSET
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as stream:
        stream.write(header.binaryblock)
        stream.write(bytes(NIFTI_DATA_OFFSET - len(header.binaryblock)))   # no extensions
        for plane in planes:
            stream.write(np.asarray(plane, dtype=header.get_data_dtype()).tobytes(order="F"))
    return buffer.getvalue()
