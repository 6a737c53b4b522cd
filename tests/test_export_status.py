"""An export's state is explicit in both formats: a failed one never looks finished, a full disk
stops it clearly and a rerun resumes, and what a complete one left out is listed with why."""

from __future__ import annotations

import errno
import json
import uuid
from pathlib import Path
from typing import Iterator

import pydicom
import pytest
from opensearchpy import OpenSearch
from pydicom.data import get_testdata_file

from srcohort.cohort.definition import load_cohort
from srcohort.export import exporter, state
from srcohort.export.deidentify import Deidentifier
from srcohort.export.exporter import export_cohort
from srcohort.export.phi_scan import phi_values, scan_file
from srcohort.export.state import COMPLETE
from srcohort.export.status import read_status
from srcohort.export.training import TrainingSettings, export_training
from srcohort.export.verify import PhiFound
from srcohort.index.indexer import index_directory

SECRET = b"status-secret"
ALL_CT = load_cohort({"name": "all-with-ct", "patients": {"series": {"modality": "CT"}}})
SETTINGS = TrainingSettings(spacing=(2.0, 2.0, 2.0))


@pytest.fixture(scope="module")
def prefix(opensearch_client: OpenSearch, converted: Path) -> Iterator[str]:
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    for folder in sorted(converted.iterdir()):
        index_directory(opensearch_client, folder / "dicom", site=folder.name, prefix=prefix)
    yield prefix
    opensearch_client.indices.delete(index=f"{prefix}*", ignore_unavailable=True)


def test_a_dicom_export_that_fails_verification_is_marked_failed(
        opensearch_client: OpenSearch, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "dicom"
    export_cohort(opensearch_client, ALL_CT, out, prefix=prefix, secret=SECRET)
    assert (out / COMPLETE).is_file() and read_status(out)["state"] == "complete"

    def leaky(job: tuple[str, Path, Deidentifier]) -> str:      # the original file, unchanged
        source, target, _ = job
        return state.write_atomic(target, Path(source).read_bytes())["sha256"]
    monkeypatch.setattr(exporter, "_write", leaky)
    with pytest.raises(PhiFound):
        export_cohort(opensearch_client, ALL_CT, out, prefix=prefix, secret=SECRET)
    status = read_status(out)
    assert status["state"] == "failed" and not (out / COMPLETE).exists()
    assert "identifying values" in status["reason"]
    assert all(v not in json.dumps(status) for v in ("PatientName", "^"))   # kinds, no values


def test_a_full_disk_stops_the_export_clearly_and_a_rerun_resumes(
        opensearch_client: OpenSearch, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "unified"
    real = state.files.write_atomic
    written: list[Path] = []

    def filling(path: Path, data: bytes) -> None:       # room for a few patients' volumes
        if path.suffix == ".gz":
            if len(written) >= 8:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            written.append(path)
        real(path, data)
    monkeypatch.setattr(state.files, "write_atomic", filling)
    with pytest.raises(OSError):
        export_training(opensearch_client, ALL_CT, out, secret=SECRET, prefix=prefix,
                        settings=SETTINGS, workers=1)
    status = read_status(out)
    assert status["state"] == "failed" and "ENOSPC" in status["reason"]
    assert not (out / COMPLETE).exists() and not list(out.rglob("*.partial"))
    monkeypatch.setattr(state.files, "write_atomic", real)
    result = export_training(opensearch_client, ALL_CT, out, secret=SECRET, prefix=prefix,
                             settings=SETTINGS, workers=1)
    assert result.resumed > 0 and read_status(out)["state"] == "complete"
    assert (out / COMPLETE).is_file()


def test_a_complete_export_lists_what_it_left_out(
        opensearch_client: OpenSearch, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A single-slice CT is no volume: left out, and the status says so by kind and class."""
    from srcohort.export import training, volumes
    real = volumes.ct_series

    def one_slice(files: list[Path]) -> volumes.CTSeries:
        return real(files[:1])
    monkeypatch.setattr(training, "ct_series", one_slice)
    out = tmp_path / "unified"
    export_training(opensearch_client, ALL_CT, out, secret=SECRET, prefix=prefix,
                    settings=SETTINGS, workers=1)
    status = read_status(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert status["state"] == "complete" and status["left_out"]
    assert {item["kind"] for item in status["left_out"]} == {"ct"}
    assert len(status["left_out"]) == manifest["counts"]["patients"]
    assert all(set(item) == {"pseudonym", "kind", "error"} for item in status["left_out"])


def test_a_real_ct_with_a_zero_weight_verifies_clean(tmp_path: Path) -> None:
    """pydicom's CT_small has PatientWeight 0.000000: a number, not an identifying value, so it
    must not be matched inside every image orientation of the export."""
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert str(source.PatientWeight) in ("0.0", "0.000000", "0")
    phi = phi_values([source])
    assert not any(v.replace(".", "").strip("0") == "" for v in phi)
    assert {str(source.PatientID), str(source.StudyInstanceUID)} <= phi
    exported = Deidentifier(SECRET, "site").dataset(source)
    exported.save_as(tmp_path / "ct.dcm", enforce_file_format=True)
    assert scan_file(tmp_path / "ct.dcm", frozenset(phi)) == []
