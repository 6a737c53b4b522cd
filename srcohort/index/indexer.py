"""Index a folder of DICOM files: series documents, then the patients they touch.

Indexing a folder makes the index agree with it: new and changed series are (re)written,
series whose files have all left the folder are deleted, and the touched patients are rolled
up again from the series index. Document ids derive from UIDs and patient keys, so a rerun,
also after a run that died half-way, ends with exactly the documents a clean run writes.

A series document needs one instance's full header, every SR's content and every SEG's
segments; of the other slices of a CT only that they exist. So every file is read only as far
as its Series and SOP Instance UIDs (``identify``: the first kilobytes), on every core, and
then one full header per series (all of them for SR and SEG). A second file of an instance
already seen is reported, not counted twice. Memory holds one path and two UIDs per file and
one document per series.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pydicom
from opensearchpy import OpenSearch, helpers
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from srcohort.index.documents import (Document, patient_doc_id, patient_documents,
                                      series_document)
from srcohort.index.identify import header_until, instance_of
from srcohort.index.mapping import DEFAULT_PREFIX, patients_index_body, series_index_body
from srcohort.index.opensearch import bulk_index, ensure_indices, make_room
from srcohort.index.retrieve import locate_in_pacs
from srcohort.logs import get_logger, progress
from srcohort.parallel import fork_map

log = get_logger(__name__)
SERIES_PROPERTIES = series_index_body()["mappings"]["properties"]
PATIENT_PROPERTIES = patients_index_body()["mappings"]["properties"]
READ_CHUNK = 64                                 # files per task: amortises the hand-over
PER_INSTANCE = {"SR", "SEG"}                    # modalities whose every instance is read
# A header is read up to the shared functional groups: a SEG's segments and references, not
# the groups of each of its frames; everything of an image's but its pixels.
BEFORE_FRAME_GROUPS = Tag(0x5200, 0x9228)


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
                    workers: int | None = None, pacs: str | None = None) -> IndexStats:
    """Index every DICOM file below ``dicom_dir`` as belonging to ``site``, reading files on
    ``workers`` processes (default: the CPUs this process may use).

    ``pacs``: the files are a transient copy of series kept in the PACS at this DICOMweb URL;
    documents then record that address instead of the paths (srcohort.index.retrieve), and
    series missing from this copy are not taken as deleted.
    """
    series_index, patients_index = ensure_indices(client, prefix)
    stats = IndexStats()
    grouped: dict[str, list[str]] = defaultdict(list)
    taken: dict[tuple[str, str], str] = {}
    root = dicom_dir.resolve()          # once: resolving each of 100,000 paths takes seconds
    files = sorted(p for p in root.rglob("*") if p.is_file())
    with fork_map(instance_of, files, workers=workers, chunksize=READ_CHUNK) as results:
        for path, result in progress(zip(files, results), total=len(files), what="files read",
                                     logger=log):
            if isinstance(result, ValueError):
                _not_indexed(stats, str(path), result)
            elif result in taken:     # one instance, two files: counted once, never twice
                _not_indexed(stats, str(path), ValueError(
                    f"duplicate of SOP Instance UID {result[1]} in {taken[result]}"))
            else:
                taken[result] = str(path)
                grouped[result[0]].append(str(path))
    del taken
    uids = sorted(grouped)
    docs: dict[str, Document] = {}
    with fork_map(_series_document, [(site, grouped[uid]) for uid in uids],
                  workers=workers) as built:
        for uid, (doc, errors) in progress(zip(uids, built), total=len(uids),
                                           what="series documents", logger=log):
            for path, error in errors:
                _not_indexed(stats, path, error)
            if doc is not None:
                docs[uid] = doc
    if pacs is not None:
        locate_in_pacs(docs, pacs)
    make_room(client, series_index, docs.values(), SERIES_PROPERTIES)
    stats.series = bulk_index(client, series_index, docs.items())
    gone = {} if pacs is not None else _vanished_series(client, series_index, site, root,
                                                        set(docs))
    for uid in gone:
        client.delete(index=series_index, id=uid)
    stats.deleted = len(gone)
    client.indices.refresh(index=series_index)
    touched = {d["patient_key"] for d in docs.values()} | set(gone.values())
    stats.patients = rollup_patients(client, prefix, touched)
    log.info("indexed", extra={"site": site, "series": stats.series, "deleted": stats.deleted,
                               "patients": stats.patients, "errors": len(stats.errors)})
    return stats


def _series_document(job: tuple[str, list[str]]
                     ) -> tuple[Document | None, list[tuple[str, ValueError]]]:
    """The document of one series from its files (in path order), and the files that could not
    be read in full. The first readable file stands for an image series; SR and SEG instances
    are each read (SRs with their content tree, which follows no pixel data)."""
    site, files = job
    errors: list[tuple[str, ValueError]] = []
    instances: list[Dataset] = []
    kept: list[str] = []
    for path in files:
        if instances and instances[0].Modality not in PER_INSTANCE:
            kept.append(path)
            continue
        try:
            ds = header_until(Path(path), BEFORE_FRAME_GROUPS)
            if ds.Modality == "SR":         # the content tree: everything
                ds = pydicom.dcmread(path)
        except (ValueError, OSError) as exc:
            errors.append((path, exc if isinstance(exc, ValueError) else ValueError(str(exc))))
            continue
        instances.append(ds)
        kept.append(path)
    if not instances:
        return None, errors
    return series_document(site, instances, kept), errors


def _not_indexed(stats: IndexStats, path: str, error: ValueError) -> None:
    stats.errors.append({"file": path, "reason": str(error)})
    log.warning("not indexed", extra={"file": path, "reason": str(error)})


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
