"""The archive-scale benchmark on 5,000 IDC series, and the bulk writer's contract.

benchmarks/index_scale.py loads all ~1.04M series and is not part of the test run; here a
small sample goes through the same code against the session's OpenSearch, so the document
builders, the cohort definitions and the DuckDB baseline cannot drift apart unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from srcohort.index import opensearch as bulk
from srcohort.index.opensearch import bulk_index, ensure_indices
from tests.scripts import benchmark

pytestmark = pytest.mark.opensearch


def test_opensearch_counts_equal_duckdb_on_5000_series(opensearch_client: OpenSearch,
                                                       index_prefix: str,
                                                       tmp_path: Path) -> None:
    scale = benchmark("index_scale")
    report = scale.measure(opensearch_client, index_prefix, limit=5000, seed=0, repeat=1,
                           baseline_docs=0, baseline_rounds=0, workdir=tmp_path)
    assert 5000 <= report.series.docs < 5000 + 3000          # whole patients: a few over
    assert report.series.lucene_docs > report.series.docs     # nested annotations are there
    for result in report.queries:
        assert result.opensearch == result.duckdb, result.query.name
    totals = {r.query.name: r.opensearch["total"] for r in report.queries}
    assert totals["patients per site"] == report.patients.docs
    assert all(totals.values()), totals                       # no cohort is trivially empty


def test_large_load_restores_settings_and_failures_name_their_ids(
        opensearch_client: OpenSearch, index_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "LOAD_MODE_DOCS", 10)
    monkeypatch.setattr(bulk, "CHUNK_DOCS", 7)        # several requests in flight
    series, _ = ensure_indices(opensearch_client, index_prefix)
    opensearch_client.indices.put_settings(index=series, body={"index.refresh_interval": "5s"})
    docs = [(f"ok-{i}", {"instances": i}) for i in range(40)]
    docs.insert(13, ("bad", {"instances": "not a number"}))
    with pytest.raises(RuntimeError, match=r"1 documents failed .*'bad'"):
        bulk_index(opensearch_client, series, docs)
    opensearch_client.indices.refresh(index=series)
    assert opensearch_client.count(index=series)["count"] == 40
    settings = opensearch_client.indices.get_settings(index=series, flat_settings=True)
    assert settings[series]["settings"]["index.refresh_interval"] == "5s"


class _Busy:
    """A client whose node rejects the first request's second document (429), as a node with
    a full write queue does, then accepts everything."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.transport = OpenSearch().transport

    def bulk(self, *, index: str, body: bytes, filter_path: str) -> dict[str, Any]:
        self.bodies.append(body)
        lines = body.count(b"\n") // 2
        if len(self.bodies) == 1:
            statuses = [201, 429] + [201] * (lines - 2)
            return {"errors": True, "items": [{"index": {"status": s}} for s in statuses]}
        return {"errors": False, "items": [{"index": {"status": 201}}] * lines}


def test_rejected_documents_are_resent_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "INITIAL_BACKOFF", 0.0)
    client = _Busy()
    docs = [(f"id-{i}", {"n": i}) for i in range(3)]
    assert bulk_index(client, "any", docs) == 3  # type: ignore[arg-type]
    assert len(client.bodies) == 2 and b'"id-1"' in client.bodies[1]
    assert b'"id-0"' not in client.bodies[1]
