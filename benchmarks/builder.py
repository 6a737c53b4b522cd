"""Cohort builder latency at archive scale: from a changed condition to updated counts.

Data: the IDC catalogue as benchmarks/index_scale.py indexes it (~1.04M series, 86k patients
in 179 collections, generated SR and SEG content); the collection is the ``site``. The builder
app runs in this process behind its real HTTP server; a five-criterion cohort is edited again
and again (the SR criterion's diameter bound and the SEG criterion's structure change turn
about), and each edit is one ``POST /api/count``, the request the page sends, timed from send
to parsed answer: the cohort per site and the five-step funnel. Baselines, in the same run and
on the same edits: the same numbers as separate ``count_patients`` requests (everyone, then one
per step), the way the funnel would be counted without the builder; and as one request whose
``filters`` aggregation holds each step's whole compiled query (the first criterion evaluated
five times, the second four, ...), the way srcohort's dashboards draw a funnel. All must give the
same numbers, or the run fails. The shard request cache is off, so every request runs.
With ``--browser``, the page itself is timed too, in Debian's headless chromium: the SR card's
diameter bound is typed in and the page's own clock runs from the change event to the counts
and funnel drawn (the distribution panels are asked for after that); the next bound is typed
once the page has drawn everything, panels included.

    .venv/bin/python benchmarks/builder.py                      # builds the index: ~5-10 min
    .venv/bin/python benchmarks/builder.py --limit 100000       # whole patients up to 100k series
    .venv/bin/python benchmarks/builder.py --url http://127.0.0.1:9200 --keep   # reuse an index
    .venv/bin/python benchmarks/builder.py --url ... --keep --browser          # and the page
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from opensearchpy import OpenSearch

from srcohort.builder.actions import standalone_actions
from srcohort.builder.app import BuilderApp
from srcohort.builder.deployment import Sites, standalone
from srcohort.builder.server import BuilderServer
from srcohort.cohort.definition import load_cohort
from srcohort.cohort.model import BoolExpr, Cohort
from srcohort.cohort.query import compile_expr
from srcohort.cohort.run import MAX_SITES, count_patients
from srcohort.index.connection import connect
from srcohort.index.opensearch import ensure_indices, index_names
from srcohort.logs import configure, get_logger
from srcohort.server import LocalOpenSearch

log = get_logger("benchmarks.builder")
PREFIX = "scale-"
SITE = "idc"
DIAMETERS = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14)


def _index_scale() -> ModuleType:
    """benchmarks/index_scale.py, loaded as a module (benchmarks/ is a folder of scripts)."""
    path = Path(__file__).resolve().parent / "index_scale.py"
    spec = importlib.util.spec_from_file_location("index_scale", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def build_index(client: OpenSearch, prefix: str, limit: int | None, seed: int) -> None:
    """The IDC series and patient documents, exactly as index_scale.py loads them."""
    scale = _index_scale()
    table, items = scale.catalogue(limit, seed)
    series_index, patients_index = ensure_indices(client, prefix)
    scale._load(client, series_index, scale.series_documents(table, items), len(table),
                "series documents")
    patients = len(set(scale.patient_keys(table).to_pylist()))
    scale._load(client, patients_index, scale.patient_stream(scale.series_documents(table, items)),
                patients, "patient documents")


def definitions() -> list[dict[str, Any]]:
    """Five criteria (a CT, a SEG, one SEG with two structures, one SR with a nodule of at least
    a diameter, a Siemens CT); each edit changes the diameter bound, every other one also the
    second structure."""
    scale = _index_scale()
    left, right, atrium = (scale._key(s.property_type) for s in (
        scale.Structure.LEFT_VENTRICLE, scale.Structure.RIGHT_VENTRICLE,
        scale.Structure.LEFT_ATRIUM))
    manufacturer = scale._kaapana_names()["Manufacturer"]
    edits = []
    for i, diameter in enumerate(DIAMETERS):
        edits.append({"name": f"edit-{i}", "patients": {"all": [
            {"series": {"modality": "CT"}},
            {"series": {"modality": "SEG"}},
            {"annotation": {"kind": "SEG", "segments": [{"type": left},
                                                         {"type": right if i % 2 else atrium}]}},
            {"annotation": {"template": "1500",
                            "codes": [{"name": scale.FINDING, "value": scale.NODULE}],
                            "numbers": [{"name": scale.DIAMETER, "min": diameter, "unit": "mm"}]}},
            {"series": {"modality": "CT", "attributes": {manufacturer: ["SIEMENS", "Siemens"]}}},
        ]}})
    return edits


class Page:
    """What the page does on an edit: one JSON POST to the builder's server, keep-alive."""

    def __init__(self, server: BuilderServer) -> None:
        host, port = server.server_address[:2]
        self.connection = http.client.HTTPConnection(host, port, timeout=120)
        self.host = f"{host}:{port}"

    def count(self, definition: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"definition": definition})
        self.connection.request("POST", "/api/count", body=body, headers={
            "Content-Type": "application/json", "Host": self.host})
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"builder answered {response.status}: {answer}")
        return answer["counts"]


def separate_requests(client: OpenSearch, cohort: Cohort, prefix: str) -> dict[str, Any]:
    """The baseline: everyone, then each step of the funnel, one ``count_patients`` each."""
    steps = list(cohort.patients.children)
    everyone = count_patients(client, load_cohort({"name": "all", "patients": {"series": {}}}),
                              prefix=prefix)
    counted = [count_patients(client, Cohort(cohort.name, "", BoolExpr("all", tuple(steps[:k]))),
                              prefix=prefix) for k in range(1, len(steps) + 1)]
    return {"everyone": everyone["total"], "steps": [c["total"] for c in counted],
            "sites": {s: n for s, n in counted[-1].items() if s != "total" and n}}


def cumulative_filters(client: OpenSearch, cohort: Cohort, prefix: str) -> dict[str, Any]:
    """The other baseline: one request, a ``filters`` aggregation of each step's whole query."""
    steps = list(cohort.patients.children)
    sites = {"terms": {"field": "site", "size": MAX_SITES}}
    body = {"size": 0, "track_total_hits": True, "aggs": {"steps": {
        "filters": {"filters": [compile_expr(BoolExpr("all", tuple(steps[:k])))
                                for k in range(1, len(steps) + 1)]},
        "aggs": {"sites": sites}}}}
    result = client.search(index=index_names(prefix)[1], body=body)
    buckets = result["aggregations"]["steps"]["buckets"]
    return {"everyone": result["hits"]["total"]["value"],
            "steps": [b["doc_count"] for b in buckets],
            "sites": {b["key"]: b["doc_count"] for b in buckets[-1]["sites"]["buckets"]}}


def _quantiles(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=20)[18]


def measure(client: OpenSearch, prefix: str, repeat: int, browser: bool = False
            ) -> dict[str, Any]:
    """p50/p95 of the builder's count request and of the separate requests, same edits."""
    client.indices.put_settings(index=",".join(index_names(prefix)),
                                body={"index": {"requests.cache.enable": False}})
    deployment = standalone(client, Sites({SITE: prefix}), actions=standalone_actions(None),
                            cohorts_dir=Path(tempfile.mkdtemp(prefix="builder-bench-")),
                            out_dir=Path(tempfile.mkdtemp(prefix="builder-bench-")))
    server = BuilderServer(BuilderApp(deployment), "127.0.0.1", 0)
    server.serve_in_thread()
    try:
        page = Page(server)
        edits = definitions()
        cohorts = [load_cohort(d) for d in edits]
        ways = {"builder": lambda i: _builder(page.count(edits[i])),
                "separate": lambda i: separate_requests(client, cohorts[i], prefix),
                "cumulative": lambda i: cumulative_filters(client, cohorts[i], prefix)}
        times: dict[str, list[float]] = {way: [] for way in ways}
        answers: dict[int, Any] = {}
        for way in ways.values():                              # warm-up, every way
            way(0)
        for _, i in zip(range(repeat), itertools.cycle(range(len(edits)))):
            for way, count in ways.items():                    # the same edit, in turn
                start = time.perf_counter()
                answer = count(i)
                times[way].append((time.perf_counter() - start) * 1000)
                if answers.setdefault(i, answer) != answer:
                    raise AssertionError(f"edit {i}: {way} counted {answer}, the builder "
                                         f"{answers[i]}")
        sites = len(page.count(edits[0])["everyone"]["sites"])
        if browser:
            times["page"] = browser_timings(server, edits, repeat)
        return {"times": times, "answers": answers, "sites": sites}
    finally:
        server.shutdown()
        server.server_close()


def browser_timings(server: BuilderServer, edits: list[dict[str, Any]], repeat: int
                    ) -> list[float]:
    """The page's own change -> counts drawn, in ms, for ``repeat`` typed diameter bounds."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import chromium

    def counted(n: int):
        """Counts of the n-th change drawn, and its panels: the page is idle, as a person
        finds it before the next change."""
        return lambda d: d.execute_script("return window.builderTimings.length") >= n and \
            d.execute_script("return document.body.dataset.panels == S.seq")

    with chromium() as driver:
        wait = WebDriverWait(driver, 120)
        driver.get(server.url)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "yes")
        driver.execute_script("applyYaml(arguments[0])", json.dumps(edits[0]))
        wait.until(counted(1))
        diameters = itertools.cycle(DIAMETERS[1:] + DIAMETERS[:1])
        for run, diameter in zip(range(1, repeat + 1), diameters):
            bound = driver.find_element(By.CSS_SELECTOR, "[data-role=number] [data-role=min]")
            bound.send_keys(Keys.CONTROL, "a")          # replaced, not cleared: one change
            bound.send_keys(str(diameter), Keys.TAB)
            wait.until(counted(run + 1))
        return driver.execute_script("return window.builderTimings")[1:]


def _builder(counts: dict[str, Any]) -> dict[str, Any]:
    return {"everyone": counts["everyone"]["total"], "steps": [s["total"] for s in counts["steps"]],
            "sites": {s: n for s, n in counts["cohort"]["sites"].items() if n}}


LABELS = {"page": "the page in chromium: change -> counts drawn",
          "builder": "builder: one POST /api/count (funnel + sites)",
          "separate": "baseline: 6 separate count_patients requests",
          "cumulative": "baseline: one request, cumulative step filters"}


def print_report(result: dict[str, Any]) -> None:
    times = result["times"]
    print(f"edits timed: {len(times['builder'])} ({len(result['answers'])} distinct "
          f"definitions), sites (IDC collections): {result['sites']}")
    for i, answer in sorted(result["answers"].items()):
        print(f"  edit {i}: everyone {answer['everyone']:,}, funnel "
              f"{' -> '.join(f'{n:,}' for n in answer['steps'])}")
    print(f"{'':48} {'p50 ms':>8} {'p95 ms':>8} {'p95 / builder':>13}")
    b95 = _quantiles(times["builder"])[1]
    for way, label in LABELS.items():
        if way not in times:
            continue
        p50, p95 = _quantiles(times[way])
        print(f"{label:48} {p50:>8.1f} {p95:>8.1f} {p95 / b95:>13.2f}")
    print("every count equal in all three ways (funnel steps and cohort per site)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an OpenSearch to use instead of starting one")
    parser.add_argument("--prefix", default=PREFIX, help=f"index prefix ({PREFIX})")
    parser.add_argument("--limit", type=int, help="about this many series (whole patients)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=60, help="timed edits (60)")
    parser.add_argument("--heap-mb", type=int, default=4096)
    parser.add_argument("--browser", action="store_true",
                        help="also time the page in headless chromium (tests/browser.py)")
    parser.add_argument("--keep", action="store_true",
                        help="keep (and reuse, when present) the index instead of deleting it")
    args = parser.parse_args()
    configure()
    server_dir = Path(tempfile.mkdtemp(prefix="srcohort-builder-opensearch-"))
    server = None if args.url else LocalOpenSearch(server_dir, port=_free_port(),
                                                   heap_mb=args.heap_mb)
    try:
        client = connect(args.url or server.start(timeout=300))
        _, patients = index_names(args.prefix)
        if not (args.keep and client.indices.exists(index=patients)):
            for name in index_names(args.prefix):
                client.indices.delete(index=name, ignore_unavailable=True)
            build_index(client, args.prefix, args.limit, args.seed)
        print_report(measure(client, args.prefix, args.repeat, args.browser))
        if not args.keep:
            for name in index_names(args.prefix):
                client.indices.delete(index=name, ignore_unavailable=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(server_dir, ignore_errors=True)


def _free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
