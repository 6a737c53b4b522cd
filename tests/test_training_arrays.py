"""The array layer of the training export: CT volumes, SEG masks on the CT grid, ECG arrays.

Expectations are computed independently of the code under test: positions from the DICOM
formula (PS3.3 C.7.6.2.1.1), HU from pydicom's stored values, masks from the site's label maps,
frame placement from highdicom's frame -> source-instance mapping, ECG samples from the raw
Waveform Data bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from scipy import ndimage

from srcohort.export.ecg_arrays import LEADS, EcgArrayError, ecg_array
from srcohort.export.volumes import (SLICE_TOLERANCE, Volume, VolumeError, canonical, ct_series,
                                     ct_volume, nifti_bytes, seg_mask_niftis, seg_masks)
from srcohort.sources.ecg.model import EcgRecording
from srcohort.sources.labelmaps import read_label_map, read_label_table
from srcohort.sources.mapping import load_mapping
from srcohort.uids import derived_uid
from srcohort.waveform import ecg_dataset

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
CT5N = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/98892001/CT5N"
CT2_WITH_SCOUT = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/77654033/CT2"
REAL_ECG = Path(get_testdata_file("waveform_ecg.dcm"))
Edit = Callable[[Dataset], None]          # changes a dataset in place
LV, RV = "SCT:87878005", "SCT:53085002"          # SNOMED CT left / right ventricle
INT16_MAX = np.iinfo(np.int16).max


# --- the converted consortium, indexed once ---------------------------------------------------

@dataclass
class Converted:
    ct: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))
    segs: dict[str, Path] = field(default_factory=dict)             # SEG series UID -> file
    seg_ct: dict[Path, str] = field(default_factory=dict)           # SEG file -> CT series UID
    ecgs: list[Path] = field(default_factory=list)


@pytest.fixture(scope="module")
def data(converted: Path) -> Converted:
    index = Converted()
    for path in sorted(converted.glob("*/dicom/*/*/*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.Modality == "CT":
            index.ct[str(ds.SeriesInstanceUID)].append(path)
        elif ds.Modality == "SEG":
            index.segs[str(ds.SeriesInstanceUID)] = path
            index.seg_ct[path] = str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID)
        elif ds.Modality == "ECG":
            index.ecgs.append(path)
    assert len(index.ct) >= 10 and len(index.segs) >= 10 and len(index.ecgs) >= 5
    return index


def _ras(position: object) -> np.ndarray:
    return LPS_TO_RAS @ np.asarray(position, dtype=float)


def _copy_series(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in files:
        copies.append(folder / path.name)
        copies[-1].write_bytes(path.read_bytes())
    return copies


def _edit(path: Path, change: Edit) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


# --- CT volumes ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def series(data: Converted, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """CT series to read: a demo series, the same pixels on an oblique grid with rectangular
    pixels (so swapped axes or spacings show), and a real scanner's series from pydicom."""
    demo = next(iter(data.ct.values()))
    oblique = _copy_series(demo, tmp_path_factory.mktemp("oblique"))
    angle = np.radians(30.0)
    row, column = np.array([np.cos(angle), np.sin(angle), 0.0]), np.array([0.0, 0.0, -1.0])
    normal = np.cross(row, column)
    for k, path in enumerate(sorted(oblique, key=lambda f: float(
            pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))[::-1]):
        def rotate(ds: Dataset, k: int = k) -> None:
            ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *column)]
            ds.PixelSpacing = ["4.5", "7"]               # between rows, between columns
            ds.ImagePositionPatient = [f"{v:.6f}" for v in np.array([-40.0, 12.0, 90.0])
                                       + k * 3.25 * normal]
        _edit(path, rotate)
    return {"demo": demo, "oblique": oblique, "pydicom CT5N": sorted(CT5N.iterdir())}


@pytest.mark.parametrize("name", ["demo", "oblique", "pydicom CT5N"])
def test_affine_maps_first_and_far_corner_voxels_to_their_dicom_positions(
        series: dict[str, list[Path]], name: str) -> None:
    files = series[name]
    volume = ct_volume(list(reversed(files)))            # file order must not matter
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    row, column = (np.asarray(headers[0].ImageOrientationPatient[i:i + 3], float) for i in (0, 3))
    ordered = sorted(headers, key=lambda h: float(np.dot(h.ImagePositionPatient,
                                                         np.cross(row, column))))
    rows, columns = int(headers[0].Rows), int(headers[0].Columns)
    dr, dc = (float(v) for v in headers[0].PixelSpacing)
    far = np.asarray(ordered[-1].ImagePositionPatient, float) \
        + (columns - 1) * dc * row + (rows - 1) * dr * column
    assert volume.array.shape == (columns, rows, len(files))
    np.testing.assert_allclose(volume.affine @ [0, 0, 0, 1],
                               [*_ras(ordered[0].ImagePositionPatient), 1], atol=1e-5)
    np.testing.assert_allclose(volume.affine @ [columns - 1, rows - 1, len(files) - 1, 1],
                               [*_ras(far), 1], atol=1e-5)
    gap = np.linalg.norm(np.subtract(ordered[1].ImagePositionPatient,
                                     ordered[0].ImagePositionPatient, dtype=float))
    assert volume.spacing == pytest.approx((dc, dr, gap))


def _slice_index(volume: Volume, ds: Dataset) -> int:
    index = np.linalg.solve(volume.affine, [*_ras(ds.ImagePositionPatient), 1.0])
    assert np.allclose(index[:2], 0, atol=1e-6)
    return int(round(index[2]))


@pytest.mark.parametrize("name", ["demo", "oblique", "pydicom CT5N"])
def test_hu_equal_stored_values_times_slope_plus_intercept(series: dict[str, list[Path]],
                                                           name: str) -> None:
    files = series[name]
    volume = ct_volume(files)
    assert volume.array.dtype == np.int16
    for path in files:
        ds = pydicom.dcmread(path)
        expected = ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(volume.array[:, :, _slice_index(volume, ds)], expected)


@pytest.mark.parametrize("slope, intercept", [(0.5, -1024.25), (1.0, 32000.0)],
                         ids=["fractional rescale", "beyond int16"])
def test_hu_that_int16_cannot_hold_are_exact_float32(data: Converted, tmp_path: Path,
                                                      slope: float, intercept: float) -> None:
    files = _copy_series(next(iter(data.ct.values())), tmp_path)

    def rescale(ds: Dataset) -> None:
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
    for path in files:
        _edit(path, rescale)
    volume = ct_volume(files)
    assert volume.array.dtype == np.float32
    for path in files:
        ds = pydicom.dcmread(path)
        np.testing.assert_array_equal(volume.array[:, :, _slice_index(volume, ds)],
                                      ds.pixel_array.T * slope + intercept)


def _shift(delta: tuple[float, float, float]) -> Edit:
    def change(ds: Dataset) -> None:
        ds.ImagePositionPatient = [f"{float(v) + d:.6g}" for v, d in
                                   zip(ds.ImagePositionPatient, delta)]
    return change


def _series_error(files: list[Path], step: float, kind: str) -> tuple[int, Edit]:
    """(file index to edit, edit) for each geometry fault; files are in slice order."""
    def drop_position(ds: Dataset) -> None:
        del ds.ImagePositionPatient

    def sagittal(ds: Dataset) -> None:
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]

    def smaller(ds: Dataset) -> None:
        ds.Rows = int(ds.Rows) // 2

    def duplicate(ds: Dataset) -> None:
        ds.ImagePositionPatient = pydicom.dcmread(files[0]).ImagePositionPatient
    return {"missing geometry": (2, drop_position), "mixed orientation": (1, sagittal),
            "different shapes": (3, smaller), "duplicate position": (1, duplicate),
            "non-uniform slice spacing": (2, _shift((0.0, 0.0, 0.3 * step)))}[kind]


@pytest.mark.parametrize("kind, message", [
    ("missing geometry", "lacks ImagePositionPatient"),
    ("mixed orientation", "mixed orientation"),
    ("different shapes", "different shapes"),
    ("duplicate position", "duplicate position"),
    ("non-uniform slice spacing", "non-uniform slice spacing"),
])
def test_geometry_faults_name_series_file_and_reason(data: Converted, tmp_path: Path, kind: str,
                                                     message: str) -> None:
    originals = sorted(next(iter(data.ct.values())), key=lambda f: float(
        pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))
    files = _copy_series(originals, tmp_path)
    step = ct_volume(files).spacing[2]
    k, change = _series_error(files, step, kind)
    _edit(files[k], change)
    with pytest.raises(VolumeError) as error:
        ct_volume(files)
    text = str(error.value)
    assert message in text and str(files[k]) in text
    assert pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID in text


def test_tilted_stack_is_refused_but_rounding_within_tolerance_is_not(data: Converted,
                                                                      tmp_path: Path) -> None:
    originals = sorted(next(iter(data.ct.values())), key=lambda f: float(
        pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))
    files = _copy_series(originals, tmp_path)
    step = ct_volume(files).spacing[2]
    _edit(files[1], _shift((0.0, 0.0, 0.5 * SLICE_TOLERANCE * step)))
    assert ct_volume(files).array.shape[2] == len(files)        # half the tolerance: accepted
    for k, path in enumerate(files):                            # shear: 0.2 step in x per slice
        _edit(path, _shift((0.2 * step * k, 0.0, 0.0)))
    with pytest.raises(VolumeError, match="not stacked along their normal"):
        ct_volume(files)


def test_real_series_with_scout_is_refused_as_non_uniform() -> None:
    with pytest.raises(VolumeError, match="non-uniform slice spacing"):
        ct_volume(sorted(CT2_WITH_SCOUT.iterdir()))


# --- canonical orientation and resampling -------------------------------------------------------

def _reindexed(volume: Volume, transpose: tuple[int, int, int], flips: tuple[int, ...]) -> Volume:
    """The same voxels stored in another axis order: affine composed with the index map."""
    array = volume.array.transpose(transpose)
    new_to_old = np.zeros((4, 4))
    new_to_old[3, 3] = 1.0
    for new_axis, old_axis in enumerate(transpose):
        new_to_old[old_axis, new_axis] = 1.0
    for axis in flips:
        array = np.flip(array, axis)
        flip = np.eye(4)
        flip[axis, axis], flip[axis, 3] = -1.0, array.shape[axis] - 1
        new_to_old = new_to_old @ flip
    return Volume(array, volume.affine @ new_to_old)


@pytest.mark.parametrize("name", ["demo", "oblique", "pydicom CT5N"])
def test_canonical_is_ras_and_independent_of_storage_order(series: dict[str, list[Path]],
                                                           name: str) -> None:
    volume = ct_volume(series[name])
    reference = canonical(volume)
    assert nib.aff2axcodes(reference.affine) == ("R", "A", "S")
    index_map = np.linalg.solve(volume.affine, reference.affine)   # canonical -> original index
    assert np.allclose(index_map, np.rint(index_map), atol=1e-9)
    old = np.rint(index_map @ np.vstack([*np.indices(reference.array.shape).reshape(3, -1),
                                        np.ones(reference.array.size)])).astype(int)
    np.testing.assert_array_equal(reference.array.reshape(-1), volume.array[tuple(old[:3])])
    for transpose, flips in (((2, 0, 1), (1,)), ((1, 0, 2), (0, 2)), ((0, 2, 1), ())):
        other = canonical(_reindexed(volume, transpose, flips))
        np.testing.assert_array_equal(other.array, reference.array)
        np.testing.assert_allclose(other.affine, reference.affine, atol=1e-9)


def test_same_spacing_resampling_is_the_identity(data: Converted) -> None:
    volume = canonical(ct_volume(next(iter(data.ct.values()))))
    same = canonical(volume, spacing=volume.spacing, order=0)
    np.testing.assert_array_equal(same.array, volume.array)
    np.testing.assert_allclose(same.affine, volume.affine, atol=1e-9)


def test_linear_resampling_reproduces_a_linear_field(data: Converted) -> None:
    """Interpolating x + 2y - 3z must give x + 2y - 3z at the new voxel centres: grid exact."""
    volume = ct_volume(next(iter(data.ct.values())))
    world = volume.affine @ np.vstack([*np.indices(volume.array.shape).reshape(3, -1),
                                       np.ones(volume.array.size)])
    field_ = (np.array([1.0, 2.0, -3.0]) @ world[:3]).reshape(volume.array.shape)
    resampled = canonical(Volume(field_, volume.affine), spacing=(3.7, 4.1, 2.9))
    assert resampled.spacing == pytest.approx((3.7, 4.1, 2.9))
    shape = np.array(resampled.array.shape)
    inner = np.indices(shape).reshape(3, -1)
    centres = resampled.affine @ np.vstack([inner, np.ones(inner.shape[1])])
    source = np.linalg.solve(volume.affine, centres)[:3]           # where each sample came from
    inside = np.all((source >= 0) & (source <= np.array(volume.array.shape)[:, None] - 1), axis=0)
    assert inside.sum() > 0.5 * inside.size
    expected = np.array([1.0, 2.0, -3.0]) @ centres[:3]
    np.testing.assert_allclose(resampled.array.reshape(-1)[inside], expected[inside], atol=1e-3)
    # the same field of view: each face moves by at most a quarter of a new voxel
    (old_low, old_high), (new_low, new_high) = _field_of_view(volume), _field_of_view(resampled)
    quarter = np.array(resampled.spacing) / 4 + 1e-9       # RAS: axis a runs along world a
    assert np.all(np.abs(new_low - old_low) <= quarter)
    assert np.all(np.abs(new_high - old_high) <= quarter)


def _ndimage_reference(volume: Volume, spacing: tuple[float, float, float], order: int
                      ) -> Volume:
    """The resampling srcohort had before its separable one: nibabel's reorientation, then
    ``scipy.ndimage.affine_transform`` with the diagonal index map (computed in float64)."""
    orientation = nib.orientations.io_orientation(volume.affine)
    array = nib.orientations.apply_orientation(volume.array, orientation)
    affine = volume.affine @ nib.orientations.inv_ornt_aff(orientation, volume.array.shape)
    step = np.asarray(spacing) / np.linalg.norm(affine[:3, :3], axis=0)
    shape = np.maximum(1, np.rint(np.asarray(array.shape) / step)).astype(int)
    start = (np.asarray(array.shape) - 1) / 2 - (shape - 1) / 2 * step
    resampled = ndimage.affine_transform(array.astype(np.float64), step, offset=start,
                                         output_shape=tuple(shape), order=order, mode="nearest")
    index_map = np.diag([*step, 1.0])
    index_map[:3, 3] = start
    return Volume(resampled, affine @ index_map)


@pytest.mark.parametrize("transpose, flips", [((0, 1, 2), ()), ((2, 0, 1), (1,)),
                                              ((1, 0, 2), (0, 2))])
@pytest.mark.parametrize("spacing", [(3.7, 4.1, 2.9), (13.0, 0.8, 17.5)])
def test_separable_resampling_equals_ndimage(data: Converted, transpose: tuple[int, int, int],
                                             flips: tuple[int, ...],
                                             spacing: tuple[float, float, float]) -> None:
    """Linear: the same values as ndimage's trilinear interpolation (float32 rounding aside);
    nearest: the same voxels, ties included; both on the same grid, in any storage order."""
    ct = ct_volume(next(iter(data.ct.values())))
    rng = np.random.default_rng(7)
    noisy = Volume(rng.integers(-1000, 3000, ct.array.shape).astype(np.int16), ct.affine)
    labels = Volume((rng.random(ct.array.shape) > 0.6).astype(np.uint8), ct.affine)
    for volume, order in ((noisy, 1), (labels, 0)):
        stored = _reindexed(volume, transpose, flips)
        ours, reference = canonical(stored, spacing=spacing, order=order), \
            _ndimage_reference(stored, spacing, order)
        np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-9)
        assert ours.array.shape == reference.array.shape
        if order == 0:
            assert ours.array.dtype == np.uint8
            np.testing.assert_array_equal(ours.array, reference.array)
        else:
            assert ours.array.dtype == np.float32
            np.testing.assert_allclose(ours.array, reference.array, atol=2e-3)


@pytest.mark.parametrize("name", ["demo", "oblique", "pydicom CT5N"])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (6.5, 3.0, 2.5), None])
def test_ct_resampled_while_read_equals_the_resampled_volume(
        series: dict[str, list[Path]], name: str,
        spacing: tuple[float, float, float] | None) -> None:
    """The training export never holds the native volume; what it writes is the native
    volume's canonical resampling, rounded back to int16."""
    ct = ct_series(series[name])
    streamed = ct.resampled(spacing)
    expected = canonical(ct.volume(), spacing=spacing)
    assert streamed.array.dtype == np.int16
    np.testing.assert_array_equal(streamed.array, np.rint(expected.array))
    np.testing.assert_allclose(streamed.affine, expected.affine, atol=1e-9)


@pytest.mark.parametrize("name", ["demo", "oblique", "pydicom CT5N"])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (6.5, 3.0, 2.5), None])
def test_ct_compressed_while_read_is_the_nifti_of_the_resampled_volume(
        series: dict[str, list[Path]], name: str,
        spacing: tuple[float, float, float] | None) -> None:
    """Axial series are compressed slice by slice as they are resampled, others (the oblique
    one) from the whole volume: either way the bytes of ``nifti_bytes``."""
    ct = ct_series(series[name])
    assert ct.nifti(spacing) == nifti_bytes(ct.resampled(spacing))


@pytest.mark.parametrize("spacing", [(2.5, 3.0, 4.0), None])
def test_masks_made_slice_by_slice_are_the_nifti_of_the_resampled_masks(
        data: Converted, spacing: tuple[float, float, float] | None) -> None:
    for seg_path, series_uid in data.seg_ct.items():
        ct = ct_volume(data.ct[series_uid])
        # the CT's own grid (frames lie in its slices) and the same voxels stored with the
        # slices first (frames lie across its first axis: made from the whole mask)
        for grid in (ct, _reindexed(ct, (2, 0, 1), ())):
            expected = {key: nifti_bytes(canonical(mask, spacing=spacing, order=0))
                        for key, mask in seg_masks([seg_path], grid).items()}
            assert dict(seg_mask_niftis([seg_path], grid, spacing)) == expected


def test_one_slice_beyond_int16_makes_the_whole_volume_float32(data: Converted,
                                                               tmp_path: Path) -> None:
    files = sorted(_copy_series(next(iter(data.ct.values())), tmp_path), key=lambda f: float(
        pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))

    def beyond(ds: Dataset) -> None:
        ds.RescaleIntercept = "32000"
    _edit(files[-1], beyond)                    # the last slice read
    ct = ct_series(files)
    volume, streamed = ct.volume(), ct.resampled((7.0, 7.0, 7.0))
    assert volume.array.dtype == streamed.array.dtype == np.float32
    assert volume.array.max() > INT16_MAX
    np.testing.assert_allclose(streamed.array, canonical(volume, spacing=(7.0, 7.0, 7.0)).array)


def _field_of_view(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """World bounding box of the voxels' outer faces (for axis-aligned volumes)."""
    corners = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in volume.array.shape])).reshape(3, -1)
    world = (volume.affine @ np.vstack([corners, np.ones(corners.shape[1])]))[:3]
    return world.min(axis=1), world.max(axis=1)


# --- NIfTI ----------------------------------------------------------------------------------------

def test_nifti_bytes_are_reproducible_and_read_back(data: Converted, tmp_path: Path) -> None:
    files = next(iter(data.ct.values()))
    volume = ct_volume(files)
    first, second = nifti_bytes(volume, description="ct"), nifti_bytes(volume, description="ct")
    assert first == second
    assert first[4:8] == b"\0\0\0\0"                             # gzip mtime
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(first)
    image = nib.load(path)
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), volume.array)
    assert image.get_data_dtype() == volume.array.dtype
    np.testing.assert_allclose(image.affine, volume.affine, atol=1e-5)
    np.testing.assert_allclose(image.get_qform(), volume.affine, atol=1e-5)
    assert (int(image.header["qform_code"]), int(image.header["sform_code"])) == (1, 1)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert image.header["descrip"].tobytes().rstrip(b"\0") == b"ct"
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    raw = gzip.decompress(first)
    for identifier in (header.PatientID, header.PatientName, header.StudyInstanceUID):
        assert str(identifier).encode() not in raw


def test_nifti_description_is_short_ascii(data: Converted) -> None:
    volume = ct_volume(next(iter(data.ct.values())))
    for description in ("x" * 81, "Müller"):
        with pytest.raises(VolumeError, match="80 ASCII"):
            nifti_bytes(volume, description=description)


# --- SEG masks ----------------------------------------------------------------------------------

def _expected_on_grid(label_map_path: Path, value: int, grid: Volume) -> np.ndarray:
    """The label map's ``value`` voxels placed on ``grid`` through world coordinates."""
    label_map = read_label_map(label_map_path)
    voxels = np.argwhere(label_map.array == value).T
    world = np.diag([-1.0, -1.0, 1.0, 1.0]) @ label_map.affine @ np.vstack(
        [voxels, np.ones(voxels.shape[1])])
    index = np.linalg.solve(grid.affine, world)[:3]
    assert np.allclose(index, np.rint(index), atol=1e-4)       # on the grid, not between voxels
    expected = np.zeros(grid.array.shape, np.uint8)
    expected[tuple(np.rint(index).astype(int))] = 1
    return expected


def test_each_seg_mask_equals_its_label_map_on_the_ct_grid(small_consortium: Path,
                                                           data: Converted) -> None:
    compared = 0
    for site_dir in sorted(small_consortium.glob("site-*")):
        mapping = load_mapping(site_dir)
        table = read_label_table(mapping.label_table)
        with (site_dir / "tables" / "segmentations.csv").open(encoding="utf-8") as handle:
            rows = list(csv.reader(handle))[1:]
        for _, rel in rows:
            seg = data.segs.get(derived_uid(mapping.site, rel, "seg-series"))
            if seg is None:                          # the injected misaligned label map
                assert "shifted" in rel
                continue
            ct = ct_volume(data.ct[data.seg_ct[seg]])
            masks = seg_masks([seg], data.ct[data.seg_ct[seg]])
            values = [int(v) for v in np.unique(read_label_map(site_dir / rel).array) if v]
            keys = {f"{table.structures[v].property_type.scheme_designator}:"
                    f"{table.structures[v].property_type.value}": v for v in values}
            assert set(masks) == set(keys)
            for key, value in keys.items():
                assert masks[key].array.dtype == np.uint8
                assert masks[key].array.shape == ct.array.shape
                np.testing.assert_allclose(masks[key].affine, ct.affine, atol=1e-9)
                np.testing.assert_array_equal(
                    masks[key].array, _expected_on_grid(site_dir / rel, value, ct), err_msg=key)
            compared += 1
    assert compared >= 10


def test_masks_agree_with_highdicoms_frame_to_source_instance_mapping(data: Converted) -> None:
    for seg_path, series in data.seg_ct.items():
        ct = ct_volume(data.ct[series])
        slices = {_slice_index(ct, pydicom.dcmread(f, stop_before_pixels=True)):
                  str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
                  for f in data.ct[series]}
        seg = hd.seg.segread(seg_path)
        masks = seg_masks([seg_path], data.ct[series])
        for number in seg.segment_numbers:
            code = seg.get_segment_description(number).segmented_property_type
            pixels = seg.get_pixels_by_source_instance(
                [slices[k] for k in range(len(slices))], segment_numbers=[number],
                assert_missing_frames_are_empty=True)[..., 0]
            np.testing.assert_array_equal(
                masks[f"{code.scheme_designator}:{code.value}"].array, pixels.transpose(2, 1, 0))


def test_ventricles_split_over_two_segs_are_combined(data: Converted) -> None:
    by_ct: dict[str, list[Path]] = defaultdict(list)
    for seg_path, series in data.seg_ct.items():
        by_ct[series].append(seg_path)
    split = [(series, segs) for series, segs in by_ct.items() if len(segs) == 2]
    assert split
    for series, segs in split:
        combined = seg_masks(segs, data.ct[series])
        one, two = (seg_masks([s], data.ct[series]) for s in segs)
        assert {LV, RV} <= set(combined) == set(one) | set(two)
        for key, mask in combined.items():
            parts = [m[key].array for m in (one, two) if key in m]
            np.testing.assert_array_equal(mask.array, np.maximum.reduce(parts))
            assert mask.array.sum() > 0


def test_same_type_from_several_segs_is_ored(data: Converted, tmp_path: Path) -> None:
    """Each segment split into complementary column halves over two SEGs: the union is whole."""
    seg_path, series = next(iter(data.seg_ct.items()))

    def keep(columns: slice) -> Edit:
        def change(ds: Dataset) -> None:
            frames = ds.pixel_array.copy()
            frames[:, :, columns] = 0
            ds.PixelData = pack_bits(frames)
        return change
    halves = [_rewritten_seg(seg_path, tmp_path / f"half{n}.dcm", keep(columns))
              for n, columns in enumerate((slice(None, 8), slice(8, None)))]
    whole = seg_masks([seg_path], data.ct[series])
    union = seg_masks(halves, data.ct[series])
    assert set(union) == set(whole)
    for key, mask in whole.items():
        np.testing.assert_array_equal(union[key].array, mask.array, err_msg=key)


def test_ct_volume_may_stand_for_the_ct_files(data: Converted) -> None:
    seg_path, series = next(iter(data.seg_ct.items()))
    from_files = seg_masks([seg_path], data.ct[series])
    ct = ct_volume(data.ct[series])
    from_volume = seg_masks([seg_path], ct)
    reoriented = seg_masks([seg_path], canonical(ct))          # another axis order: same voxels
    for key, mask in from_files.items():
        np.testing.assert_array_equal(from_volume[key].array, mask.array)
        np.testing.assert_array_equal(reoriented[key].array, canonical(mask).array)
        np.testing.assert_allclose(reoriented[key].affine, canonical(mask).affine, atol=1e-9)


def _rewritten_seg(path: Path, out: Path, change: Edit) -> Path:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(out)
    return out


def test_frames_are_placed_by_position_not_by_order(data: Converted, tmp_path: Path) -> None:
    seg_path, series = max(data.seg_ct.items(),
                           key=lambda item: int(pydicom.dcmread(item[0]).NumberOfFrames))

    def reverse_frames(ds: Dataset) -> None:
        frames = ds.pixel_array
        ds.PerFrameFunctionalGroupsSequence = list(ds.PerFrameFunctionalGroupsSequence)[::-1]
        ds.PixelData = pack_bits(frames[::-1])
    shuffled = _rewritten_seg(seg_path, tmp_path / "reversed.dcm", reverse_frames)
    original = seg_masks([seg_path], data.ct[series])
    reordered = seg_masks([shuffled], data.ct[series])
    assert set(reordered) == set(original)
    for key in original:
        np.testing.assert_array_equal(reordered[key].array, original[key].array)


def _positions(delta: tuple[float, float, float]) -> Edit:
    def change(ds: Dataset) -> None:
        for item in ds.PerFrameFunctionalGroupsSequence:
            position = item.PlanePositionSequence[0]
            position.ImagePositionPatient = [f"{float(v) + d:.6g}" for v, d in
                                             zip(position.ImagePositionPatient, delta)]
    return change


def _other_frame_of_reference(ds: Dataset) -> None:
    ds.FrameOfReferenceUID = "2.25.1"


@pytest.mark.parametrize("kind, message", [
    ("between slices", "do not land on the CT"),
    ("outside the CT", "reach outside the CT"),
    ("frame of reference", "frame of reference"),
])
def test_frames_off_the_ct_grid_are_errors(data: Converted, tmp_path: Path, kind: str,
                                           message: str) -> None:
    seg_path, series = next(iter(data.seg_ct.items()))
    ct = ct_volume(data.ct[series])
    change = {"between slices": _positions((0.0, 0.0, ct.spacing[2] / 2)),
              "outside the CT": _positions((0.0, 0.0, ct.spacing[2] * ct.array.shape[2])),
              "frame of reference": _other_frame_of_reference}[kind]
    bad = _rewritten_seg(seg_path, tmp_path / "bad.dcm", change)
    with pytest.raises(VolumeError, match=message) as error:
        seg_masks([bad], data.ct[series])
    assert str(bad) in str(error.value)


def test_border_samples_take_the_border_value(data: Converted) -> None:
    """A uniform volume stays uniform when resampled: no padding constant leaks in at edges."""
    ct = ct_volume(next(iter(data.ct.values())))
    air = Volume(np.full(ct.array.shape, -1000, np.int16), ct.affine)
    for spacing in ((3.0, 3.0, 3.0), (17.0, 13.0, 11.0)):
        for order in (0, 1):
            assert np.all(canonical(air, spacing=spacing, order=order).array == -1000)


def test_resampled_ct_and_masks_stay_aligned(data: Converted) -> None:
    seg_path, series = next(iter(data.seg_ct.items()))
    ct = ct_volume(data.ct[series])
    spacing = (2.5, 3.0, 4.0)
    resampled_ct = canonical(ct, spacing=spacing)
    assert resampled_ct.array.dtype == np.float32
    for key, mask in seg_masks([seg_path], data.ct[series]).items():
        resampled = canonical(mask, spacing=spacing, order=0)
        assert resampled.array.shape == resampled_ct.array.shape
        np.testing.assert_array_equal(resampled.affine, resampled_ct.affine)
        assert resampled.array.dtype == np.uint8 and set(np.unique(resampled.array)) <= {0, 1}
        # the mask's centre of mass stays where it was (within a voxel of the coarser grid)
        before, after = (v.affine[:3] @ [*np.argwhere(v.array).mean(axis=0), 1]
                         for v in (mask, resampled))
        assert np.linalg.norm(before - after) <= np.linalg.norm(mask.spacing), key


# --- ECG arrays ---------------------------------------------------------------------------------

def _raw_mv(path: Path) -> dict[str, np.ndarray]:
    """Each channel from the Waveform Data bytes: int16 counts x sensitivity (µV) / 1000."""
    group = pydicom.dcmread(path).WaveformSequence[0]
    assert group.WaveformSampleInterpretation == "SS" and group.WaveformBitsAllocated == 16
    counts = np.frombuffer(group.WaveformData, "<i2").reshape(
        int(group.NumberOfWaveformSamples), int(group.NumberOfWaveformChannels))
    result = {}
    for channel, definition in enumerate(group.ChannelDefinitionSequence):
        assert definition.ChannelSensitivityUnitsSequence[0].CodeValue == "uV"
        result[str(definition.ChannelLabel)] = counts[:, channel] * float(
            definition.ChannelSensitivity) / 1000
    return result


def test_every_converted_ecg_at_its_own_rate_passes_through_unchanged(data: Converted) -> None:
    for path in data.ecgs:
        array = ecg_array(path, rate=500.0)
        raw = _raw_mv(path)
        assert array.source_rate == 500.0 and array.rate == 500.0 and array.derived == ()
        assert array.signal.shape == (12, 5000) and array.signal.dtype == np.float32
        for row, lead in enumerate(LEADS):
            np.testing.assert_array_equal(array.signal[row], raw[lead].astype(np.float32),
                                          err_msg=f"{path} {lead}")


def test_real_pydicom_ecg_gives_twelve_plausible_leads_in_order() -> None:
    array = ecg_array(REAL_ECG)                 # 1000 Hz, SCPECG channel codes, no labels
    assert array.signal.shape == (12, 5000) and array.rate == 500.0
    assert array.source_rate == 1000.0 and array.derived == ()
    peaks = np.abs(array.signal).max(axis=1)
    assert np.all((peaks > 0.2) & (peaks < 5.0)), peaks           # millivolts, not µV or V
    full = ecg_array(REAL_ECG, rate=1000.0, seconds=None).signal
    raw = pydicom.dcmread(REAL_ECG).waveform_array(0).T / 1000      # channels I, II, III, aVR...
    np.testing.assert_allclose(full, raw, rtol=1e-6, atol=1e-6)
    # Einthoven holds in the recording to within its quantisation (1.25 µV steps)
    np.testing.assert_allclose(full[2], full[1] - full[0], atol=0.01)


def _reorder_channels(ds: Dataset, order: list[int]) -> None:
    group = ds.WaveformSequence[0]
    counts = np.frombuffer(group.WaveformData, "<i2").reshape(
        int(group.NumberOfWaveformSamples), int(group.NumberOfWaveformChannels))
    group.WaveformData = np.ascontiguousarray(counts[:, order]).tobytes()
    group.ChannelDefinitionSequence = [group.ChannelDefinitionSequence[i] for i in order]


def _labels_only(ds: Dataset) -> None:
    """Unspecified lead codes: only the channel labels say which lead is which."""
    for definition, lead in zip(ds.WaveformSequence[0].ChannelDefinitionSequence, LEADS):
        source = definition.ChannelSourceSequence[0]
        source.CodeValue, source.CodingSchemeDesignator = "2:0", "MDC"
        source.CodeMeaning = "Unspecified lead"
        definition.ChannelLabel = f"Lead {lead.upper()}"


def _millivolt_units(ds: Dataset) -> None:
    for definition in ds.WaveformSequence[0].ChannelDefinitionSequence:
        definition.ChannelSensitivity = f"{float(definition.ChannelSensitivity) / 1000:.6g}"
        definition.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"


@pytest.mark.parametrize("change", [
    lambda ds: _reorder_channels(ds, [11, 6, 0, 3, 9, 1, 4, 8, 2, 7, 10, 5]),
    _labels_only, _millivolt_units], ids=["channels shuffled", "labels only", "mV units"])
def test_leads_found_by_code_or_label_in_any_order_and_unit(
        tmp_path: Path, change: Edit) -> None:
    ds = pydicom.dcmread(REAL_ECG)
    change(ds)
    ds.save_as(tmp_path / "ecg.dcm")
    np.testing.assert_allclose(ecg_array(tmp_path / "ecg.dcm").signal, ecg_array(REAL_ECG).signal,
                               rtol=1e-5, atol=1e-6)


def _write_ecg(folder: Path, leads: dict[str, np.ndarray], rate: float, name: str) -> Path:
    recording = EcgRecording(patient_id="ARR-1", source_format="synthetic", sampling_rate=rate,
                             leads=leads, acquired=dt.datetime(2024, 3, 1, 9))
    ds = ecg_dataset(recording, study=None, series_instance_uid=derived_uid("arr", name, "s"),
                     sop_instance_uid=derived_uid("arr", name, "i"))
    path = folder / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


SINE_HZ = {"I": 1.0, "II": 5.0, "III": 10.0, "aVR": 20.0, "aVL": 40.0, "aVF": 60.0,
           "V1": 80.0, "V2": 100.0, "V3": 0.5, "V4": 30.0, "V5": 70.0, "V6": 90.0}


def _sine_leads(rate: float, seconds: float = 10.0) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * rate)) / rate
    return {lead: 1000.0 * np.sin(2 * np.pi * hz * t + 0.3) for lead, hz in SINE_HZ.items()}


def _amplitude(samples: np.ndarray, hz: float, rate: float) -> float:
    """Least-squares amplitude at ``hz`` over the middle 8 s (edges excluded)."""
    t = np.arange(samples.size) / rate
    inner = (t >= 1.0) & (t <= t[-1] - 1.0)
    basis = np.column_stack([np.sin(2 * np.pi * hz * t[inner]), np.cos(2 * np.pi * hz * t[inner]),
                             np.ones(inner.sum())])
    coefficients = np.linalg.lstsq(basis, samples[inner], rcond=None)[0]
    return float(np.hypot(*coefficients[:2]))


@pytest.mark.parametrize("source_rate", [1000.0, 250.0])
def test_resampling_to_500_hz_keeps_in_band_amplitudes(tmp_path: Path, source_rate: float) -> None:
    """0.5-100 Hz sines (1 mV) keep their amplitude within 1% at the new rate and time base."""
    path = _write_ecg(tmp_path, _sine_leads(source_rate), source_rate, f"sine{source_rate:g}")
    array = ecg_array(path, rate=500.0)
    assert array.signal.shape == (12, 5000) and array.source_rate == source_rate
    for row, lead in enumerate(LEADS):
        assert _amplitude(array.signal[row], SINE_HZ[lead], 500.0) == \
            pytest.approx(1.0, rel=0.01), lead


def test_downsampling_filters_what_the_new_rate_cannot_hold(tmp_path: Path) -> None:
    """400 Hz at 1000 Hz would alias to 100 Hz at 500 Hz without the anti-aliasing filter."""
    leads = _sine_leads(1000.0)
    t = np.arange(10000) / 1000.0
    leads["V1"] = 1000.0 * np.sin(2 * np.pi * 400.0 * t)
    array = ecg_array(_write_ecg(tmp_path, leads, 1000.0, "alias"), rate=500.0)
    assert _amplitude(array.signal[LEADS.index("V1")], 100.0, 500.0) < 0.01


@pytest.mark.parametrize("source_rate", [1000.0, 250.0])
def test_baseline_offset_does_not_ring_at_the_edges(tmp_path: Path, source_rate: float) -> None:
    leads = {lead: np.full(int(10 * source_rate), 500.0) for lead in LEADS}     # 0.5 mV
    array = ecg_array(_write_ecg(tmp_path, leads, source_rate, "offset"), rate=500.0)
    # within the source's 1 µV step everywhere; zero padding would pull the ends toward 0 mV
    np.testing.assert_allclose(array.signal, 0.5, atol=1e-3)


def test_derived_limb_leads_satisfy_einthoven_exactly(tmp_path: Path) -> None:
    independent = {lead: samples for lead, samples in _sine_leads(1000.0).items()
                   if lead in ("I", "II") or lead.startswith("V")}
    array = ecg_array(_write_ecg(tmp_path, independent, 1000.0, "eight"), rate=500.0)
    assert array.derived == ("III", "aVR", "aVL", "aVF")
    one, two, three, avr, avl, avf = array.signal[:6]
    assert np.array_equal(three, two - one)
    assert np.array_equal(avr, -(one + two) / 2)
    assert np.array_equal(avl, one - two / 2)
    assert np.array_equal(avf, two - one / 2)
    assert _amplitude(one, SINE_HZ["I"], 500.0) == pytest.approx(1.0, rel=0.01)


def test_seconds_crop_the_end_or_pad_it_with_zeros(tmp_path: Path) -> None:
    path = _write_ecg(tmp_path, _sine_leads(500.0), 500.0, "crop")
    whole = ecg_array(path, seconds=None).signal
    assert whole.shape == (12, 5000)
    np.testing.assert_array_equal(ecg_array(path, seconds=4.0).signal, whole[:, :2000])
    padded = ecg_array(path, seconds=12.0).signal
    np.testing.assert_array_equal(padded[:, :5000], whole)
    assert padded.shape == (12, 6000) and not padded[:, 5000:].any()
    assert ecg_array(path, rate=250.0, seconds=3.0).signal.shape == (12, 750)


@pytest.mark.parametrize("dropped, named", [(("V6",), "V6"), (("V1", "V2"), "V1, V2"),
                                            (("II",), "II")])
def test_missing_required_leads_name_file_and_leads(tmp_path: Path, dropped: tuple[str, ...],
                                                    named: str) -> None:
    leads = {lead: samples for lead, samples in _sine_leads(500.0).items() if lead not in dropped}
    path = _write_ecg(tmp_path, leads, 500.0, "missing")
    with pytest.raises(EcgArrayError) as error:
        ecg_array(path)
    assert error.value.path == path and str(path) in str(error.value)
    assert f"lead(s) {named} missing" in str(error.value)


def test_a_file_without_waveform_is_an_error(data: Converted) -> None:
    ct_file = next(iter(data.ct.values()))[0]
    with pytest.raises(EcgArrayError, match="is not an ECG waveform") as error:
        ecg_array(ct_file)
    assert error.value.path == ct_file
