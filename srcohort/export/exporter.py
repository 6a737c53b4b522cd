"""Export a cohort: de-identified DICOM per pseudonymised patient, manifests in CSV/Parquet/JSON.

Layout (identical at every site)::

    <out>/data/<pseudonym>/<modality>-<k>/<n>.dcm
    <out>/manifest/patients.{csv,parquet}   one row per patient: pseudonym, site, coded features
    <out>/manifest/files.{csv,parquet}      one row per file: pseudonym, modality, path, sha256
    <out>/manifest/export.json              cohort, counts, the files' checksums
    <out>/status.json                       running, failed (why) or complete (what was left out)
    <out>/COMPLETE                          written last, after the PHI verification

No original identifier leaves through the manifests: patients appear only as pseudonyms.
"""

from __future__ import annotations

import errno
import hashlib
import io
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError
from opensearchpy import OpenSearch

from srcohort.cohort.definition import Cohort
from srcohort.cohort.run import list_patients
from srcohort.export.deidentify import Deidentifier
from srcohort.export.features import feature_columns, patient_features
from srcohort.export.pseudonym import pseudonym
from srcohort.export.selection import FileLocator, patient_series, series_files
from srcohort.export.state import ExportState, json_bytes, secret_digest, write_atomic
from srcohort.export.status import tracked
from srcohort.export.verify import Subject, verify_export
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.opensearch import index_names
from srcohort.logs import get_logger, progress
from srcohort.parallel import fork_map
from srcohort.sr.profiles import default_profiles
from srcohort.study.load import load_study

log = get_logger(__name__)
FORMAT = "srcohort-dicom/1"


@dataclass
class ExportResult:
    patients: int
    files: int
    manifest_path: str

    def to_dict(self) -> dict:
        return asdict(self)


def export_cohort(client: OpenSearch, cohort: Cohort, out_dir: Path, *, prefix: str = DEFAULT_PREFIX,
                  secret: bytes, locate: FileLocator = series_files) -> ExportResult:
    """Write the cohort's de-identified files and manifests under ``out_dir``; its
    ``status.json`` says running, failed or complete (``status.tracked``). ``locate`` says
    where each series' files are (default: the paths in the series index)."""
    series_index, _ = index_names(prefix)
    ExportState(out_dir, {"format": FORMAT, "cohort_sha256": cohort.digest,
                          "secret": secret_digest(secret)})
    with tracked(out_dir, export_format=FORMAT, cohort_sha256=cohort.digest) as tracker:
        for folder in ("data", "manifest"):      # rewritten whole: no patient of a past run
            shutil.rmtree(out_dir / folder, ignore_errors=True)
        patients = list(list_patients(client, cohort, prefix=prefix))
        columns = feature_columns(default_profiles())
        anchor = str(load_study().anchor)     # manifest dates become days from this event
        patient_rows: list[dict] = []
        file_rows: list[dict] = []
        jobs: list[tuple[str, Path, Deidentifier]] = []
        subjects: dict[str, Subject] = {}
        for patient in patients:
            alias = pseudonym(secret, patient["site"], patient["patient_id"])
            patient_rows.append({"pseudonym": alias, "site": patient["site"],
                                 "modalities": ",".join(patient["modalities"]),
                                 **patient_features(patient, columns, selected_series=set(),
                                                    anchor=anchor)})
            series_docs = patient_series(client, series_index, patient["patient_key"])
            files = locate(client, series_index,
                           [doc["series_instance_uid"] for doc in series_docs])
            subjects[alias] = Subject(patient, [f for doc in series_docs
                                                for f in files[doc["series_instance_uid"]]])
            counters: dict[str, int] = {}
            for doc in series_docs:
                counters[doc["modality"]] = counters.get(doc["modality"], 0) + 1
                folder = Path("data") / alias / f"{doc['modality']}-{counters[doc['modality']]}"
                for n, source in enumerate(files[doc["series_instance_uid"]], start=1):
                    rel = folder / f"{n:04d}.dcm"
                    jobs.append((source, out_dir / rel, Deidentifier(secret, patient["site"])))
                    file_rows.append({"pseudonym": alias, "modality": doc["modality"],
                                      "path": str(rel)})
        with fork_map(_write, jobs, chunksize=8) as digests:
            for row, digest in progress(zip(file_rows, digests), total=len(jobs),
                                        what="files exported", logger=log):
                row["sha256"] = digest
        for row in file_rows:
            if row["sha256"] is None:
                tracker.leave_out(row["pseudonym"], f"{row['modality']} file", "unreadable")
        file_rows = [row for row in file_rows if row["sha256"] is not None]
        manifest = out_dir / "manifest"
        for name, rows in (("patients", patient_rows), ("files", file_rows)):
            frame = pd.DataFrame(rows)
            write_atomic(manifest / f"{name}.csv", frame.to_csv(index=False).encode("utf-8"))
            write_atomic(manifest / f"{name}.parquet", frame.to_parquet(index=False))
        summary = {"cohort": cohort.source, "patients": len(patient_rows),
                   "files": len(file_rows), "per_site": _per_site(patient_rows),
                   "checksums": {r["path"]: r["sha256"] for r in file_rows}}
        summary_bytes = json_bytes(summary)
        write_atomic(manifest / "export.json", summary_bytes)
        verify_export(out_dir, subjects)
        tracker.manifest_sha256 = hashlib.sha256(summary_bytes).hexdigest()
    log.info("exported", extra={"cohort": cohort.name, "patients": len(patient_rows),
                                "files": len(file_rows)})
    return ExportResult(len(patient_rows), len(file_rows), str(manifest / "export.json"))


def _write(job: tuple[str, Path, Deidentifier]) -> str | None:
    """De-identify one file; write it atomically and return its sha256 (hashed in memory), or
    None when the source cannot be read or de-identified (the file is left out and noted)."""
    source, target, deidentifier = job
    buffer = io.BytesIO()
    try:
        deidentifier.dataset(pydicom.dcmread(source)).save_as(buffer, enforce_file_format=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise
        log.warning("file left out", extra={"source": source, "error": str(exc)})
        return None
    return write_atomic(target, buffer.getvalue())["sha256"]


def _per_site(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["site"]] = counts.get(row["site"], 0) + 1
    return dict(sorted(counts.items()))
