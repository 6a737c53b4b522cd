"""Index the public IDC catalogue (~1.04M series) at archive scale and count cohorts vs DuckDB.

Data: ``idc_index.parquet`` from the pinned idc-index-data package, the metadata of every public
series of the NCI Imaging Data Commons (~86k patients in 179 collections; CT, MR, SR, SEG, ...).
Each row becomes a series document in srcohort's format (Kaapana-style DICOM fields plus
srcohort's own, the collection as ``site``). IDC lists SR and SEG series but not their content,
so each SR series gets one generated TID 1500 measurement annotation (finding, finding site,
diameter, sometimes volume) and each SEG series one segmentation annotation with one or more
segments (anatomy such as left/right ventricle, or lesions); deterministic by ``--seed``.
Patient documents are rolled up with srcohort's own ``patient_documents``.

Prints bulk throughput (series and patient documents; on the same first documents also the
bulk writer srcohort had before, the baseline), index size, and p50/p95 latency of a fixed set
of cohort counts next to the same counts computed by DuckDB over the parquet files (the baseline);
the counts must be equal, per site, or the run fails. Starts its own OpenSearch (temp data dir,
``--heap-mb``) unless ``--url`` names one; stops it at the end. Not part of the test run
(tests/test_index_scale_smoke.py runs 5,000 series):

    .venv/bin/python benchmarks/index_scale.py                  # all 1.04M series: minutes
    .venv/bin/python benchmarks/index_scale.py --limit 100000
"""

from __future__ import annotations

import argparse
import itertools
import resource
import shutil
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import duckdb
import idc_index_data
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from opensearchpy import OpenSearch, helpers
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.sr.coding import Code

from srcohort.cohort.definition import load_cohort
from srcohort.cohort.run import count_patients
from srcohort.index.connection import connect
from srcohort.index.documents import Document, patient_documents
from srcohort.index.fields import field_name
from srcohort.index.mapping import series_index_body
from srcohort.index.opensearch import bulk_index, ensure_indices, index_names
from srcohort.logs import configure, get_logger, progress
from srcohort.seg.enum import Structure
from srcohort.server import LocalOpenSearch

log = get_logger("benchmarks.index_scale")

PARQUET = Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)
PREFIX = "scale-"
# Parquet columns that are DICOM attributes, indexed under Kaapana's names for them.
DICOM_COLUMNS = ("PatientID", "PatientAge", "PatientSex", "StudyInstanceUID", "StudyDate",
                 "StudyDescription", "SeriesInstanceUID", "SeriesDate", "SeriesDescription",
                 "SeriesNumber", "Modality", "BodyPartExamined", "SOPClassUID", "Manufacturer",
                 "ManufacturerModelName", "PhotometricInterpretation", "PixelRepresentation")
COLUMNS = ("collection_id", *DICOM_COLUMNS, "instanceCount", "series_aws_url")
PATIENTS_PER_ROLLUP = 2000

SR_TITLE = "DCM:126000"
FINDING, FINDING_SITE, DIAMETER, VOLUME = ("DCM:121071", "SCT:363698007", "SCT:81827009",
                                           "SCT:118565006")
NODULE = "SCT:27925004"
MEANINGS = {
    SR_TITLE: "Imaging Measurement Report", FINDING: "Finding", FINDING_SITE: "Finding Site",
    DIAMETER: "Diameter", VOLUME: "Volume", NODULE: "Nodule", "SCT:4147007": "Mass",
    "SCT:108369006": "Neoplasm", "SCT:39607008": "Lung", "SCT:10200004": "Liver",
    "SCT:64033007": "Kidney", "SCT:80891009": "Heart",
}
SR_FINDINGS = {NODULE: 0.5, "SCT:4147007": 0.2, "SCT:108369006": 0.3}
SR_SITES = {"SCT:39607008": 0.6, "SCT:10200004": 0.15, "SCT:64033007": 0.1,
            "SCT:80891009": 0.15}
# Probability that a SEG series has a segment of this structure (srcohort's own vocabulary).
SEGMENTS = {Structure.LEFT_VENTRICLE: 0.3, Structure.RIGHT_VENTRICLE: 0.25,
            Structure.LEFT_ATRIUM: 0.15, Structure.RIGHT_ATRIUM: 0.15,
            Structure.LEFT_VENTRICULAR_OUTFLOW_TRACT: 0.1, Structure.AORTIC_VALVE: 0.2,
            Structure.AORTIC_ROOT: 0.1, Structure.ASCENDING_AORTA: 0.15,
            Structure.MEMBRANOUS_SEPTUM: 0.05, Structure.CALCIFICATION: 0.25}


def _key(code: Code) -> str:
    """``SCHEME:VALUE``, the form codes take in the index and in cohort definitions."""
    return f"{code.scheme_designator}:{code.value}"


LABELS = {_key(s.property_type): s.label for s in Structure}


# --- the catalogue and its generated annotation content -------------------------------------

def catalogue(limit: int | None, seed: int) -> tuple[pa.Table, pa.Table]:
    """IDC's series sorted by patient, and their generated annotation items.

    With ``limit``, whole patients are sampled until ``limit`` series are reached, so every
    patient document is complete. Content is drawn for the full catalogue before sampling, so
    a patient's annotations do not depend on ``limit``.
    """
    table = pq.read_table(PARQUET, columns=list(COLUMNS))
    table = table.cast(pa.schema([(f.name, pa.string() if f.type == pa.large_string() else f.type)
                                  for f in table.schema]))      # Arrow's kernels want string
    table = table.sort_by([("collection_id", "ascending"), ("PatientID", "ascending"),
                           ("SeriesInstanceUID", "ascending")])
    rng = np.random.default_rng(seed)
    items = annotation_items(table, rng)
    if limit is not None and limit < len(table):
        keep = _sample_patients(table, limit, rng)
        new_row = np.cumsum(keep) - 1
        table = table.filter(pa.array(keep))
        rows = items["row"].to_numpy()
        items = items.filter(pa.array(keep[rows]))
        items = items.set_column(0, "row", pa.array(new_row[rows[keep[rows]]]))
    return table, items.append_column(
        "series_instance_uid", table["SeriesInstanceUID"].take(items["row"]))


def patient_keys(table: pa.Table) -> pa.ChunkedArray:
    """``site/PatientID`` per series row, as ``srcohort.index.documents.patient_key`` forms it."""
    return pc.binary_join_element_wise(table["collection_id"], table["PatientID"], "/")


def _sample_patients(table: pa.Table, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Row mask of randomly ordered whole patients whose series add up to about ``limit``."""
    patient_of_row = patient_keys(table).combine_chunks().dictionary_encode().indices.to_numpy()
    order = rng.permutation(patient_of_row.max() + 1)
    sizes = np.bincount(patient_of_row)
    chosen = order[:np.searchsorted(np.cumsum(sizes[order]), limit) + 1]
    return np.isin(patient_of_row, chosen)


def annotation_items(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """One row per CODE/NUM item of the generated SRs and per segment of the generated SEGs,
    in series order.

    The same table feeds the OpenSearch documents and the DuckDB baseline, so both answer over
    identical content.
    """
    modality = table["Modality"]
    sr = np.flatnonzero(pc.equal(modality, "SR").to_numpy(zero_copy_only=False))
    seg = np.flatnonzero(pc.equal(modality, "SEG").to_numpy(zero_copy_only=False))
    finding = rng.choice(list(SR_FINDINGS), size=len(sr), p=list(SR_FINDINGS.values()))
    site = rng.choice(list(SR_SITES), size=len(sr), p=list(SR_SITES.values()))
    diameter = np.round(rng.lognormal(np.log(8.0), 0.6, size=len(sr)), 1)
    with_volume = rng.random(len(sr)) < 0.5
    volume = np.round(np.pi / 6 * diameter ** 3, 1)
    present = rng.random((len(seg), len(SEGMENTS))) < list(SEGMENTS.values())
    empty = np.flatnonzero(~present.any(axis=1))
    present[empty, rng.integers(0, len(SEGMENTS), len(empty))] = True
    seg_index, structure = np.nonzero(present)
    per_seg = np.bincount(seg_index, minlength=len(seg))
    number = np.arange(len(seg_index)) - np.repeat(np.cumsum(per_seg) - per_seg, per_seg) + 1
    categories = np.array([_key(s.category) for s in SEGMENTS])
    types = np.array([_key(s.property_type) for s in SEGMENTS])
    parts = [  # (rows, kind, item, name, value, number, unit, group, finding)
        (sr, "SR", "code", FINDING, finding, None, None, "1", finding),
        (sr, "SR", "code", FINDING_SITE, site, None, None, "1", finding),
        (sr, "SR", "number", DIAMETER, None, diameter, "mm", "1", finding),
        (sr[with_volume], "SR", "number", VOLUME, None, volume[with_volume], "mm3", "1",
         finding[with_volume]),
        (seg[seg_index], "SEG", "segment", categories[structure], types[structure], None, None,
         number.astype(str), None),
    ]
    names = ("kind", "item", "name", "value", "number", "unit", "group", "finding")
    rows = np.concatenate([part[0] for part in parts])
    order = np.argsort(rows, kind="stable")           # series order, items in part order
    columns = {"row": pa.array(rows[order])}
    for i, name in enumerate(names, start=1):
        values = np.concatenate([np.broadcast_to(np.asarray(part[i], dtype=object),
                                                 part[0].shape) for part in parts])
        columns[name] = pa.array(values[order],
                                 type=pa.float64() if name == "number" else pa.string())
    return pa.table(columns)


# --- documents -------------------------------------------------------------------------------

def _kaapana_names() -> dict[str, str]:
    """Parquet column -> Kaapana field name, by the same rule as files indexed from DICOM."""
    names = {}
    for keyword in DICOM_COLUMNS:
        tag = tag_for_keyword(keyword)
        names[keyword] = field_name(DataElement(tag, dictionary_VR(tag), None))
    return names


def _document_columns(table: pa.Table) -> pa.Table:
    """The series table with every document field as a column, computed by Arrow: what is
    left per row is dropping missing values and attaching the annotations."""
    dicom = {}
    for column in DICOM_COLUMNS:
        values = table[column]
        if column == "SeriesNumber":
            values = pc.cast(values, pa.int64())
        elif column == "PixelRepresentation":            # "0,1": differs between instances
            values = pc.cast(pc.split_pattern(values, ","), pa.list_(pa.int64()))
        dicom[column] = values
    names = _kaapana_names()
    own = {
        "site": table["collection_id"], "patient_id": table["PatientID"],
        "patient_key": patient_keys(table),
        "series_instance_uid": table["SeriesInstanceUID"],
        "study_instance_uid": table["StudyInstanceUID"], "modality": table["Modality"],
        "study_date": table["StudyDate"],
        "series_description": pc.fill_null(table["SeriesDescription"], ""),
        "instances": table["instanceCount"],
        "files": pa.ListArray.from_arrays(np.arange(len(table) + 1, dtype=np.int32),
                                          pc.fill_null(table["series_aws_url"], "")
                                          .combine_chunks()),
    }
    return pa.table({**{names[c]: v for c, v in dicom.items()}, **own})


def series_documents(table: pa.Table, items: pa.Table) -> Iterator[tuple[str, Document]]:
    """``(SeriesInstanceUID, document)`` in table order, with the generated annotations."""
    pixel = _kaapana_names()["PixelRepresentation"]
    annotations = _annotations(items)
    upcoming = next(annotations, None)
    row_number = 0
    for batch in _document_columns(table).to_batches(max_chunksize=10_000):
        names = batch.schema.names
        for values in zip(*(column.to_pylist() for column in batch.columns)):
            doc = {name: v for name, v in zip(names, values) if v is not None}
            if pixel in doc and len(doc[pixel]) == 1:
                doc[pixel] = doc[pixel][0]
            doc["annotations"] = []
            while upcoming is not None and upcoming[0] == row_number:
                doc["annotations"].append(upcoming[1])
                upcoming = next(annotations, None)
            row_number += 1
            yield doc["series_instance_uid"], doc


def _annotations(items: pa.Table) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row, annotation)`` shaped as ``srcohort.index.content.sr_annotation`` (SR) and
    ``srcohort.index.seg_content.seg_annotation`` (SEG) write them."""
    def rows() -> Iterator[dict[str, Any]]:
        for batch in items.to_batches(max_chunksize=50_000):
            yield from batch.to_pylist()

    for row, group in itertools.groupby(rows(), key=lambda item: item["row"]):
        members = list(group)
        kind, uid = members[0]["kind"], members[0]["series_instance_uid"]
        annotation: dict[str, Any] = {
            "kind": kind, "sop_instance_uid": f"{uid}.1", "series_instance_uid": uid,
            "template": "", "title": "", "title_meaning": "", "codes": [], "numbers": [],
            "points": [], "texts": [], "dates": [], "referenced_series": []}
        if kind == "SEG":
            annotation["segments"] = [
                {"number": int(item["group"]), "label": LABELS[item["value"]],
                 "category": item["name"], "type": item["value"], "algorithm_type": "AUTOMATIC"}
                for item in members]
            yield row, annotation
            continue
        annotation.update(template="1500", title=SR_TITLE, title_meaning=MEANINGS[SR_TITLE])
        for item in members:
            base = {"name": item["name"], "name_meaning": MEANINGS[item["name"]],
                    "group": item["group"], "finding": item["finding"]}
            if item["item"] == "code":
                annotation["codes"].append({**base, "value": item["value"],
                                            "value_meaning": MEANINGS[item["value"]]})
            else:
                annotation["numbers"].append({**base, "value": item["number"],
                                              "unit": item["unit"]})
        yield row, annotation


def patient_stream(series: Iterable[tuple[str, Document]]) -> Iterator[tuple[str, Document]]:
    """Patient roll-ups of series sorted by patient, ``PATIENTS_PER_ROLLUP`` patients at a time
    (srcohort's ``patient_documents``, fed in slices so the catalogue never sits in memory)."""
    batch: list[Document] = []
    patients = 0
    for _, group in itertools.groupby((doc for _, doc in series),
                                      key=lambda doc: doc["patient_key"]):
        batch.extend(group)
        patients += 1
        if patients == PATIENTS_PER_ROLLUP:
            yield from patient_documents(batch).items()
            batch, patients = [], 0
    if batch:
        yield from patient_documents(batch).items()


# --- cohort counts: OpenSearch and DuckDB ----------------------------------------------------

Counts = dict[str, int]


@dataclass(frozen=True)
class CohortQuery:
    """One cohort, as a definition of srcohort's cohort language and as DuckDB SQL over the
    parquet files (``sql`` yields site, count)."""

    name: str
    patients: dict[str, Any]
    sql: str


def _patients_having(condition: str) -> str:
    return ("SELECT site, count(*) FROM (SELECT collection_id AS site, PatientID FROM series "
            f"GROUP BY ALL HAVING {condition}) GROUP BY site")


def _annotated_patients(kind: str, condition: str) -> str:
    return ("SELECT collection_id AS site, count(DISTINCT PatientID) FROM series JOIN ("
            f"SELECT series_instance_uid FROM items WHERE kind = '{kind}' GROUP BY ALL "
            f"HAVING {condition}) a ON a.series_instance_uid = series.SeriesInstanceUID "
            "GROUP BY site")


def cohort_queries(siemens: list[str]) -> list[CohortQuery]:
    """The fixed set of cohorts; ``siemens`` is every Manufacturer spelling of Siemens in the
    catalogue (a keyword field matches exact values, as a dashboard's value list offers them)."""
    manufacturer = _kaapana_names()["Manufacturer"]
    left, right = (_key(s.property_type) for s in (Structure.LEFT_VENTRICLE,
                                                    Structure.RIGHT_VENTRICLE))
    spellings = ", ".join(f"'{name}'" for name in siemens)
    return [
        CohortQuery("CT and SEG", {"all": [{"series": {"modality": "CT"}},
                                          {"series": {"modality": "SEG"}}]},
                    _patients_having("bool_or(Modality = 'CT') AND bool_or(Modality = 'SEG')")),
        CohortQuery("Siemens CT, SR and SEG", {"all": [
            {"series": {"modality": "CT", "attributes": {manufacturer: siemens}}},
            {"series": {"modality": "SR"}}, {"series": {"modality": "SEG"}}]},
            _patients_having(f"bool_or(Modality = 'CT' AND Manufacturer IN ({spellings})) "
                             "AND bool_or(Modality = 'SR') AND bool_or(Modality = 'SEG')")),
        CohortQuery("one SEG: left AND right ventricle", {"annotation": {
            "kind": "SEG", "segments": [{"type": left}, {"type": right}]}},
            _annotated_patients("SEG", f"bool_or(value = '{left}') AND "
                                f"bool_or(value = '{right}')")),
        CohortQuery("one SR: nodule, diameter >= 10 mm", {"annotation": {
            "template": "1500", "codes": [{"name": FINDING, "value": NODULE}],
            "numbers": [{"name": DIAMETER, "min": 10, "unit": "mm"}]}},
            _annotated_patients("SR", f"bool_or(name = '{FINDING}' AND value = '{NODULE}') "
                                f"AND bool_or(name = '{DIAMETER}' AND number >= 10 AND "
                                "unit = 'mm')")),
        CohortQuery("patients per site", {"series": {}},
                    "SELECT collection_id AS site, count(DISTINCT PatientID) FROM series "
                    "GROUP BY site"),
    ]


def siemens_spellings(table: pa.Table) -> list[str]:
    names = pc.unique(table["Manufacturer"].drop_null())
    return sorted(n for n in names.to_pylist() if n.lower().startswith("siemens"))


def duckdb_connection(series_parquet: Path, items_parquet: Path) -> duckdb.DuckDBPyConnection:
    """Views over the parquet files, so every query reads them as a baseline would."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW series AS SELECT * FROM read_parquet('{series_parquet}')")
    con.execute(f"CREATE VIEW items AS SELECT * FROM read_parquet('{items_parquet}')")
    return con


def duckdb_counts(con: duckdb.DuckDBPyConnection, sql: str) -> Counts:
    counts = dict(sorted((site, n) for site, n in con.execute(sql).fetchall()))
    return {**counts, "total": sum(counts.values())}


# --- measuring -------------------------------------------------------------------------------

@dataclass
class Load:
    """One bulk load: documents written, seconds, and the index's size afterwards."""

    docs: int
    seconds: float
    lucene_docs: int = 0       # including one hidden document per nested object
    bytes: int = 0

    @property
    def per_second(self) -> float:
        return self.docs / self.seconds


@dataclass
class QueryResult:
    query: CohortQuery
    opensearch: Counts
    duckdb: Counts
    opensearch_ms: list[float]
    duckdb_ms: list[float]


@dataclass
class Report:
    prepare_seconds: float
    series: Load
    patients: Load
    max_nested_per_patient: int
    baseline: dict[str, list[Load]] = field(default_factory=dict)
    queries: list[QueryResult] = field(default_factory=list)


def _timed(func: Callable[[], Any], repeat: int) -> tuple[Any, list[float]]:
    """The result and the wall times in ms of ``repeat`` calls after one warm-up call."""
    result = func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return result, times


def _load(client: OpenSearch, index: str, docs: Iterable[tuple[str, Document]],
          total: int, what: str) -> Load:
    start = time.perf_counter()
    written = bulk_index(client, index, progress(docs, total=total, what=what, logger=log))
    client.indices.refresh(index=index)
    seconds = time.perf_counter() - start
    client.indices.flush(index=index)
    stats = client.indices.stats(index=index, metric="store,docs")["indices"][index]["primaries"]
    return Load(written, seconds, stats["docs"]["count"], stats["store"]["size_in_bytes"])


def _baseline_bulk(client: OpenSearch, prefix: str, table: pa.Table, items: pa.Table,
                   docs: int, rounds: int) -> dict[str, list[Load]]:
    """The first ``docs`` series documents, written by the bulk writer srcohort had before
    (``helpers.streaming_bulk``, 500 documents a request, one thread, ``json``: the baseline)
    and by today's, each time into a fresh index: the same documents, the same node.

    The writers take turns for ``rounds`` rounds, after an untimed warm-up load that brings the
    node's JIT up to speed, so a burst of other work on the machine hits both alike.
    """
    def previous(client: OpenSearch, index: str, stream: Iterable[tuple[str, Document]]) -> int:
        actions = ({"_index": index, "_id": doc_id, "_source": doc} for doc_id, doc in stream)
        return sum(ok for ok, _ in helpers.streaming_bulk(client, actions, chunk_size=500,
                                                          max_retries=5))

    writers = {"bulk_index": bulk_index, "streaming_bulk (baseline)": previous}
    turns = [("warm-up", bulk_index)] + [turn for _ in range(rounds) for turn in writers.items()]
    results: dict[str, list[Load]] = {label: [] for label in writers}
    for label, writer in turns:
        index = f"{prefix}baseline-series"
        client.indices.create(index=index, body=series_index_body())
        try:
            start = time.perf_counter()
            written = writer(client, index, itertools.islice(series_documents(table, items),
                                                             docs))
            client.indices.refresh(index=index)
            results.setdefault(label, []).append(Load(written, time.perf_counter() - start))
        finally:
            client.indices.delete(index=index)
    del results["warm-up"]
    return results


def measure(client: OpenSearch, prefix: str, *, limit: int | None, seed: int, repeat: int,
            baseline_docs: int, baseline_rounds: int, workdir: Path) -> Report:
    """Load the catalogue into ``prefix``'s indices, count every cohort both ways, and raise
    if any count differs between OpenSearch and DuckDB."""
    start = time.perf_counter()
    table, items = catalogue(limit, seed)
    series_parquet = PARQUET
    if limit is not None:
        series_parquet = workdir / "series.parquet"
        pq.write_table(table, series_parquet)
    items_parquet = workdir / "items.parquet"
    pq.write_table(items.drop_columns(["row"]), items_parquet)
    prepare = time.perf_counter() - start
    log.info("catalogue ready", extra={"series": len(table), "items": len(items),
                                       "seconds": round(prepare, 1)})
    baseline = _baseline_bulk(client, prefix, table, items, min(baseline_docs, len(table)),
                              baseline_rounds) if baseline_docs else {}
    series_index, patients_index = ensure_indices(client, prefix)
    series = _load(client, series_index, series_documents(table, items), len(table),
                   "series documents")
    patient_count = pc.count_distinct(patient_keys(table)).as_py()
    patients = _load(client, patients_index, patient_stream(series_documents(table, items)),
                     patient_count, "patient documents")
    report = Report(prepare, series, patients, _max_nested(items, table), baseline)
    con = duckdb_connection(series_parquet, items_parquet)
    client.indices.put_settings(index=f"{series_index},{patients_index}",  # no cached answers
                                body={"index": {"requests.cache.enable": False}})
    for query in cohort_queries(siemens_spellings(table)):
        cohort = load_cohort({"name": query.name, "patients": query.patients})
        ours, ours_ms = _timed(lambda: count_patients(client, cohort, prefix=prefix), repeat)
        theirs, theirs_ms = _timed(lambda: duckdb_counts(con, query.sql), repeat)
        report.queries.append(QueryResult(query, ours, theirs, ours_ms, theirs_ms))
    unequal = [r.query.name for r in report.queries if r.opensearch != r.duckdb]
    if unequal:
        raise AssertionError(f"OpenSearch and DuckDB disagree on: {', '.join(unequal)}")
    return report


def _max_nested(items: pa.Table, table: pa.Table) -> int:
    """The largest number of nested objects in one patient document (series summaries,
    annotations and their items), to hold against ``index.mapping.nested_objects.limit``."""
    patient = patient_keys(table)
    per_patient = pa.table({"p": patient}).group_by("p").aggregate([("p", "count")])
    annotations = pa.table({"p": patient.take(items["row"]), "row": items["row"]}) \
        .group_by("p").aggregate([("row", "count"), ("row", "count_distinct")])
    nested = per_patient.join(annotations, "p", join_type="left outer")
    total = pc.add(nested["p_count"], pc.fill_null(pc.add(nested["row_count"],
                                                          nested["row_count_distinct"]), 0))
    return pc.max(total).as_py()


def _quantiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 (for fewer than 2 values, the value itself)."""
    if len(values) < 2:
        return values[0], values[0]
    return statistics.median(values), statistics.quantiles(values, n=20)[18]


def print_report(report: Report) -> None:
    print(f"prepare (read parquet, sort, generate content): {report.prepare_seconds:.1f} s")
    for label, loads in report.baseline.items():
        rates = sorted(load.per_second for load in loads)
        print(f"bulk, first {loads[0].docs:,} series, {label}: median "
              f"{statistics.median(rates):,.0f} docs/s of {len(rates)} (from {rates[0]:,.0f} to "
              f"{rates[-1]:,.0f})")
    for label, load in (("series", report.series), ("patient", report.patients)):
        print(f"bulk {label} documents: {load.docs:,} in {load.seconds:.1f} s = "
              f"{load.per_second:,.0f} docs/s (build + serialise + index + refresh); "
              f"{load.lucene_docs:,} Lucene docs incl. nested; "
              f"{load.bytes / 2**20:,.0f} MiB on disk ({load.bytes / load.docs:,.0f} B/doc)")
    print(f"largest patient document: {report.max_nested_per_patient:,} nested objects "
          f"(limit 10,000)")
    print(f"{'cohort':38} {'OpenSearch':>10} {'DuckDB':>8} {'sites':>5} "
          f"{'OpenSearch p50/p95 ms':>21} {'DuckDB p50/p95 ms':>17} {'p95 ratio':>9}")
    for result in report.queries:
        os50, os95 = _quantiles(result.opensearch_ms)
        db50, db95 = _quantiles(result.duckdb_ms)
        print(f"{result.query.name:38} {result.opensearch['total']:>10,} "
              f"{result.duckdb['total']:>8,} {len(result.opensearch) - 1:>5} "
              f"{os50:>9.1f} / {os95:>9.1f} {db50:>7.1f} / {db95:>7.1f} "
              f"{os95 / db95:>9.2f}")
    print("counts equal (per site and in total) for every cohort: OpenSearch == DuckDB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (documents, DuckDB): {peak:,.0f} MB")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="about this many series (whole patients)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per cohort count")
    parser.add_argument("--baseline-docs", type=int, default=100_000,
                        help="series documents for the bulk writer comparison (0: skip)")
    parser.add_argument("--baseline-rounds", type=int, default=3,
                        help="turns each bulk writer takes in that comparison")
    parser.add_argument("--heap-mb", type=int, default=4096)
    parser.add_argument("--url", help="an OpenSearch to use instead of starting one")
    args = parser.parse_args()
    configure()
    workdir = Path(tempfile.mkdtemp(prefix="srcohort-scale-"))
    # Its own temp dir: the node may run as an unprivileged account that cannot enter workdir.
    server_dir = Path(tempfile.mkdtemp(prefix="srcohort-scale-opensearch-"))
    server = None if args.url else LocalOpenSearch(server_dir, port=_free_port(),
                                                   heap_mb=args.heap_mb)
    try:
        client = connect(args.url or server.start(timeout=300))
        for name in index_names(PREFIX):
            client.indices.delete(index=name, ignore_unavailable=True)
        report = measure(client, PREFIX, limit=args.limit, seed=args.seed, repeat=args.repeat,
                         baseline_docs=args.baseline_docs,
                         baseline_rounds=args.baseline_rounds, workdir=workdir)
        print_report(report)
        for name in index_names(PREFIX):
            client.indices.delete(index=name, ignore_unavailable=True)
    finally:
        if server is not None:
            server.stop()
        for directory in (workdir, server_dir):
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
