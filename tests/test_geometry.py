"""One rule for every grid placed on a CT (srcohort.geometry): each voxel within 5 % of a voxel.

The SEG converter (label map -> frames on the CT), the training export (CT slices -> volume,
SEG frames -> masks) must accept and refuse the same geometry. Each case below moves a grid by
0.6 and by 1.4 times the tolerance, measured in the CT's own voxels at the grid's far end,
and expects acceptance and refusal from every caller that sees it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from srcohort.demo import labelmaps as demo
from srcohort.demo.ct import CTStudy, Geometry, ct_series
from srcohort.export.volumes import VolumeError, ct_series as read_ct, seg_masks
from srcohort.geometry import TOLERANCE
from srcohort.seg import build_segmentation
from srcohort.sources.labelmaps import LabelMapError, read_label_table
from srcohort.uids import derived_uid

GEOMETRY = Geometry(origin=(-75.0, -95.5, -160.0), pixel_spacing=10.0, slice_spacing=8.0,
                    size=16, slices=6)
STUDY = CTStudy(
    uid_parts=("test-geometry",), patient_id="GEO-1", patient_name="Rule^One",
    birth_date=dt.date(1950, 1, 1), sex="F", study_date=dt.date(2022, 5, 2), study_time="090000",
    accession_number="0900000001", referring_physician="Weber^Thomas",
    institution="Test Hospital", manufacturer="Siemens", model="SOMATOM Force",
    series_description="CTA", geometry=GEOMETRY, lumen_center=(2.0, -14.0), lumen_radius=12.0)
STYLE = demo.label_style(2)
WITHIN, BEYOND = 0.6 * TOLERANCE, 1.4 * TOLERANCE


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("ct")
    paths = []
    for k, ds in enumerate(ct_series(STUDY)):
        paths.append(folder / f"{k}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


def _headers(paths: list[Path]) -> list[Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]


def _seg_of(label_map: Path, ct: list[Path], folder: Path) -> Path:
    table = read_label_table(demo.write_label_table(folder / "labels.yaml", STYLE))
    seg, dropped = build_segmentation(
        label_map, table, _headers(ct), series_instance_uid=derived_uid("geo", str(label_map),
                                                                        "series"),
        sop_instance_uid=derived_uid("geo", str(label_map), "instance"))
    assert dropped == 0
    path = folder / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    return path


def _label_map(folder: Path, name: str, affine_change: np.ndarray | None = None,
               shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Path:
    affine = demo.ct_affine(GEOMETRY)
    if affine_change is not None:
        affine[:3, :3] = affine_change @ affine[:3, :3]
    affine[:3, 3] += shift_mm
    return demo.save_label_map(folder / f"{name}.nrrd", demo.label_volume(STUDY, STYLE), affine)


def _rotation(far_end_voxels: float) -> np.ndarray:
    """A rotation about the slice axis that moves the far end of a row by ``far_end_voxels``
    pixels across it."""
    angle = np.arcsin(far_end_voxels / (GEOMETRY.size - 1))
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("fraction", [WITHIN, BEYOND])
@pytest.mark.parametrize("axis", [0, 2])
def test_label_map_origin_and_seg_frames_share_one_tolerance(ct: list[Path], tmp_path: Path,
                                                             fraction: float, axis: int) -> None:
    spacing = (GEOMETRY.pixel_spacing, GEOMETRY.pixel_spacing, GEOMETRY.slice_spacing)[axis]
    shift = [0.0, 0.0, 0.0]
    shift[axis] = fraction * spacing
    shifted = _label_map(tmp_path, "shifted", shift_mm=tuple(shift))
    good = _seg_of(_label_map(tmp_path, "good"), ct, tmp_path)
    moved = tmp_path / "moved.dcm"                      # the same frames, moved as much
    ds = pydicom.dcmread(good)
    for item in ds.PerFrameFunctionalGroupsSequence:
        position = item.PlanePositionSequence[0]
        position.ImagePositionPatient = [f"{float(v) + d:.6f}" for v, d in
                                         zip(position.ImagePositionPatient, shift)]
    ds.save_as(moved)
    if fraction < TOLERANCE:
        (tmp_path / "within").mkdir()
        _seg_of(shifted, ct, tmp_path / "within")
        assert seg_masks([moved], ct).keys() == seg_masks([good], ct).keys()
        return
    with pytest.raises(LabelMapError, match="origin differs"):
        _seg_of(shifted, ct, tmp_path)
    with pytest.raises(VolumeError, match="do not land on the CT's voxels"):
        seg_masks([moved], ct)


@pytest.mark.parametrize("fraction", [WITHIN, BEYOND])
def test_orientation_is_judged_at_the_far_end(ct: list[Path], tmp_path: Path,
                                              fraction: float) -> None:
    rotated = _label_map(tmp_path, "rotated", affine_change=_rotation(fraction))
    if fraction < TOLERANCE:
        _seg_of(rotated, ct, tmp_path)
        return
    with pytest.raises(LabelMapError, match="orientation differs"):
        _seg_of(rotated, ct, tmp_path)


@pytest.mark.parametrize("fraction", [WITHIN, BEYOND])
def test_ct_slices_off_the_grid_are_judged_alike_by_converter_and_export(
        ct: list[Path], tmp_path: Path, fraction: float) -> None:
    paths = []
    for k, path in enumerate(ct):
        ds = pydicom.dcmread(path)
        if k == 2:
            position = [float(v) for v in ds.ImagePositionPatient]
            position[2] += fraction * GEOMETRY.slice_spacing
            ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        paths.append(tmp_path / path.name)
        ds.save_as(paths[-1])
    label_map = _label_map(tmp_path, "labels")
    if fraction < TOLERANCE:
        _seg_of(label_map, paths, tmp_path)
        assert read_ct(paths).grid.shape == (16, 16, 6)
        return
    with pytest.raises(LabelMapError, match="non-uniform slice spacing"):
        _seg_of(label_map, paths, tmp_path)
    with pytest.raises(VolumeError, match="non-uniform slice spacing"):
        read_ct(paths)
