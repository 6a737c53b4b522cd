"""The unified training export: one layout every site writes identically.

::

    <out>/ct/<pseudonym>.nii.gz              CT in HU, RAS+, resampled to the common spacing
    <out>/seg/<pseudonym>/<SCHEME_CODE>.nii.gz   one uint8 mask per segment type, on the CT's grid
    <out>/ecg/<pseudonym>.npy                float32 (12, n) mV, fixed lead order, common rate
    <out>/tables/patients.parquet            pseudonym, site, split, label, files, SR features
    <out>/manifest.json                      settings, counts, every file's sha256 (no timestamps)
    <out>/croissant.json                     the dataset card (Croissant JSON-LD)
    <out>/status.json                        running, failed (why) or complete (what was left out)
    <out>/COMPLETE                           written last, after the PHI verification

Patients appear only as HMAC pseudonyms; the tables hold no dates (days from the study's anchor
event instead), no free text and no identifiers. The export resumes after an interruption
(``state.py``) and a re-export of the same cohort with the same secret and settings is
byte-identical, the card's timestamp aside.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from opensearchpy import OpenSearch

from srcohort.cohort.definition import Cohort
from srcohort.cohort.label import LabelSpec
from srcohort.cohort.run import list_patients
from srcohort.export.card import croissant_card
from srcohort.export.deidentify import Deidentifier
from srcohort.export.ecg_arrays import LEADS, EcgArrayError, ecg_array
from srcohort.export.features import Column, feature_columns, patient_features
from srcohort.export.selection import FileLocator, Sample, choose_sample, series_files
from srcohort.export.split import SplitFractions, assign_split
from srcohort.export.state import ExportState, json_bytes, secret_digest, write_atomic
from srcohort.export.status import tracked
from srcohort.export.verify import Subject, verify_export
from srcohort.export.volumes import VolumeError, ct_series, seg_mask_niftis
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.opensearch import index_names
from srcohort.logs import get_logger, progress
from srcohort.parallel import fork_map
from srcohort.sr.profiles import default_profiles
from srcohort.study.load import load_study

log = get_logger(__name__)
FORMAT = "srcohort-training/1"
FOLDERS = ("ct", "seg", "ecg")
PATIENTS_TABLE = "tables/patients.parquet"


@dataclass(frozen=True)
class TrainingSettings:
    """What makes two exports comparable; part of the export's identity."""

    spacing: tuple[float, float, float] | None = (1.0, 1.0, 1.0)
    ecg_rate: float = 500.0
    ecg_seconds: float = 10.0
    split: SplitFractions = field(default_factory=SplitFractions)
    anchor: str = field(default_factory=lambda: str(load_study().anchor))
    label: LabelSpec = field(default_factory=lambda: LabelSpec.of_study(load_study()))

    def to_dict(self) -> dict[str, Any]:
        return {"spacing_mm": list(self.spacing) if self.spacing else None,
                "ecg_rate_hz": self.ecg_rate, "ecg_seconds": self.ecg_seconds,
                "ecg_leads": list(LEADS), "split": asdict(self.split), "anchor": self.anchor,
                "label": asdict(self.label)}


@dataclass
class TrainingExportResult:
    out: str
    patients: int
    resumed: int
    files: int
    bytes: int
    seconds: float
    label_balance: dict[str, int]
    splits: dict[str, int]
    problems: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_training(client: OpenSearch, cohort: Cohort, out_dir: Path, *, secret: bytes,
                    prefix: str = DEFAULT_PREFIX,
                    settings: TrainingSettings | None = None, workers: int | None = None,
                    on_patient: Callable[[str], None] | None = None,
                    locate: FileLocator = series_files) -> TrainingExportResult:
    """Export ``cohort`` from the index at ``prefix`` into ``out_dir`` (see the module doc).

    Patients are written by ``workers`` processes (default: every core); records, tables and
    the verification stay in this process. ``on_patient`` is called after each patient is
    recorded, in cohort order (progress hooks, tests that interrupt an export). ``locate``
    says where each series' files are (default: the paths in the series index). ``settings``
    default to the active study's (read at the call, not at import: a step chooses its study
    before it exports).
    """
    settings = settings or TrainingSettings()
    start = time.monotonic()
    series_index, _ = index_names(prefix)
    columns = feature_columns(default_profiles())
    patients = list(list_patients(client, cohort, prefix=prefix))
    state = ExportState(out_dir, {
        "format": FORMAT, "cohort_sha256": cohort.digest, "settings": settings.to_dict(),
        "secret": secret_digest(secret)})
    subjects: dict[str, Subject] = {}
    done: dict[str, dict[str, Any]] = {}
    jobs: list[_Job] = []
    samples = [choose_sample(patient, anchor=settings.anchor) for patient in patients]
    every_file = locate(client, series_index,                # one request for the cohort
                        {uid for sample in samples for uid in sample.series})
    for patient, sample in zip(patients, samples):
        alias = Deidentifier(secret, patient["site"]).pseudonym(patient["patient_id"])
        files = {uid: every_file[uid] for uid in sample.series}
        subjects[alias] = Subject(patient, [f for uid in sorted(files) for f in files[uid]])
        if (record := state.done(alias)) is not None:
            done[alias] = record
        else:
            jobs.append((out_dir, patient, alias, sample, files, columns, settings))
    records: list[dict[str, Any]] = list(done.values())
    with tracked(out_dir, export_format=FORMAT, cohort_sha256=cohort.digest) as tracker:
        with fork_map(_write_job, jobs, workers=workers) as results:
            for alias, record in progress(zip((job[2] for job in jobs), results),
                                          total=len(jobs), what="patients exported",
                                          logger=log):
                state.record(alias, record)
                records.append(record)
                if on_patient is not None:
                    on_patient(alias)
        resumed = len(done)
        state.forget_except({r["row"]["pseudonym"] for r in records}, FOLDERS)
        table = write_atomic(out_dir / PATIENTS_TABLE,
                             _patients_table(records, columns, settings.label.field))
        manifest = _manifest(cohort, settings, columns, records,
                             {"path": PATIENTS_TABLE, "kind": "table", **table})
        manifest_bytes = json_bytes(manifest)
        write_atomic(out_dir / "manifest.json", manifest_bytes)
        write_atomic(out_dir / "croissant.json", json_bytes(croissant_card(manifest, columns)))
        verify_export(out_dir, subjects)        # raises: the export stays incomplete
        tracker.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
        for problem in manifest["problems"]:
            tracker.leave_out(problem["pseudonym"], problem["modality"], problem["error"])
    result = TrainingExportResult(
        str(out_dir), len(records), resumed, len(manifest["files"]),
        sum(f["bytes"] for f in manifest["files"]), round(time.monotonic() - start, 3),
        manifest["counts"]["label"], manifest["counts"]["split"],
        [p for r in records for p in r["problems"]])
    log.info("training export complete", extra={k: v for k, v in result.to_dict().items()
                                                 if k != "problems"})
    return result


_Job = tuple[Path, dict, str, Sample, dict[str, list[str]], Sequence[Column], TrainingSettings]


def _write_job(job: _Job) -> dict[str, Any]:
    return _write_patient(*job)


def _write_patient(out_dir: Path, patient: dict, alias: str, sample: Sample,
                   files: dict[str, list[str]], columns: Sequence[Column],
                   settings: TrainingSettings) -> dict[str, Any]:
    """Write one patient's arrays; a modality that cannot be read is left out and noted, the
    rest of the patient (and of the cohort) is still exported."""
    written: list[dict[str, Any]] = []
    problems: list[dict[str, str]] = []
    row: dict[str, Any] = {"pseudonym": alias, "site": patient["site"],
                           "split": assign_split(alias, settings.split)}
    label = settings.label.of(patient)
    row.update({settings.label.field: label, "label": settings.label.as_int(label),
                "ct": None, "segments": None, "ecg": None, "ecg_derived_leads": None})

    def put(rel: str, data: bytes, kind: str) -> str:
        written.append({"path": rel, "kind": kind, **write_atomic(out_dir / rel, data)})
        return rel

    if sample.ct:
        try:
            # Read, resampled and compressed slice by slice: memory holds the compressed
            # output, never a whole volume (docs/performance.md).
            series = ct_series([Path(f) for f in files[sample.ct]])
            row["ct"] = put(f"ct/{alias}.nii.gz", series.nifti(settings.spacing), "ct")
            seg_paths = [Path(f) for uid in sample.segs for f in files[uid]]
            # The series' grid carries its frame of reference: the SEGs' is checked too.
            keys = []
            for key, data in seg_mask_niftis(seg_paths, series.grid, settings.spacing):
                put(f"seg/{alias}/{key.replace(':', '_')}.nii.gz", data, "seg")
                keys.append(key)
            row["segments"] = "|".join(keys) or None
        except VolumeError as error:
            problems.append(_problem(alias, "ct", error))
    if sample.ecg:
        try:
            ecg = ecg_array(Path(files[sample.ecg][0]), rate=settings.ecg_rate,
                            seconds=settings.ecg_seconds)
            row["ecg"] = put(f"ecg/{alias}.npy", _npy_bytes(ecg.signal), "ecg")
            row["ecg_derived_leads"] = "|".join(ecg.derived) or None
        except EcgArrayError as error:
            problems.append(_problem(alias, "ecg", error))
    row.update(patient_features(patient, columns, selected_series=sample.series,
                                anchor=settings.anchor))
    return {"row": row, "files": sorted(written, key=lambda f: f["path"]), "problems": problems}


def _problem(alias: str, kind: str, error: Exception) -> dict[str, str]:
    """What the export notes: the kind and error class only. The message names source files
    (paths carry UIDs), so it goes to the site's log, never into the export."""
    log.warning("modality left out", extra={"pseudonym": alias, "modality": kind,
                                            "error": str(error)})
    return {"pseudonym": alias, "modality": kind, "error": type(error).__name__}


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), version=(1, 0))
    return buffer.getvalue()


FIXED_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("pseudonym", pa.string()), ("site", pa.string()), ("split", pa.string()),
    ("label", pa.int8()), ("ct", pa.string()), ("segments", pa.string()), ("ecg", pa.string()),
    ("ecg_derived_leads", pa.string()))
_ARROW = {"string": pa.string(), "float64": pa.float64(), "Int32": pa.int32()}


def _schema(columns: Sequence[Column], label_field: str) -> pa.Schema:
    fixed = list(FIXED_COLUMNS)
    fixed.insert(3, (label_field, pa.string()))
    return pa.schema(fixed + [(c.name, _ARROW[c.dtype]) for c in columns])


def _patients_table(records: Sequence[dict], columns: Sequence[Column], label_field: str
                    ) -> bytes:
    """The patients table as Parquet bytes, rows sorted by pseudonym, schema from the profiles
    (identical at every site even where a column is empty)."""
    rows = sorted((r["row"] for r in records), key=lambda row: row["pseudonym"])
    table = pa.Table.from_pylist(rows, schema=_schema(columns, label_field))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _manifest(cohort: Cohort, settings: TrainingSettings, columns: Sequence[Column],
              records: Sequence[dict], table: dict[str, Any]) -> dict[str, Any]:
    rows = [r["row"] for r in records]
    label_field = settings.label.field
    counts = {
        "patients": len(rows),
        "with_ct": sum(r["ct"] is not None for r in rows),
        "with_ecg": sum(r["ecg"] is not None for r in rows),
        "with_seg": sum(r["segments"] is not None for r in rows),
        "label": {v: sum(r[label_field] == v for r in rows) for v in ("yes", "no", "unknown")},
        "split": {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")},
        "sites": sorted({r["site"] for r in rows}),
    }
    files = sorted([f for r in records for f in r["files"]] + [table], key=lambda f: f["path"])
    study = load_study()
    return {"format": FORMAT, "cohort": {"name": cohort.name, "sha256": cohort.digest},
            "study": {"name": study.name, "title": study.title},
            "settings": settings.to_dict(), "counts": counts,
            "columns": [{"name": c.name, "kind": c.kind, "dtype": c.dtype, "unit": c.unit,
                         "profile": c.profile, "path": list(c.path),
                         "description": c.description} for c in columns],
            "problems": [p for r in records for p in r["problems"]], "files": files}
