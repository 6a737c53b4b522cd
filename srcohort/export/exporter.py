"""Export a cohort: de-identified DICOM per pseudonymised patient, manifests in CSV/Parquet/JSON.

Layout (identical at every site)::

    <out>/data/<pseudonym>/<modality>-<k>/<n>.dcm
    <out>/manifest/patients.{csv,parquet}   one row per patient: pseudonym, site, coded features
    <out>/manifest/files.{csv,parquet}      one row per file: pseudonym, modality, path, sha256
    <out>/manifest/export.json              cohort, counts, the files' checksums

No original identifier leaves through the manifests: patients appear only as pseudonyms.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pydicom
from opensearchpy import OpenSearch

from srcohort.cohort.definition import Cohort
from srcohort.cohort.run import list_patients
from srcohort.export.deidentify import Deidentifier
from srcohort.export.features import feature_columns, patient_features
from srcohort.export.pseudonym import pseudonym
from srcohort.export.selection import FileLocator, patient_series, series_files
from srcohort.export.state import write_atomic
from srcohort.export.verify import Subject, verify_export
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.opensearch import index_names
from srcohort.logs import get_logger, progress
from srcohort.parallel import fork_map
from srcohort.sr.profiles import default_profiles

log = get_logger(__name__)
ANCHOR = "tavi"        # dates in the patients manifest become days from this event


@dataclass
class ExportResult:
    patients: int
    files: int
    manifest_path: str

    def to_dict(self) -> dict:
        return asdict(self)


def export_cohort(client: OpenSearch, cohort: Cohort, out_dir: Path, *, prefix: str = DEFAULT_PREFIX,
                  secret: bytes, locate: FileLocator = series_files) -> ExportResult:
    """Write the cohort's de-identified files and manifests under ``out_dir``; ``locate``
    says where each series' files are (default: the paths in the series index)."""
    series_index, _ = index_names(prefix)
    patients = list(list_patients(client, cohort, prefix=prefix))
    columns = feature_columns(default_profiles())
    patient_rows: list[dict] = []
    file_rows: list[dict] = []
    jobs: list[tuple[str, Path, Deidentifier]] = []
    subjects: dict[str, Subject] = {}
    for patient in patients:
        alias = pseudonym(secret, patient["site"], patient["patient_id"])
        patient_rows.append({"pseudonym": alias, "site": patient["site"],
                             "modalities": ",".join(patient["modalities"]),
                             **patient_features(patient, columns, selected_series=set(),
                                                anchor=ANCHOR)})
        series_docs = patient_series(client, series_index, patient["patient_key"])
        files = locate(client, series_index, [doc["series_instance_uid"] for doc in series_docs])
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
    manifest = out_dir / "manifest"
    manifest.mkdir(parents=True, exist_ok=True)
    for name, rows in (("patients", patient_rows), ("files", file_rows)):
        frame = pd.DataFrame(rows)
        frame.to_csv(manifest / f"{name}.csv", index=False)
        frame.to_parquet(manifest / f"{name}.parquet", index=False)
    summary = {"cohort": cohort.source, "patients": len(patient_rows), "files": len(file_rows),
               "per_site": _per_site(patient_rows), "checksums": {r["path"]: r["sha256"]
                                                                 for r in file_rows}}
    (manifest / "export.json").write_text(json.dumps(summary, indent=1, sort_keys=True), "utf-8")
    verify_export(out_dir, subjects)
    log.info("exported", extra={"cohort": cohort.name, "patients": len(patient_rows),
                                "files": len(file_rows)})
    return ExportResult(len(patient_rows), len(file_rows), str(manifest / "export.json"))


def _write(job: tuple[str, Path, Deidentifier]) -> str:
    """De-identify one file; write it atomically and return its sha256 (hashed in memory)."""
    source, target, deidentifier = job
    buffer = io.BytesIO()
    deidentifier.dataset(pydicom.dcmread(source)).save_as(buffer, enforce_file_format=True)
    return write_atomic(target, buffer.getvalue())["sha256"]


def _per_site(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["site"]] = counts.get(row["site"], 0) + 1
    return dict(sorted(counts.items()))
