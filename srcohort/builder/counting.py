"""Live counts of a cohort: per site, and criterion by criterion (the attrition funnel).

One OpenSearch request answers both. Step k of the funnel is the cohort made of the first k
criteria of the definition's top-level ``all`` (a definition of any other shape is one
criterion), compiled by ``compile_expr`` exactly as ``srcohort cohort count`` compiles a
definition; the last step is the definition itself, so its count is the CLI's count. The steps
are the filters of one ``filters`` aggregation with a ``terms`` on ``site`` below, rather than
one request per step: the node evaluates the criteria once per request, and the page gets every
number of a change in one round trip (benchmarks/builder.py measures both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch

from srcohort.cohort.model import BoolExpr, Cohort, Expr
from srcohort.cohort.query import compile_expr
from srcohort.cohort.run import MAX_SITES

Body = dict[str, Any]


def criteria(cohort: Cohort) -> list[Expr]:
    """The criteria the funnel applies one after another: the top-level ``all``'s children."""
    expr = cohort.patients
    return list(expr.children) if isinstance(expr, BoolExpr) and expr.op == "all" else [expr]


def step_queries(cohort: Cohort) -> list[Body]:
    """The compiled query of each funnel step; the last is ``compile_expr(cohort.patients)``."""
    steps = criteria(cohort)
    if len(steps) == 1:
        return [compile_expr(cohort.patients)]
    return [compile_expr(BoolExpr("all", tuple(steps[:k]))) for k in range(1, len(steps) + 1)]


def sites_agg() -> Body:
    return {"terms": {"field": "site", "size": MAX_SITES, "order": {"_key": "asc"}}}


def funnel_body(cohort: Cohort) -> Body:
    """Everyone in scope (the hits) and each step's patients, in total and per site."""
    return {"size": 0, "track_total_hits": True, "query": {"match_all": {}},
            "aggs": {"sites": sites_agg(),
                     "steps": {"filters": {"filters": step_queries(cohort)},
                               "aggs": {"sites": sites_agg()}}}}


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
    steps = [Step(b["doc_count"], _sites(b["sites"]["buckets"], names))
             for b in aggs["steps"]["buckets"]]
    return Counts(everyone, steps)


def count_funnel(client: OpenSearch, index: str, cohort: Cohort) -> Counts:
    """The funnel of ``cohort`` over ``index`` (one or several patient indices)."""
    return parse_funnel(client.search(index=index, body=funnel_body(cohort)))
