"""Compile a cohort expression into one OpenSearch query over the patient index.

Each ``annotation`` leaf becomes ONE nested query on ``annotations`` whose inner conditions are
nested queries on its items, so all of them must hold on the same annotation; ``series``
leaves are nested queries on ``series``. Pure: no client needed, ``srcohort cohort explain``
prints the result.
"""

from __future__ import annotations

from typing import Any

from srcohort.cohort.definition import (AnnotationCondition, BoolExpr, CodeCondition, Expr,
                                        NumberCondition, SeriesCondition)

Query = dict[str, Any]


def compile_expr(expr: Expr) -> Query:
    if isinstance(expr, BoolExpr):
        children = [compile_expr(child) for child in expr.children]
        if expr.op == "all":
            return {"bool": {"filter": children}}
        if expr.op == "any":
            return {"bool": {"should": children, "minimum_should_match": 1}}
        return {"bool": {"must_not": children}}
    if isinstance(expr, SeriesCondition):
        return _nested("series", [_terms("series.modality", expr.modalities)])
    return _annotation(expr)


def _annotation(cond: AnnotationCondition) -> Query:
    prefix = "annotations"
    filters: list[Query] = []
    if cond.template is not None:
        filters.append({"term": {f"{prefix}.template": cond.template}})
    if cond.title is not None:
        filters.append({"term": {f"{prefix}.title": cond.title}})
    filters += [_code(f"{prefix}.codes", c) for c in cond.codes]
    filters += [_number(f"{prefix}.numbers", n) for n in cond.numbers]
    return _nested(prefix, filters)


def _code(path: str, cond: CodeCondition) -> Query:
    return _nested(path, [{"term": {f"{path}.name": cond.name}},
                          _terms(f"{path}.value", cond.values)])


def _number(path: str, cond: NumberCondition) -> Query:
    bounds = {op: value for op, value in (("gte", cond.min), ("lte", cond.max))
              if value is not None}
    return _nested(path, [{"term": {f"{path}.name": cond.name}},
                          {"range": {f"{path}.value": bounds}} if bounds else None,
                          {"term": {f"{path}.unit": cond.unit}} if cond.unit else None])


def _terms(field: str, values: tuple[str, ...]) -> Query | None:
    return {"terms": {field: list(values)}} if values else None


def _nested(path: str, filters: list[Query | None]) -> Query:
    present = [f for f in filters if f is not None]
    inner = {"bool": {"filter": present}} if present else {"match_all": {}}
    return {"nested": {"path": path, "query": inner}}
