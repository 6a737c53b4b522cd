"""The same inputs give byte-identical objects on any day; changed content gets a new instance
UID and the instance it replaces is superseded, never overwritten or left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from srcohort.convert.outputs import encode, seal
from srcohort.convert.site import convert_site
from srcohort.sources.mapping import load_mapping
from tests.dicom_validators import require_tool

OTHER_DAYS = ("2031-02-28 23:59:30", "2027-06-15 08:00:00")   # any day after the data


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def site(small_consortium: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the site with every input kind (images, tables, ECGs, label maps)."""
    copy = tmp_path_factory.mktemp("site") / "site"
    shutil.copytree(small_consortium / "site-01", copy, symlinks=True)
    return copy


def _convert_on(day: str, site_dir: Path, out: Path) -> None:
    """``srcohort convert`` in a process whose clock says ``day`` (Debian's faketime)."""
    subprocess.run(["faketime", day, sys.executable, "-m", "srcohort", "convert",
                    str(site_dir), "--out", str(out), "--workers", "2"],
                   check=True, capture_output=True, env={**os.environ, "FAKETIME_DONT_RESET": "1"})


def test_a_conversion_on_another_day_writes_the_same_bytes(site: Path, tmp_path: Path) -> None:
    require_tool("faketime")
    convert_site(site, tmp_path / "today", workers=2)
    today = _tree(tmp_path / "today" / "dicom")
    kinds = {pydicom.dcmread(tmp_path / "today" / "dicom" / rel, stop_before_pixels=True)
             .Modality for rel in today}
    assert {"CT", "SR", "SEG", "ECG"} <= kinds
    for n, day in enumerate(OTHER_DAYS):
        _convert_on(day, site, tmp_path / f"day{n}")
        assert _tree(tmp_path / f"day{n}" / "dicom") == today, day


def test_changed_content_gets_a_new_uid_and_supersedes_the_old(site: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert_site(site, out, workers=1)
    before = _tree(out / "dicom")
    landmarks = load_mapping(site).tables["landmarks"].file
    original = landmarks.read_bytes()
    ecg = sorted(p for p in (site / "ecg").rglob("*") if p.is_file())[0]
    ecg_bytes = ecg.read_bytes()
    try:
        header, first, *rest = original.splitlines(keepends=True)
        landmarks.write_bytes(b"".join([header, first.rstrip() + b"1\n", *rest]))  # moved point
        ecg.unlink()
        report = convert_site(site, out, workers=1)
    finally:
        landmarks.write_bytes(original)
        ecg.write_bytes(ecg_bytes)
    after = _tree(out / "dicom")
    superseded = report.to_dict()["superseded"]
    moved = {entry["path"] for entry in superseded}
    assert moved == before.keys() - after.keys()
    assert all((out / "superseded" / path).read_bytes() == before[path] for path in moved)
    replaced = [e for e in superseded if e["replaced_by"]]
    gone = [e for e in superseded if not e["replaced_by"]]
    assert len(gone) == 2                      # the ECG's waveform and report
    assert len(replaced) == 1                  # the planning report with the moved landmark
    for entry in replaced:                     # same series, new instance with another UID
        series = Path(entry["path"]).parent
        assert (out / "dicom" / series / f"{entry['replaced_by']}.dcm").is_file()
        assert entry["replaced_by"] != Path(entry["path"]).stem
    # no UID carries two contents: every UID kept has the bytes it had before
    assert all(after[path] == before[path] for path in after.keys() & before.keys())
    on_disk = json.loads((out / "conversion-report.json").read_text())
    assert on_disk["superseded"] == superseded
    again = convert_site(site, out, workers=1)          # inputs restored: the first objects
    assert _tree(out / "dicom") == before
    assert {e["path"] for e in again.to_dict()["superseded"]} == after.keys() - before.keys()


def test_sealed_bytes_are_the_encoding_of_the_sealed_object(converted: Path) -> None:
    """``seal`` rewrites the UID in the encoded bytes instead of encoding twice: the result is
    exactly what encoding the sealed object gives, for every kind of object srcohort writes."""
    kinds = set()
    for path in sorted(converted.glob("*/dicom/**/*.dcm")):
        ds = pydicom.dcmread(path)
        if ds.Modality == "CT":
            continue
        kinds.add(ds.Modality)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID}.7"
        assert seal(ds) == encode(ds), path
    assert kinds == {"SR", "SEG", "ECG"}
