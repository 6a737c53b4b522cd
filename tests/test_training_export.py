"""The unified training export against the real OpenSearch: layout, truth, reader, PHI scan,
resume, byte-identical re-export, Croissant card."""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest
from opensearchpy import OpenSearch

from srcohort.cohort.definition import load_cohort
from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.run import count_patients, list_patients
from srcohort.export import training
from srcohort.export.deidentify import Deidentifier
from srcohort.export.ecg_arrays import LEADS
from srcohort.export.phi_scan import phi_values, scan_export
from srcohort.export.reader import IncompleteExport, TrainingDataset
from srcohort.export.selection import series_files
from srcohort.export.split import SplitFractions
from srcohort.export.state import COMPLETE, ExportConflict
from srcohort.files import file_sha256
from srcohort.export.training import TrainingSettings, export_training
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names

SECRET = b"test-site-secret"
# Every patient with a CT: labels yes, no and unknown all occur (the saved cohorts need one).
ALL_CT = load_cohort({"name": "all-with-ct", "patients": {"all": [{"series": {"modality": "CT"}}]}})
SETTINGS = TrainingSettings(spacing=(1.5, 1.5, 1.5))


@dataclass(frozen=True)
class Exported:
    prefix: str
    root: Path
    result: training.TrainingExportResult


@pytest.fixture(scope="module")
def prefix(opensearch_client: OpenSearch, converted: Path) -> Iterator[str]:
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    for folder in sorted(converted.iterdir()):
        index_directory(opensearch_client, folder / "dicom", site=folder.name, prefix=prefix)
    try:
        yield prefix
    finally:
        opensearch_client.indices.delete(index=f"{prefix}*", ignore_unavailable=True)


@pytest.fixture(scope="module")
def exported(opensearch_client: OpenSearch, prefix: str,
             tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("unified") / "export"
    result = export_training(opensearch_client, ALL_CT, root, secret=SECRET, prefix=prefix,
                             settings=SETTINGS)
    return Exported(prefix, root, result)


def _rows(root: Path) -> list[dict]:
    return pq.read_table(root / training.PATIENTS_TABLE).to_pylist()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _card_without_time(data: bytes) -> dict:
    card = json.loads(data)
    card.pop("datePublished")
    return card


def test_layout_checksums_and_counts(exported: Exported, opensearch_client: OpenSearch) -> None:
    root = exported.root
    assert (root / COMPLETE).is_file()
    manifest = json.loads((root / "manifest.json").read_text("utf-8"))
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {str(p.relative_to(root)) for folder in training.FOLDERS
               for p in (root / folder).rglob("*") if p.is_file()}
    assert on_disk | {training.PATIENTS_TABLE} == set(listed)
    for rel, entry in listed.items():
        assert file_sha256(root / rel) == entry["sha256"], rel
    total = count_patients(opensearch_client, ALL_CT, prefix=exported.prefix)["total"]
    rows = _rows(root)
    assert len(rows) == manifest["counts"]["patients"] == exported.result.patients == total > 0
    assert manifest["counts"]["with_ct"] == total       # the cohort requires a CT
    assert sum(manifest["counts"]["label"].values()) == total
    assert all(v > 0 for v in manifest["counts"]["label"].values()), manifest["counts"]["label"]


def test_exported_values_equal_the_ground_truth(exported: Exported, small_consortium: Path
                                                ) -> None:
    """Labels, features and the ECG/segment inventory, patient by patient, against what the
    generator recorded (which the pipeline never reads)."""
    truth = json.loads((small_consortium / "ground_truth.json").read_text("utf-8"))
    rows = {r["pseudonym"]: r for r in _rows(exported.root)}
    faulty = {(s, f["patient_id"]) for s, site in truth["sites"].items()
              for f in site.get("faults", []) if f.get("patient_id")}
    checked = 0
    for site, site_truth in truth["sites"].items():
        deid = Deidentifier(SECRET, site)
        for pid, patient in site_truth["patients"].items():
            row = rows.get(deid.pseudonym(pid))
            assert (row is not None) == patient["has_ct"], (site, pid)
            if row is None or (site, pid) in faulty:
                continue
            checked += 1
            assert row["pacemaker"] == patient["pacemaker"], (site, pid)
            assert row["label"] == {"yes": 1, "no": 0}.get(patient["pacemaker"])
            diameter = patient.get("measurements", {}).get("ANNULUS_DIAMETER")
            if diameter:
                value, unit = diameter
                expected = value * 10 if unit == "cm" else value
                assert row["tid1500.annulus_diameter"] == pytest.approx(expected, abs=1e-6)
            assert (row["ecg"] is not None) == bool(patient.get("ecg")), (site, pid)
            assert (row["segments"] is not None) == bool(patient.get("segmentations"))
            if patient["pacemaker"] != "unknown":     # the outcome SR dates the TAVI: day 0
                assert row["srcohort-tavi-outcome.tavi_date"] == 0
    assert checked >= 10


def test_reader_yields_every_sample(exported: Exported) -> None:
    dataset = TrainingDataset(exported.root, masks=True)
    assert len(dataset) == exported.result.patients
    splits = [len(TrainingDataset(exported.root, split=s)) for s in ("train", "val", "test")]
    assert sum(splits) == len(dataset)
    for index in range(len(dataset)):
        sample = dataset[index]
        ct, ecg, features, label = sample
        assert ct is not None and ct.ndim == 3
        assert label in (0, 1, None)
        assert set(features) == {c["name"] for c in dataset.manifest["columns"]}
        if ecg is not None:
            assert ecg.shape == (len(LEADS), int(SETTINGS.ecg_rate * SETTINGS.ecg_seconds))
            assert ecg.dtype == np.float32 and np.isfinite(ecg).all()
        for mask in sample.masks.values():
            assert mask.shape == ct.shape and mask.dtype == np.uint8 and mask.any()


def test_nothing_identifying_in_the_export(exported: Exported, opensearch_client: OpenSearch,
                                           tmp_path: Path) -> None:
    """Every identifying value of every source object of the cohort, searched in every file."""
    import pydicom
    series_index, _ = index_names(exported.prefix)
    sources = []
    for patient in list_patients(opensearch_client, ALL_CT, prefix=exported.prefix):
        uids = {s["series_instance_uid"] for s in patient["series"]}
        for files in series_files(opensearch_client, series_index, uids).values():
            sources += [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    phi = phi_values(sources)
    assert len(phi) > 100
    assert scan_export(exported.root, phi) == []
    # The same scan finds a planted value: the assertion above can fail.
    planted = tmp_path / "planted"
    shutil.copytree(exported.root, planted)
    name = str(next(ds.PatientName for ds in sources if ds.Modality == "CT"))
    (planted / "tables" / "notes.json").write_text(json.dumps({"who": name}), "utf-8")
    assert scan_export(planted, phi)


def test_reexport_is_byte_identical(exported: Exported, opensearch_client: OpenSearch,
                                    tmp_path: Path) -> None:
    again = tmp_path / "again"
    export_training(opensearch_client, ALL_CT, again, secret=SECRET, prefix=exported.prefix,
                    settings=SETTINGS)
    first, second = _files(exported.root), _files(again)
    assert set(first) == set(second)
    card = "croissant.json"
    assert _card_without_time(first.pop(card)) == _card_without_time(second.pop(card))
    assert first == second


def test_interrupted_export_resumes_and_is_never_complete(
        exported: Exported, opensearch_client: OpenSearch, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    written: list[str] = []

    def crash_after_three(alias: str) -> None:
        written.append(alias)
        if len(written) == 3:
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        export_training(opensearch_client, ALL_CT, out, secret=SECRET, prefix=exported.prefix,
                        settings=SETTINGS, on_patient=crash_after_three)
    assert not (out / COMPLETE).exists()
    with pytest.raises(IncompleteExport):
        TrainingDataset(out)
    records = sorted((out / "progress").glob("*.json"))
    assert len(records) == 3        # in-flight patients' files may exist, their records not
    # A damaged file of a recorded patient is redone, not trusted.
    damaged = out / json.loads(records[0].read_text("utf-8"))["files"][0]["path"]
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = export_training(opensearch_client, ALL_CT, out, secret=SECRET,
                             prefix=exported.prefix, settings=SETTINGS)
    assert result.resumed == 2
    first, second = _files(exported.root), _files(out)
    first.pop("croissant.json"), second.pop("croissant.json")
    assert first == second


def test_another_cohort_or_secret_is_refused(exported: Exported,
                                             opensearch_client: OpenSearch) -> None:
    with pytest.raises(ExportConflict, match="cohort_sha256"):
        export_training(opensearch_client, resolve_cohort("tavi-self-expanding"), exported.root,
                        secret=SECRET, prefix=exported.prefix, settings=SETTINGS)
    with pytest.raises(ExportConflict, match="secret"):
        export_training(opensearch_client, ALL_CT, exported.root, secret=b"another",
                        prefix=exported.prefix, settings=SETTINGS)
    # Refusing left the export as it was: still complete.
    assert (exported.root / COMPLETE).is_file()


def test_croissant_card_loads_and_reads_records(exported: Exported) -> None:
    import mlcroissant as mlc
    dataset = mlc.Dataset(jsonld=str(exported.root / "croissant.json"))
    issues = dataset.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, (issues.errors, issues.warnings)
    records = list(dataset.records(record_set="patients"))
    assert len(records) == exported.result.patients
    card = json.loads((exported.root / "croissant.json").read_text("utf-8"))
    fields = {f["name"]: f for f in card["recordSet"][0]["field"]}
    assert "content path" in fields["tid1500.annulus_diameter"]["description"]


def test_split_is_stable_when_the_cohort_changes(exported: Exported,
                                                 opensearch_client: OpenSearch,
                                                 tmp_path: Path) -> None:
    narrower = tmp_path / "narrower"
    export_training(opensearch_client, resolve_cohort("tavi-self-expanding"), narrower,
                    secret=SECRET, prefix=exported.prefix, settings=SETTINGS)
    wide = {r["pseudonym"]: r["split"] for r in _rows(exported.root)}
    narrow = {r["pseudonym"]: r["split"] for r in _rows(narrower)}
    assert narrow and set(narrow) < set(wide)
    assert all(wide[p] == s for p, s in narrow.items())


def test_split_fractions_parse() -> None:
    assert SplitFractions.parse("80/10/10") == SplitFractions(0.8, 0.1, 0.1)
    assert SplitFractions.parse("0.6/0.2/0.2") == SplitFractions(0.6, 0.2, 0.2)
    with pytest.raises(ValueError):
        SplitFractions.parse("80/30/10")
    with pytest.raises(ValueError):
        SplitFractions.parse("train")


def test_an_unreadable_ct_is_left_out_and_noted_the_rest_exports(
        exported: Exported, opensearch_client: OpenSearch, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A CT that cannot be made a volume: that patient keeps its ECG, features and label, the
    problem is noted by kind only (the message names source files, which stay in the log),
    and every other patient is exported as before."""
    before = {r["pseudonym"]: r for r in _rows(exported.root)}
    real = training.ct_series
    calls: list[int] = []

    def failing_once(files):
        calls.append(1)
        if len(calls) == 1:
            raise training.VolumeError(f"{files[0]}: slice spacing not uniform")
        return real(files)

    monkeypatch.setattr(training, "ct_series", failing_once)
    result = export_training(opensearch_client, ALL_CT, tmp_path / "out", secret=SECRET,
                             prefix=exported.prefix, settings=SETTINGS, workers=1)
    assert (tmp_path / "out" / COMPLETE).is_file()
    assert result.patients == exported.result.patients
    [problem] = result.problems
    failed = problem["pseudonym"]
    assert problem == {"pseudonym": failed, "modality": "ct", "error": "VolumeError"}
    rows = {r["pseudonym"]: r for r in _rows(tmp_path / "out")}
    assert rows[failed]["ct"] is None and rows[failed]["segments"] is None
    assert rows[failed]["label"] == before[failed]["label"]
    assert rows[failed]["ecg"] == before[failed]["ecg"]
    assert all(r == before[p] for p, r in rows.items() if p != failed)
    manifest = (tmp_path / "out" / "manifest.json").read_text("utf-8")
    assert "slice spacing" not in manifest and "/" not in json.dumps(result.problems)
