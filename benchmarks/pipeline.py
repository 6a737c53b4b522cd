"""Benchmark of the foundation pipeline: convert, index, cohort count.

Prints throughput, latency and peak memory, and in the same run a baseline for each:
conversion in one process (the baseline) vs all cores, and the cohort count through the
patient roll-up vs a client-side intersection of per-condition patient sets over the series
index (the design the roll-up replaces). Needs the local OpenSearch (started and stopped here).

    .venv/bin/python benchmarks/pipeline.py --sites 8 --patients-per-site 20
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from opensearchpy import helpers

from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.run import count_patients
from srcohort.convert.site import convert_site
from srcohort.demo.consortium import generate_consortium
from srcohort.index.indexer import index_directory
from srcohort.index.connection import connect
from srcohort.index.opensearch import index_names
from srcohort.server import default_server

PREFIX = "bench-"


def _convert(consortium: Path, out: Path, workers: int) -> tuple[float, int]:
    """Seconds to convert every site, and the number of SRs written (outputs of table rows)."""
    start = time.perf_counter()
    srs: set[str] = set()
    for site in sorted(consortium.glob("site-*")):
        report = convert_site(site, out / site.name, workers=workers)
        srs.update(path for o in report.outcomes if o.line is not None for path in o.outputs)
    return time.perf_counter() - start, len(srs)


def _latencies(func, repeat: int) -> list[float]:
    func()                                            # warm caches once
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _baseline_count(client) -> int:
    """Patients meeting each condition, fetched separately and intersected on the client."""
    series, _ = index_names(PREFIX)

    def patients(query: dict) -> set[str]:
        return {hit["_source"]["patient_key"] for hit in helpers.scan(
            client, index=series, query={"query": query, "_source": ["patient_key"]})}
    ct = patients({"term": {"modality": "CT"}})
    outcome = patients({"nested": {"path": "annotations", "query": {"bool": {"filter": [
        {"term": {"annotations.title": "LN:28570-0"}},
        {"nested": {"path": "annotations.codes", "query": {"bool": {"filter": [
            {"term": {"annotations.codes.name": "SCT:307280005"}}]}}}}]}}}})
    family = patients({"nested": {"path": "annotations", "query": {"bool": {"filter": [
        {"term": {"annotations.template": "3802"}},
        {"nested": {"path": "annotations.codes", "query": {"bool": {"filter": [
            {"term": {"annotations.codes.name": "99SRCOHORT:PROSTHESIS_FAMILY"}},
            {"term": {"annotations.codes.value": "99SRCOHORT:SELF_EXPANDING"}}]}}}}]}}}})
    return len(ct & outcome & family)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--patients-per-site", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=50, help="cohort count repetitions")
    args = parser.parse_args()
    server = default_server()
    client = connect(server.start())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            generate_consortium(root / "consortium", sites=args.sites,
                                patients_per_site=args.patients_per_site, seed=1)
            cores = os.cpu_count() or 1
            base_s, srs = _convert(root / "consortium", root / "one", workers=1)
            fast_s, _ = _convert(root / "consortium", root / "all", workers=cores)
            print(f"convert: {srs} SRs; 1 process {srs / base_s:.1f} SR/s (baseline), "
                  f"{cores} processes {srs / fast_s:.1f} SR/s, speed-up {base_s / fast_s:.2f}x")
            for name in index_names(PREFIX):
                client.indices.delete(index=name, ignore_unavailable=True)
            start = time.perf_counter()
            series = sum(index_directory(client, site / "dicom", site=site.name,
                                         prefix=PREFIX).series
                         for site in sorted((root / "all").iterdir()))
            index_s = time.perf_counter() - start
            print(f"index: {series} series in {index_s:.2f} s ({series / index_s:.1f} series/s "
                  f"incl. file reading and patient roll-up)")
            cohort = resolve_cohort("tavi-self-expanding")
            rollup = _latencies(lambda: count_patients(client, cohort, prefix=PREFIX),
                                args.repeat)
            baseline = _latencies(lambda: _baseline_count(client), args.repeat)
            assert count_patients(client, cohort, prefix=PREFIX)["total"] == _baseline_count(client)
            for label, values in (("patient roll-up", rollup), ("client intersection (baseline)",
                                                                baseline)):
                q = statistics.quantiles(values, n=20)
                print(f"cohort count, {label}: p50 {statistics.median(values):.1f} ms, "
                      f"p95 {q[18]:.1f} ms")
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak memory (this process): {peak:.0f} MB")
    finally:
        for name in index_names(PREFIX):
            client.indices.delete(index=name, ignore_unavailable=True)
        server.stop()


if __name__ == "__main__":
    main()
