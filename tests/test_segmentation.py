"""Label maps (NIfTI, NRRD) -> binary SEG: round trip, dciodvfy, geometry and label errors."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.codedict import codes as dicom_codes

from srcohort import codes
from srcohort.demo import labelmaps as demo
from srcohort.demo.ct import CTStudy, Geometry, ct_series
from srcohort.index.seg_content import SEGMENTS_MAPPING, seg_annotation
from srcohort.seg import Structure, build_segmentation
from srcohort.sources.labelmaps import LabelMapError, LabelTable, read_label_map, read_label_table
from srcohort.uids import derived_uid
from tests.dicom_validators import dciodvfy, require_tool

CT5N = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/98892001/CT5N"
STUDY = CTStudy(
    uid_parts=("test-seg",), patient_id="SEG-1", patient_name="Müller^Jürgen",
    birth_date=dt.date(1944, 2, 29), sex="M", study_date=dt.date(2021, 3, 1), study_time="101500",
    accession_number="0912345678", referring_physician="Weber^Thomas", institution="Test Hospital",
    manufacturer="Siemens", model="SOMATOM Force", series_description="CTA TAVI",
    geometry=Geometry(origin=(-75.0, -95.5, -160.0), pixel_spacing=10.0, slice_spacing=8.0),
    lumen_center=(2.0, -14.0), lumen_radius=12.0)


def _seg(label_map: Path, table: LabelTable, headers: list[pydicom.Dataset]) -> pydicom.Dataset:
    seg, dropped = build_segmentation(
        label_map, table, headers, institution="Test Hospital",
        series_instance_uid=derived_uid("test-seg", str(label_map), "series"),
        sop_instance_uid=derived_uid("test-seg", str(label_map), "instance"))
    assert dropped == 0
    return seg


def _saved(seg: pydicom.Dataset, folder: Path) -> pydicom.Dataset:
    """Write and read back, so the test sees what a PACS would receive."""
    path = folder / f"{seg.SOPInstanceUID}.dcm"
    seg.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


def _decoded(seg: pydicom.Dataset, headers: list[pydicom.Dataset]) -> dict[str, np.ndarray]:
    """Per segment label: a (slice, row, column) mask on ``headers``' slices, from the raw frames.

    Decoded with pydicom only: each frame is placed by its own ImagePositionPatient, which must
    be the position of a CT slice, and attributed to its ReferencedSegmentNumber.
    """
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    slice_at = {tuple(round(float(v), 3) for v in h.ImagePositionPatient): k
                for k, h in enumerate(headers)}
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    masks = {label: np.zeros((len(headers), seg.Rows, seg.Columns), dtype=bool)
             for label in labels.values()}
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        position = tuple(round(float(v), 3)
                         for v in group.PlanePositionSequence[0].ImagePositionPatient)
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        masks[labels[number]][slice_at[position]] |= frame.astype(bool)
    return masks


def _expected(labels: np.ndarray, table: dict[int, Structure]) -> dict[str, np.ndarray]:
    """Per structure label: the mask of a ``[column, row, slice]`` array as (slice, row, col)."""
    return {table[int(v)].label: (labels == v).transpose(2, 1, 0)
            for v in np.unique(labels) if v}


def _demo_case(tmp_path: Path, site_number: int) -> tuple[Path, LabelTable, np.ndarray]:
    style = demo.label_style(site_number)
    label_map = demo.write_label_map(tmp_path / f"P1{style.suffix}", STUDY, style)
    table = read_label_table(demo.write_label_table(tmp_path / f"labels{style.table_suffix}",
                                                    style))
    return label_map, table, demo.label_volume(STUDY, style)


@pytest.mark.parametrize("site_number", [1, 2], ids=["nifti-csv", "nrrd-yaml"])
def test_label_map_round_trips_to_seg_frames(tmp_path: Path, site_number: int) -> None:
    label_map, table, labels = _demo_case(tmp_path, site_number)
    assert label_map.name.endswith(".nii.gz" if site_number == 1 else ".nrrd")
    headers = ct_series(STUDY)
    seg = _saved(_seg(label_map, table, headers), tmp_path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"       # Segmentation Storage
    assert seg.SegmentationType == "BINARY"
    assert seg.FrameOfReferenceUID == headers[0].FrameOfReferenceUID
    expected = _expected(labels, table.structures)
    decoded = _decoded(seg, headers)
    assert sorted(decoded) == sorted(expected) == \
        ["Aortic Valve", "Calcification", "Left Ventricle", "Right Ventricle"]
    for label, mask in expected.items():
        np.testing.assert_array_equal(decoded[label], mask, err_msg=label)
    # only frames where a segment is present: the top slices hold nothing
    present = sum(int(mask[k].any()) for mask in expected.values() for k in range(len(headers)))
    assert int(seg.NumberOfFrames) == present < len(expected) * len(headers)


def test_nifti_rows_are_stored_flipped_as_dcm2niix_does(tmp_path: Path) -> None:
    """The demo NIfTI stores rows bottom-up: the reader must report it, the SEG must undo it."""
    label_map, _, labels = _demo_case(tmp_path, 1)
    stored = nib.load(label_map)
    g = STUDY.geometry
    top_row_y = g.origin[1] + (g.size - 1) * g.pixel_spacing        # LPS y of the last row
    assert stored.get_sform(coded=True)[1] == 1                       # scanner anatomical
    np.testing.assert_allclose(stored.affine[:3, 3], (-g.origin[0], -top_row_y, g.origin[2]))
    np.testing.assert_allclose(np.diag(stored.affine)[:3],            # RAS: rows run +A = -P
                               (-g.pixel_spacing, g.pixel_spacing, g.slice_spacing))
    read = read_label_map(label_map)
    np.testing.assert_allclose(read.affine[:3, 3], (g.origin[0], top_row_y, g.origin[2]))
    np.testing.assert_array_equal(read.array[:, ::-1, :], labels)


@pytest.mark.validators
@pytest.mark.parametrize("site_number", [1, 2], ids=["nifti", "nrrd"])
def test_seg_passes_dciodvfy(tmp_path: Path, site_number: int) -> None:
    require_tool("dciodvfy")
    label_map, table, _ = _demo_case(tmp_path, site_number)
    path = tmp_path / "seg.dcm"
    _seg(label_map, table, ct_series(STUDY)).save_as(path, enforce_file_format=True)
    assert dciodvfy(path) == []


@pytest.mark.validators
def test_a_ct_slice_set_aside_drops_only_its_frames(tmp_path: Path) -> None:
    """A labelled interior CT slice is missing (the conversion set it aside): the label map,
    drawn on the whole series, still gives the slice step, its other frames are written on the
    right slices, the missing slice's labels are counted, and the SEG stays valid."""
    require_tool("dciodvfy")
    label_map, table, labels = _demo_case(tmp_path, 1)
    headers = ct_series(STUDY)
    labelled = [k for k in range(1, len(headers) - 1) if labels[:, :, k].any()]
    gone = labelled[len(labelled) // 2]
    kept = [h for k, h in enumerate(headers) if k != gone]
    seg, dropped = build_segmentation(
        label_map, table, kept, institution="Test Hospital",
        series_instance_uid=derived_uid("test-seg-gap", "series"),
        sop_instance_uid=derived_uid("test-seg-gap", "instance"))
    assert dropped == 1
    seg = _saved(seg, tmp_path)
    expected = {label: np.delete(mask, gone, axis=0)
                for label, mask in _expected(labels, table.structures).items()}
    # A structure drawn only on the missing slice has no frame left, so no segment.
    expected = {label: mask for label, mask in expected.items() if mask.any()}
    decoded = _decoded(seg, kept)
    assert sorted(decoded) == sorted(expected)
    for label, mask in expected.items():
        np.testing.assert_array_equal(decoded[label], mask, err_msg=label)
    assert dciodvfy(tmp_path / f"{seg.SOPInstanceUID}.dcm") == []


def _ct5n() -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(CT5N.iterdir())]


def _ct5n_label_map(tmp_path: Path, name: str) -> tuple[Path, np.ndarray]:
    """A label map on the CT5N grid built from its headers, stored [slice, row, column]."""
    headers = sorted(_ct5n(), key=lambda h: float(h.ImagePositionPatient[2]))
    row_spacing, column_spacing = (float(v) for v in headers[0].PixelSpacing)
    first, last = (np.array(h.ImagePositionPatient, dtype=float) for h in (headers[0], headers[-1]))
    labels = np.zeros((int(headers[0].Columns), int(headers[0].Rows), len(headers)), np.uint8)
    labels[5:11, 4:9, 1:4] = 7                    # [column, row, slice]: a block of ventricle
    labels[2, 13, 0] = 9                          # one calcified voxel, bottom slice
    affine = np.eye(4)                            # axial: columns along +x, rows along +y
    affine[:3, :3] = np.diag([column_spacing, row_spacing, (last - first)[2] / (len(headers) - 1)])
    affine[:3, 3] = first
    stored = labels.transpose(2, 1, 0)            # a tool that writes [slice, row, column]
    path = demo.save_label_map(tmp_path / name, stored, affine[:, [2, 1, 0, 3]])
    return path, labels


@pytest.mark.validators
@pytest.mark.parametrize("name", ["ct5n.nrrd", "ct5n.nii.gz"])
def test_real_ct_series_from_pydicom(tmp_path: Path, name: str) -> None:
    require_tool("dciodvfy")
    label_map, labels = _ct5n_label_map(tmp_path, name)
    table = LabelTable(Path("ct5n-labels.csv"),
                       {7: Structure.LEFT_VENTRICLE, 9: Structure.CALCIFICATION})
    headers = _ct5n()
    seg = _seg(label_map, table, headers)
    path = tmp_path / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    assert dciodvfy(path) == []
    read = pydicom.dcmread(path)
    ordered = sorted(headers, key=lambda h: float(h.ImagePositionPatient[2]))
    decoded = _decoded(read, ordered)
    for label, mask in _expected(labels, table.structures).items():
        np.testing.assert_array_equal(decoded[label], mask, err_msg=label)
    sources = {str(group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
               for group in read.PerFrameFunctionalGroupsSequence}
    assert sources == {str(h.SOPInstanceUID) for h in ordered[:4]}    # no label in the top slice
    assert seg_annotation(read)["referenced_series"] == [str(headers[0].SeriesInstanceUID)]


def _mismatched(tmp_path: Path, kind: str) -> Path:
    style = demo.label_style(2)
    labels, affine = demo.label_volume(STUDY, style), demo.ct_affine(STUDY.geometry)
    if kind == "origin":
        return demo.write_label_map(tmp_path / "shifted.nrrd", STUDY, style,
                                    origin_shift_mm=(0.0, 0.0, 5.0))
    if kind == "spacing":
        affine[2, 2] = 7.5
    elif kind == "shape":
        labels = np.concatenate([labels, labels[:, :, :1]], axis=2)
    elif kind == "orientation":
        angle = np.radians(3.0)
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                             [0, 0, 1]])
        affine[:3, :3] = rotation @ affine[:3, :3]
    return demo.save_label_map(tmp_path / f"{kind}.nrrd", labels, affine)


@pytest.mark.parametrize(("kind", "message"), [
    ("origin", "origin differs by 5.000 mm"),
    ("spacing", "spacing along the CT's slice axis differs: label map 7.5000 mm, CT 8.0000 mm"),
    ("shape", "shape differs: label map 16x16x5, CT 16x16x4"),
    ("orientation", "orientation differs: no label-map axis runs along the CT's column axis"),
])
def test_geometry_mismatch_names_the_quantity(tmp_path: Path, kind: str, message: str) -> None:
    label_map = _mismatched(tmp_path, kind)
    table = read_label_table(demo.write_label_table(tmp_path / "labels.yaml", demo.label_style(2)))
    with pytest.raises(LabelMapError, match=f"^{re.escape(str(label_map))}: ") as error:
        _seg(label_map, table, ct_series(STUDY))
    assert message in str(error.value)


def test_label_missing_from_table_is_an_error(tmp_path: Path) -> None:
    label_map, table, _ = _demo_case(tmp_path, 1)
    partial = LabelTable(table.path, {k: v for k, v in table.structures.items() if k != 4})
    with pytest.raises(LabelMapError) as error:
        _seg(label_map, partial, ct_series(STUDY))
    assert str(error.value) == f"{label_map}: label value(s) 4 not in the label table {table.path}"


def test_label_map_without_labels_is_an_error(tmp_path: Path) -> None:
    g = STUDY.geometry
    empty = demo.save_label_map(tmp_path / "empty.nrrd", np.zeros((g.size, g.size, g.slices),
                                                                  np.uint8), demo.ct_affine(g))
    with pytest.raises(LabelMapError, match="no labelled voxel"):
        _seg(empty, LabelTable(Path("t.csv"), {1: Structure.LEFT_VENTRICLE}), ct_series(STUDY))


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("labels.csv", "value,structure\n1,LEFT_VENTRICLE\n2,MITRAL_LEAFLET\n",
     "line 3: unknown structure 'MITRAL_LEAFLET'"),
    ("labels.csv", "label,name\n1,LEFT_VENTRICLE\n", "the first line must be the header"),
    ("labels.csv", "value,structure\n1,LEFT_VENTRICLE\n1,RIGHT_VENTRICLE\n",
     "line 3: label value 1 is listed twice"),
    ("labels.yaml", "0: LEFT_VENTRICLE\n", "label value 0 is not positive"),
    ("labels.yaml", "one: LEFT_VENTRICLE\n", "label value 'one' is not a whole number"),
    ("labels.yaml", "- LEFT_VENTRICLE\n", "a YAML label table is a mapping"),
])
def test_bad_label_table_names_file_and_reason(tmp_path: Path, name: str, text: str,
                                               reason: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LabelMapError, match=f"^{re.escape(str(path))}") as error:
        read_label_table(path)
    assert reason in str(error.value)


def test_unreadable_label_maps_name_file_and_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti file")
    no_space = tmp_path / "no-space.nrrd"
    nrrd.write(str(no_space), np.zeros((2, 2, 2), np.uint8))
    no_codes = tmp_path / "no-codes.nii"
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), None)     # neither sform nor qform
    nib.save(image, no_codes)
    for path, reason in ((broken, "not readable as NIfTI"),
                         (no_space, "NRRD space None is not a patient space"),
                         (no_codes, "NIfTI sform_code and qform_code are 0")):
        with pytest.raises(LabelMapError, match=f"^{re.escape(f'{path}: {reason}')}"):
            read_label_map(path)


def test_label_maps_import_without_seg_first() -> None:
    """sources.labelmaps and seg import each other's modules; either may be imported first."""
    result = subprocess.run([sys.executable, "-c", "import srcohort.sources.labelmaps"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_seg_annotation_lists_segments_with_codes(tmp_path: Path) -> None:
    label_map, table, _ = _demo_case(tmp_path, 2)
    seg = _saved(_seg(label_map, table, ct_series(STUDY)), tmp_path)
    annotation = seg_annotation(seg)
    assert {k: annotation[k] for k in ("kind", "template", "title", "codes", "numbers")} == \
        {"kind": "SEG", "template": "", "title": "", "codes": [], "numbers": []}
    assert annotation["sop_instance_uid"] == seg.SOPInstanceUID
    assert annotation["referenced_series"] == [STUDY.series_uid]
    assert annotation["segments"] == [
        {"number": 1, "label": "Aortic Valve", "category": "SCT:91723000", "type": "SCT:34202007",
         "algorithm_type": "MANUAL"},
        {"number": 2, "label": "Calcification", "category": "SCT:49755003",
         "type": "SCT:18115005", "algorithm_type": "MANUAL"},
        {"number": 3, "label": "Left Ventricle", "category": "SCT:91723000",
         "type": "SCT:87878005", "algorithm_type": "MANUAL"},
        {"number": 4, "label": "Right Ventricle", "category": "SCT:91723000",
         "type": "SCT:53085002", "algorithm_type": "MANUAL"},
    ]
    assert set(SEGMENTS_MAPPING["properties"]) == set(annotation["segments"][0])


def test_structure_codes_come_from_dicom_tables() -> None:
    """Categories are CID 7150 members; only the membranous septum needs the private scheme."""
    for structure in Structure:
        assert structure.category in dicom_codes.cid7150, structure
    assert [s for s in Structure if s.is_private] == [Structure.MEMBRANOUS_SEPTUM]


@pytest.mark.validators
def test_private_structure_declares_the_scheme(tmp_path: Path) -> None:
    require_tool("dciodvfy")
    labels = np.zeros((STUDY.geometry.size, STUDY.geometry.size, STUDY.geometry.slices), np.uint8)
    labels[7, 7, 1] = 1
    label_map = demo.save_label_map(tmp_path / "septum.nrrd", labels,
                                    demo.ct_affine(STUDY.geometry))
    seg = _seg(label_map, LabelTable(Path("t.csv"), {1: Structure.MEMBRANOUS_SEPTUM}),
               ct_series(STUDY))
    assert seg.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == \
        codes.PRIVATE_SCHEME
    path = tmp_path / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    assert dciodvfy(path) == []
    assert seg_annotation(seg)["segments"][0]["type"] == "99SRCOHORT:MEMBRANOUS_SEPTUM"
