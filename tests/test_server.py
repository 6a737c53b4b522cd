"""The local OpenSearch: fetching with version fallback, lifecycle across processes, and the
features srcohort relies on (nested documents) actually working in this distribution."""

from __future__ import annotations

import stat
import tempfile
import zipfile
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from srcohort.server import FetchError, LocalOpenSearch, ensure_distribution
from srcohort.server.distribution import candidate_versions
from tests.plugin_opensearch import free_port

MEASUREMENTS = [{"name": "annulus", "value": 20}, {"name": "lvot", "value": 30}]
# Matches only if name and value may come from different measurements.
CROSSED = [{"term": {"measurements.name": "annulus"}}, {"term": {"measurements.value": 30}}]
SAME_OBJECT = [{"term": {"measurements.name": "annulus"}}, {"term": {"measurements.value": 20}}]


class FakeFetch:
    """Serves a tiny fake distribution for ``available`` and records every version asked for."""

    def __init__(self, available: set[str]) -> None:
        self.available = available
        self.calls: list[str] = []

    def __call__(self, version: str, directory: Path) -> Path:
        self.calls.append(version)
        if version not in self.available:
            raise FetchError(f"{version} not found")
        directory.mkdir(parents=True, exist_ok=True)
        zip_path = directory / f"opensearch-{version}.zip"
        with zipfile.ZipFile(zip_path, "w") as archive:
            script = zipfile.ZipInfo(f"opensearch-{version}/bin/opensearch")
            script.external_attr = 0o755 << 16
            archive.writestr(script, "#!/bin/sh\n")
        return zip_path


def test_missing_versions_fall_back_in_order_and_are_fetched_once(tmp_path: Path) -> None:
    fetch = FakeFetch(available={"2.19.2", "2.19.1"})
    home = ensure_distribution("2.19.4", tmp_path, fetch=fetch)
    assert home == tmp_path / "opensearch-2.19.2"
    assert fetch.calls == ["2.19.4", "2.19.3", "2.19.2"]
    assert (home / "bin" / "opensearch").stat().st_mode & stat.S_IXUSR
    assert ensure_distribution("2.19.4", tmp_path, fetch=fetch) == home
    assert fetch.calls == ["2.19.4", "2.19.3", "2.19.2"]
    assert [p.name for p in tmp_path.iterdir()] == ["opensearch-2.19.2"]


def test_no_fetchable_version_is_an_error_naming_each_failure(tmp_path: Path) -> None:
    fetch = FakeFetch(available=set())
    with pytest.raises(RuntimeError, match="2.19.4 not found(.|\n)*2.19.1 not found"):
        ensure_distribution("2.19.4", tmp_path, fetch=fetch)
    assert fetch.calls == ["2.19.4", "2.19.3", "2.19.2", "2.19.1"]


@pytest.mark.parametrize("version, expected", [
    ("2.19.2", ["2.19.2", "2.19.1"]),
    ("2.17.0", ["2.17.0"]),  # asked for explicitly: silently serving 2.19 would be wrong
])
def test_fallback_only_goes_to_older_listed_versions(version: str, expected: list[str]) -> None:
    assert candidate_versions(version) == expected


@pytest.mark.opensearch
def test_cluster_is_healthy_and_runs_2_19(opensearch_client: OpenSearch) -> None:
    assert opensearch_client.cluster.health()["status"] in ("yellow", "green")
    assert opensearch_client.info()["version"]["number"].startswith("2.19.")


@pytest.mark.opensearch
def test_nested_query_does_not_match_across_objects(opensearch_client: OpenSearch,
                                                    index_prefix: str) -> None:
    hits = {}
    for kind in ("nested", "object"):
        index = f"{index_prefix}{kind}"
        opensearch_client.indices.create(index=index, body={"mappings": {"properties": {
            "measurements": {"type": kind, "properties": {
                "name": {"type": "keyword"}, "value": {"type": "integer"}}}}}})
        opensearch_client.index(index=index, id="p1", body={"measurements": MEASUREMENTS},
                                refresh=True)
        hits[kind] = {name: _count(opensearch_client, index, kind, clauses)
                      for name, clauses in (("crossed", CROSSED), ("same", SAME_OBJECT))}
    assert hits["nested"] == {"crossed": 0, "same": 1}
    assert hits["object"] == {"crossed": 1, "same": 1}  # the false match nested prevents


def _count(client: OpenSearch, index: str, kind: str, clauses: list[dict]) -> int:
    query: dict = {"bool": {"filter": clauses}}
    if kind == "nested":
        query = {"nested": {"path": "measurements", "query": query}}
    return client.count(index=index, body={"query": query})["count"]


@pytest.mark.opensearch
def test_status_is_visible_from_another_object(opensearch_server: LocalOpenSearch) -> None:
    other = LocalOpenSearch(opensearch_server.data_dir, port=opensearch_server.port)
    status = other.status()
    assert status["running"] is True
    assert status["pid"] == opensearch_server.status()["pid"]
    assert status["url"] == opensearch_server.url
    assert status["version"].startswith("2.19.")


@pytest.mark.opensearch
def test_start_is_idempotent(opensearch_server: LocalOpenSearch) -> None:
    pid = opensearch_server.status()["pid"]
    other = LocalOpenSearch(opensearch_server.data_dir, port=opensearch_server.port)
    assert opensearch_server.start() == other.start() == opensearch_server.url
    assert other.status()["pid"] == pid


@pytest.mark.opensearch
def test_failed_start_raises_with_the_server_log(opensearch_server: LocalOpenSearch) -> None:
    with tempfile.TemporaryDirectory(prefix="srcohort-test-badheap-") as data_dir:
        server = LocalOpenSearch(Path(data_dir), port=free_port(), heap_mb=1)
        with pytest.raises(RuntimeError, match="(?i)heap"):
            server.start(timeout=60)
        assert server.status()["running"] is False
