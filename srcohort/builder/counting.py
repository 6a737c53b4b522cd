"""Live counts of a cohort: per site, and criterion by criterion (the attrition funnel).

One OpenSearch request answers both. The criteria are the children of the definition's
top-level ``all`` (a definition of any other shape is one criterion), each compiled by
``compile_expr`` exactly as ``srcohort cohort count`` compiles it inside the definition's
``bool.filter``. Step k is a ``filter`` aggregation on criterion k nested inside step k-1, so
its bucket holds the patients meeting the first k criteria, the same set as the CLI's query of
those k criteria; the last step is the definition itself. Nesting evaluates each criterion once
per request (a ``filters`` aggregation with one cumulative query per step evaluates the first
one k times), and the page gets every number of a change in one round trip;
benchmarks/builder.py measures the three ways and checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch

from srcohort.cohort.model import Cohort
from srcohort.cohort.query import compile_expr
from srcohort.cohort.run import MAX_SITES

Body = dict[str, Any]


def criterion_queries(cohort: Cohort) -> list[Body]:
    """The compiled query of each criterion: the parts of the CLI's compiled definition."""
    query = compile_expr(cohort.patients)
    return list(query["bool"]["filter"]) if len(cohort.criteria) > 1 else [query]


def sites_agg() -> Body:
    return {"terms": {"field": "site", "size": MAX_SITES, "order": {"_key": "asc"}}}


def funnel_body(cohort: Cohort) -> Body:
    """Everyone in scope (the hits), then each step nested in the one before, per site."""
    aggs: Body = {"sites": sites_agg()}
    innermost = aggs
    for query in criterion_queries(cohort):
        step: Body = {"filter": query, "aggs": {"sites": sites_agg()}}
        innermost["step"] = step
        innermost = step["aggs"]
    return {"size": 0, "track_total_hits": True, "query": {"match_all": {}}, "aggs": aggs}


@dataclass(frozen=True)
class Step:
    total: int
    sites: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "sites": self.sites}


@dataclass(frozen=True)
class Counts:
    """Everyone in scope, then one entry per criterion; ``cohort`` is the last step."""

    everyone: Step
    steps: list[Step]

    @property
    def cohort(self) -> Step:
        return self.steps[-1]

    def to_json(self) -> dict[str, Any]:
        return {"everyone": self.everyone.to_json(), "cohort": self.cohort.to_json(),
                "steps": [s.to_json() for s in self.steps]}


def _sites(buckets: list[dict[str, Any]], names: list[str]) -> dict[str, int]:
    found = {b["key"]: b["doc_count"] for b in buckets}
    return {name: found.get(name, 0) for name in names}


def parse_funnel(result: dict[str, Any]) -> Counts:
    """The answer of ``funnel_body``; every site in scope appears in every step (0 if none)."""
    aggs = result["aggregations"]
    names = [b["key"] for b in aggs["sites"]["buckets"]]
    everyone = Step(result["hits"]["total"]["value"], _sites(aggs["sites"]["buckets"], names))
    steps = []
    bucket = aggs.get("step")
    while bucket is not None:
        steps.append(Step(bucket["doc_count"], _sites(bucket["sites"]["buckets"], names)))
        bucket = bucket.get("step")
    return Counts(everyone, steps)


def count_funnel(client: OpenSearch, index: str, cohort: Cohort) -> Counts:
    """The funnel of ``cohort`` over ``index`` (one or several patient indices)."""
    return parse_funnel(client.search(index=index, body=funnel_body(cohort)))
