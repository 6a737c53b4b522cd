"""Running a cohort against OpenSearch: per-site counts and patient lists."""

from __future__ import annotations

from typing import Iterator

from opensearchpy import OpenSearch, helpers

from srcohort.cohort.definition import Cohort
from srcohort.cohort.query import compile_expr
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.opensearch import index_names

MAX_SITES = 10000


def count_patients(client: OpenSearch, cohort: Cohort, *, prefix: str = DEFAULT_PREFIX) -> dict[str, int]:
    """Patients matching ``cohort`` per site, plus ``"total"``."""
    _, patients = index_names(prefix)
    body = {"size": 0, "track_total_hits": True, "query": compile_expr(cohort.patients),
            "aggs": {"sites": {"terms": {"field": "site", "size": MAX_SITES}}}}
    result = client.search(index=patients, body=body)
    counts = {b["key"]: b["doc_count"] for b in result["aggregations"]["sites"]["buckets"]}
    counts = dict(sorted(counts.items()))
    counts["total"] = result["hits"]["total"]["value"]
    return counts


def list_patients(client: OpenSearch, cohort: Cohort, *, prefix: str = DEFAULT_PREFIX
                  ) -> Iterator[dict]:
    """Matching patient documents (site, patient id, series, annotations), in stable order."""
    _, patients = index_names(prefix)
    hits = helpers.scan(client, index=patients, query={"query": compile_expr(cohort.patients)})
    yield from sorted((hit["_source"] for hit in hits), key=lambda d: d["patient_key"])
