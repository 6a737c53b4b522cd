"""Compile a cohort expression into one OpenSearch query over the patient index.

Each ``annotation`` leaf becomes ONE nested query on ``annotations`` whose inner conditions are
nested queries on its items, so all of them must hold on the same annotation (and each item
condition on the same item); ``series`` leaves are nested queries on ``series``. ``at_least: n``
counts matching objects without scripts: a nested query with ``score_mode: sum`` over a
constant score of 1 per object scores the count, and ``function_score.min_score`` keeps the
patients whose count reaches n. Time windows are range queries on ``days_from.<event>``,
which the roll-up computes (srcohort/index/timeline.py). Pure: no client needed,
``srcohort cohort explain`` prints the result.

``nested=False`` compiles the same conditions for an index mapped with ``object`` instead of
``nested`` (every array of objects flattened into arrays of values): the baseline that shows
what nesting buys. An object mapping cannot count objects, so ``at_least`` is dropped there.
"""

from __future__ import annotations

from typing import Any

from srcohort.cohort.model import (AnnotationCondition, AttributeCondition, BoolExpr,
                                   CodeCondition, DateCondition, Expr, FieldCondition,
                                   NumberCondition, SegmentCondition, SeriesCondition,
                                   TextCondition, Window)
from srcohort.units import equivalent_ranges

Query = dict[str, Any]


def compile_expr(expr: Expr, *, nested: bool = True) -> Query:
    return _Compiler(nested).expr(expr)


def wildcard_literal(text: str) -> str:
    """``text`` with Lucene's wildcard characters escaped, so ``*text*`` is a plain substring."""
    return "".join(f"\\{c}" if c in "*?\\" else c for c in text)


class _Compiler:
    def __init__(self, nested: bool) -> None:
        self.nested = nested

    def expr(self, expr: Expr) -> Query:
        if isinstance(expr, BoolExpr):
            children = [self.expr(child) for child in expr.children]
            if expr.op == "all":
                return {"bool": {"filter": children}}
            if expr.op == "any":
                return {"bool": {"should": children, "minimum_should_match": 1}}
            return {"bool": {"must_not": children}}
        if isinstance(expr, SeriesCondition):
            return self.series(expr)
        return self.annotation(expr)

    def series(self, cond: SeriesCondition) -> Query:
        path = "series"
        filters = [_terms(f"{path}.modality", cond.modalities)]
        filters += [_attribute(f"{path}.{a.name}", a) for a in cond.attributes]
        filters.append(_window(path, cond.within))
        return self.objects(path, filters, cond.at_least)

    def annotation(self, cond: AnnotationCondition) -> Query:
        path = "annotations"
        filters = [_terms(f"{path}.kind", cond.kinds),
                   _term(f"{path}.template", cond.template), _term(f"{path}.title", cond.title)]
        filters += [self.code(f"{path}.codes", c) for c in cond.codes]
        filters += [self.number(f"{path}.numbers", n) for n in cond.numbers]
        filters += [self.text(f"{path}.texts", t) for t in cond.texts]
        filters += [self.date(f"{path}.dates", d) for d in cond.dates]
        filters += [self.segment(f"{path}.segments", s) for s in cond.segments]
        filters += [_field(f"{path}.fields.{f.name}", f) for f in cond.fields]
        filters.append(_window(path, cond.within))
        return self.objects(path, filters, cond.at_least)

    def code(self, path: str, cond: CodeCondition) -> Query:
        return self.objects(path, [_term(f"{path}.name", cond.name),
                                   _terms(f"{path}.value", cond.values)])

    def number(self, path: str, cond: NumberCondition) -> Query:
        alternatives = [_all([_term(f"{path}.unit", unit),
                              _range(f"{path}.value", low, high)])
                        for unit, low, high in equivalent_ranges(cond.unit, cond.min, cond.max)]
        either = alternatives[0] if len(alternatives) == 1 else \
            {"bool": {"should": alternatives, "minimum_should_match": 1}}
        return self.objects(path, [_term(f"{path}.name", cond.name), either])

    def text(self, path: str, cond: TextCondition) -> Query:
        return self.objects(path, [
            _term(f"{path}.name", cond.name),
            {"wildcard": {f"{path}.value.keyword": {
                "value": f"*{wildcard_literal(cond.contains)}*"}}}])

    def date(self, path: str, cond: DateCondition) -> Query:
        return self.objects(path, [_term(f"{path}.name", cond.name),
                                   _range(f"{path}.value", cond.min, cond.max)])

    def segment(self, path: str, cond: SegmentCondition) -> Query:
        return self.objects(path, [_term(f"{path}.{key}", getattr(cond, key)) for key in
                                   ("number", "label", "category", "type", "algorithm_type")])

    def objects(self, path: str, filters: list[Query | None], at_least: int = 1) -> Query:
        """Some object under ``path`` (``at_least`` of them) meets every filter."""
        inner = _all(filters)
        if not self.nested:
            return inner
        if at_least == 1:
            return {"nested": {"path": path, "query": inner}}
        return {"function_score": {
            "query": {"nested": {"path": path, "score_mode": "sum",
                                 "query": {"constant_score": {"filter": inner, "boost": 1.0}}}},
            "min_score": at_least}}


def _field(field: str, cond: FieldCondition) -> Query | None:
    """A declared field: one of the codes, or a range (the values are stored in the field's
    declared unit, so bounds were converted when the definition was read)."""
    if cond.values:
        return _terms(field, cond.values)
    return _range(field, cond.min, cond.max) or {"exists": {"field": field}}


def _attribute(field: str, cond: AttributeCondition) -> Query | None:
    if cond.values:
        return _terms(field, cond.values)
    return _range(field, cond.min, cond.max)


def _window(path: str, window: Window | None) -> Query | None:
    if window is None:
        return None
    return _range(f"{path}.days_from.{window.event}", window.min_days, window.max_days)


def _term(field: str, value: Any) -> Query | None:
    return None if value is None else {"term": {field: value}}


def _terms(field: str, values: tuple) -> Query | None:
    return {"terms": {field: list(values)}} if values else None


def _range(field: str, low: Any, high: Any) -> Query | None:
    bounds = {op: value for op, value in (("gte", low), ("lte", high)) if value is not None}
    return {"range": {field: bounds}} if bounds else None


def _all(filters: list[Query | None]) -> Query:
    present = [f for f in filters if f is not None]
    return {"bool": {"filter": present}} if present else {"match_all": {}}
