"""The PHI scanner: silent on a clean export, and it does find planted identifying values."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from srcohort.export.phi_scan import phi_values, scan_export, scan_file
from srcohort.export.verify import scan_per_patient
from tests.test_deidentify import deidentify_all


@pytest.fixture(scope="module")
def per_patient(converted: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Path, dict[str, set[str]]]:
    """A de-identified copy of every converted object, filed by pseudonym, and the PHI of each
    patient's sources under that pseudonym."""
    out = tmp_path_factory.mktemp("export")
    own: dict[str, set[str]] = defaultdict(set)
    for source, target in deidentify_all(converted, out / "data").items():
        own[target.parent.name] |= phi_values([pydicom.dcmread(source, stop_before_pixels=True)])
    return out, dict(own)


@pytest.fixture(scope="module")
def export(per_patient: tuple[Path, dict[str, set[str]]]) -> tuple[Path, set[str]]:
    """The de-identified copy and the PHI of all sources together."""
    root, own = per_patient
    return root, set().union(*own.values())


@pytest.fixture
def source(converted: Path) -> pydicom.Dataset:
    return pydicom.dcmread(sorted(converted.glob("*/dicom/**/*.dcm"))[0])


def test_clean_export_has_no_findings(per_patient: tuple[Path, dict[str, set[str]]]) -> None:
    """The export's own rule (``verify.scan_per_patient``): a patient's shifted date may equal
    another patient's real date by chance, so dates are matched per patient only."""
    root, own = per_patient
    assert len(own) > 10 and sum(map(len, own.values())) > 50
    assert scan_per_patient(root, own) == []


def test_a_patients_own_date_in_its_files_is_found(
        per_patient: tuple[Path, dict[str, set[str]]]) -> None:
    root, own = per_patient
    alias, values = next((a, v) for a, v in sorted(own.items())
                         if any(len(x) == 8 and x.isdigit() for x in v))
    date = sorted(x for x in values if len(x) == 8 and x.isdigit())[0]
    (root / "data" / "x" / alias).mkdir(parents=True)
    (root / "data" / "x" / alias / "note.txt").write_text(f"seen on {date}\n")
    try:
        assert [(f.value, Path(f.path).name) for f in scan_per_patient(root, own)] == \
            [(date, "note.txt")]
    finally:
        (root / "data" / "x" / alias / "note.txt").unlink()


def test_phi_values_cover_names_ids_dates_and_uids(source: pydicom.Dataset) -> None:
    phi = phi_values([source])
    family, given = str(source.PatientName).split("^")[:2]
    birth = source.PatientBirthDate
    assert {source.PatientID, family, given, source.StudyInstanceUID, birth,
            f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", f"{birth[6:]}.{birth[4:6]}.{birth[:4]}"} <= phi
    assert source.SOPClassUID not in phi and source.PatientSex not in phi
    assert all(sum(c.isalnum() for c in v) >= 4 for v in phi)


def test_planted_phi_is_found(export: tuple[Path, set[str]], source: pydicom.Dataset,
                              tmp_path: Path) -> None:
    _, phi = export
    family = str(source.PatientName).split("^")[0]
    pd.DataFrame({"pseudonym": ["P1"], "note": [f"seen: {source.PatientName}"]}).to_parquet(
        tmp_path / "patients.parquet")
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    image.header["descrip"] = f"born {source.PatientBirthDate}".encode()
    nib.save(image, tmp_path / "ct.nii.gz")
    (tmp_path / "export.json").write_text(json.dumps({"study": source.StudyInstanceUID}))
    np.save(tmp_path / "clean.npy", np.zeros(3))
    findings = {(Path(f.path).name, f.value, f.where) for f in scan_export(tmp_path, phi)}
    assert ("patients.parquet", family, "parquet column note") in findings
    assert ("ct.nii.gz", source.PatientBirthDate, "nifti header") in findings
    assert ("export.json", source.StudyInstanceUID, "text") in findings
    assert not any(name == "clean.npy" for name, _, _ in findings)


def test_an_original_dicom_is_found(export: tuple[Path, set[str]], source: pydicom.Dataset,
                                    tmp_path: Path) -> None:
    _, phi = export
    source.save_as(tmp_path / "leak.dcm", enforce_file_format=True)
    wheres = {f.where for f in scan_file(tmp_path / "leak.dcm", phi)}
    assert {"dicom PatientID", "dicom PatientName", "dicom bytes"} <= wheres


def test_values_glued_to_other_characters_do_not_match(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("2.25.1230000007456,P0000007x\n")
    with gzip.open(tmp_path / "b.bin.gz", "wt") as stream:
        stream.write("x")
    assert scan_export(tmp_path, {"0000007"}) == []
    (tmp_path / "a.csv").write_text("id,0000007\n")
    assert [f.value for f in scan_export(tmp_path, {"0000007"})] == ["0000007"]
