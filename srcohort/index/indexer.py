"""Index a folder of DICOM files: series documents, then the patients they touch.

Indexing a folder makes the index agree with it: new and changed series are (re)written,
series whose files have all left the folder are deleted, and the touched patients are rolled
up again from the series index. Document ids derive from UIDs and patient keys, so a rerun,
also after a run that died half-way (OpenSearch down, process killed), ends with exactly the
documents a clean run writes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pydicom
from opensearchpy import OpenSearch, helpers

from srcohort.index.documents import patient_doc_id, patient_documents, series_document
from srcohort.index.mapping import DEFAULT_PREFIX, patients_index_body, series_index_body
from srcohort.index.opensearch import bulk_index, ensure_indices, make_room
from srcohort.index.retrieve import locate_in_pacs
from srcohort.logs import get_logger, progress
from srcohort.sources.images import read_header

log = get_logger(__name__)
SERIES_PROPERTIES = series_index_body()["mappings"]["properties"]
PATIENT_PROPERTIES = patients_index_body()["mappings"]["properties"]


@dataclass
class IndexStats:
    """What one indexing run wrote, and which files it could not read."""

    series: int = 0
    deleted: int = 0
    patients: int = 0
    errors: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def index_directory(client: OpenSearch, dicom_dir: Path, *, site: str, prefix: str = DEFAULT_PREFIX,
                    pacs: str | None = None) -> IndexStats:
    """Index every DICOM file below ``dicom_dir`` as belonging to ``site``.

    ``pacs``: the files are a transient copy of series kept in the PACS at this DICOMweb URL;
    documents then record that address instead of the paths (srcohort.index.retrieve), and
    series missing from this copy are not taken as deleted.
    """
    series_index, patients_index = ensure_indices(client, prefix)
    stats = IndexStats()
    grouped: dict[str, list] = defaultdict(list)
    taken: dict[tuple[str, str], str] = {}
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
        instance = (str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        if instance in taken:     # one instance, two files: counted once, never twice
            reason = f"duplicate of SOP Instance UID {instance[1]} in {taken[instance]}"
            stats.errors.append({"file": str(path), "reason": reason})
            log.warning("not indexed", extra={"file": str(path), "reason": reason})
            continue
        taken[instance] = str(path)
        grouped[ds.SeriesInstanceUID].append((str(path.resolve()), ds))
    docs = {uid: series_document(site, [ds for _, ds in items], [p for p, _ in items])
            for uid, items in grouped.items()}
    if pacs is not None:
        locate_in_pacs(docs, pacs)
    make_room(client, series_index, docs.values(), SERIES_PROPERTIES)
    stats.series = bulk_index(client, series_index, docs.items())
    gone = {} if pacs is not None else _vanished_series(client, series_index, site,
                                                        dicom_dir.resolve(), set(docs))
    for uid in gone:
        client.delete(index=series_index, id=uid)
    stats.deleted = len(gone)
    client.indices.refresh(index=series_index)
    touched = {d["patient_key"] for d in docs.values()} | set(gone.values())
    stats.patients = rollup_patients(client, prefix, touched)
    log.info("indexed", extra={"site": site, "series": stats.series, "deleted": stats.deleted,
                               "patients": stats.patients, "errors": len(stats.errors)})
    return stats


def _vanished_series(client: OpenSearch, series_index: str, site: str, root: Path,
                     present: set[str]) -> dict[str, str]:
    """Series of ``site`` indexed from below ``root`` whose files are all gone: uid -> patient.

    Series indexed from other folders (another export of the same site) are left alone.
    """
    gone: dict[str, str] = {}
    for hit in helpers.scan(client, index=series_index, _source_includes=["files", "patient_key"],
                            query={"query": {"term": {"site": site}}}):
        uid, files = hit["_id"], hit["_source"].get("files", [])
        below = [f for f in files if Path(f).is_relative_to(root)]
        if uid not in present and below and not any(Path(f).exists() for f in below):
            gone[uid] = hit["_source"]["patient_key"]
    return gone


def rollup_patients(client: OpenSearch, prefix: str, keys: set[str]) -> int:
    """Rebuild the patient documents of ``keys`` from everything in the series index; a
    patient none of whose series is left loses its document."""
    series_index, patients_index = ensure_indices(client, prefix)
    written = 0
    ordered = sorted(keys)
    for start in range(0, len(ordered), 1000):
        chunk = ordered[start:start + 1000]
        series = (hit["_source"] for hit in helpers.scan(
            client, index=series_index, query={"query": {"terms": {"patient_key": chunk}}},
            _source_excludes=["files"]))
        docs = patient_documents(series)
        make_room(client, patients_index, docs.values(), PATIENT_PROPERTIES)
        written += bulk_index(client, patients_index, docs.items())
        for orphan in {patient_doc_id(key) for key in chunk} - docs.keys():
            client.delete(index=patients_index, id=orphan, ignore=[404])
    client.indices.refresh(index=patients_index)
    return written
