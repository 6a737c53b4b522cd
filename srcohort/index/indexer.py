"""Index a folder of DICOM files: series documents, then the patients they touch.

Re-running is idempotent (document ids derive from UIDs and patient keys) and the patient
roll-up is recomputed from the series index, so it reflects every series ever indexed for
the patient, not only this run's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pydicom
from opensearchpy import OpenSearch, helpers

from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.documents import patient_documents, series_document
from srcohort.index.opensearch import bulk_index, ensure_indices
from srcohort.logs import get_logger, progress
from srcohort.sources.images import read_header

log = get_logger(__name__)


@dataclass
class IndexStats:
    """What one indexing run wrote, and which files it could not read."""

    series: int = 0
    patients: int = 0
    errors: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def index_directory(client: OpenSearch, dicom_dir: Path, *, site: str, prefix: str = DEFAULT_PREFIX
                    ) -> IndexStats:
    """Index every DICOM file below ``dicom_dir`` as belonging to ``site``."""
    series_index, patients_index = ensure_indices(client, prefix)
    stats = IndexStats()
    grouped: dict[str, list] = defaultdict(list)
    files = sorted(p for p in dicom_dir.rglob("*") if p.is_file())
    for path in progress(files, total=len(files), what="files read", logger=log):
        try:
            ds = read_header(path)
            if ds.Modality == "SR":
                ds = pydicom.dcmread(path)   # the content tree sits after no pixel data
        except ValueError as exc:
            stats.errors.append({"file": str(path), "reason": str(exc)})
            log.warning("not indexed", extra={"file": str(path), "reason": str(exc)})
            continue
        grouped[ds.SeriesInstanceUID].append((str(path.resolve()), ds))
    docs = {uid: series_document(site, [ds for _, ds in items], [p for p, _ in items])
            for uid, items in grouped.items()}
    stats.series = bulk_index(client, series_index, docs.items())
    client.indices.refresh(index=series_index)
    stats.patients = rollup_patients(client, prefix, {d["patient_key"] for d in docs.values()})
    log.info("indexed", extra={"site": site, "series": stats.series, "patients": stats.patients,
                               "errors": len(stats.errors)})
    return stats


def rollup_patients(client: OpenSearch, prefix: str, keys: set[str]) -> int:
    """Rebuild the patient documents of ``keys`` from everything in the series index."""
    series_index, patients_index = ensure_indices(client, prefix)
    written = 0
    ordered = sorted(keys)
    for start in range(0, len(ordered), 1000):
        chunk = ordered[start:start + 1000]
        series = (hit["_source"] for hit in helpers.scan(
            client, index=series_index, query={"query": {"terms": {"patient_key": chunk}}},
            _source_excludes=["files"]))
        written += bulk_index(client, patients_index, patient_documents(series).items())
    client.indices.refresh(index=patients_index)
    return written
