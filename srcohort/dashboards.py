"""OpenSearch Dashboards saved objects generated from the study: one panel per filterable coded
field, and the attrition of each saved cohort; and the queries those panels send.

Dashboards' standard visualizations cannot aggregate nested fields, so every panel is a
Vega-Lite visualization whose one OpenSearch request aggregates the patient index: per site,
the annotations of a template (``annotations.profile``), the values of a field, counted as
patients (``reverse_nested``). A new study gets its panels from its declarations alone: field
names, their templates and the meanings of their codes. The funnel of a saved cohort filters
with the queries the cohort engine compiles, step by step, so its last bar of a site is what
``srcohort cohort count`` reports there; the steps are drawn side by side.

The objects name the patient index in the index pattern's title and in every spec's
``url.index``: the deployment's prefix decides it (``<prefix>patients``).

    python -m srcohort.dashboards --study tavi --prefix srcohort-demo- > srcohort.ndjson
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from srcohort.cohort.definition import BoolExpr, Cohort, load_cohort
from srcohort.cohort.query import compile_expr
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.opensearch import index_names
from srcohort.study.load import load_study, using_study, walk_nodes
from srcohort.study.model import Study

DEFAULT_INDEX = index_names(DEFAULT_PREFIX)[1]
INDEX_PATTERN_ID = "srcohort-patients"
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
SPEC_WIDTH = 100
# Vega's placeholders for the dashboard's query and filters, and the bool clause each stands
# for (OpenSearch Dashboards, vis_type_vega opensearch_query_parser.ts). The query bar (DQL)
# and positive filter pills end up in ``filter``, negated pills in ``must_not``, Lucene
# queries in ``must``; a panel must name all three to honour everything a user can set.
CONTEXT_CLAUSES = {
    "%dashboard_context-must_clause%": "must",
    "%dashboard_context-filter_clause%": "filter",
    "%dashboard_context-must_not_clause%": "must_not",
}
# What Dashboards injects with an empty query bar and no filters: an empty DQL query compiles
# to match_all in ``filter``; the other clauses are empty, so their placeholders disappear.
EMPTY_CONTEXT: Mapping[str, list] = {"must": [], "filter": [{"match_all": {}}], "must_not": []}
# Newest migration of each type in OpenSearch Dashboards 2.x: objects that claim it are imported
# as they are, instead of being run through every migration since Kibana 6.
MIGRATION = {"index-pattern": "7.6.0", "visualization": "7.10.0", "dashboard": "7.9.3"}
PANEL_VERSION = "7.10.0"   # panels below 7.3 would be migrated on load
_MAGIC = re.compile(r"%[a-z_-]+%")
_NOT_IN_INDEX_NAMES = re.compile(r'[\\/?"<>| ,#A-Z]')

SavedObject = dict[str, Any]


@dataclass(frozen=True)
class Panel:
    """One Vega-Lite visualization of the dashboard."""

    id: str
    title: str
    spec: dict[str, Any]
    width: int = 24


def compact(value: Any) -> str:
    """JSON inside a saved object's attributes (visState, panelsJSON): one line, key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def spec_text(spec: Mapping[str, Any]) -> str:
    """A Vega spec as stored in visState: strict JSON (valid HJSON), indented, with every
    container that fits kept on one line, so it stays readable in Dashboards' Vega editor."""
    return _pretty(spec, 0, SPEC_WIDTH) + "\n"


def _pretty(value: Any, indent: int, room: int) -> str:
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(flat) <= room or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + 2
    if isinstance(value, dict):
        keys = [json.dumps(k, ensure_ascii=False) + ": " for k in value]
        lines = [key + _pretty(v, inner, SPEC_WIDTH - inner - len(key) - 1)
                 for key, v in zip(keys, value.values())]
        brackets = "{}"
    else:
        lines = [_pretty(v, inner, SPEC_WIDTH - inner - 1) for v in value]
        brackets = "[]"
    body = ",\n".join(" " * inner + line for line in lines)
    return f"{brackets[0]}\n{body}\n{' ' * indent}{brackets[1]}"


def ndjson(objects: Iterable[SavedObject]) -> str:
    """The import file: one object a line, keys sorted, so equal objects give equal bytes."""
    return "".join(json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                   + "\n" for obj in objects)


# -- panels from the study ---------------------------------------------------------------------
def _query_with_context() -> dict[str, Any]:
    return {"bool": {clause: [placeholder] for placeholder, clause in CONTEXT_CLAUSES.items()}}


def field_panels(study: Study) -> list[Panel]:
    """One panel per coded field of the study's templates: per site, patients by value."""
    panels: list[Panel] = []
    for template in study.templates:
        for node in walk_nodes(template):
            if node.value_type != "CODE" or not node.field or not node.terms:
                continue
            labels = [{"code": code, "label": meaning} for _, code, meaning in node.terms]
            body = {"size": 0, "query": _query_with_context(), "aggs": {"sites": {
                "terms": {"field": "site", "size": 1000, "order": {"_key": "asc"}},
                "aggs": {"annotations": {"nested": {"path": "annotations"}, "aggs": {
                    "reports": {"filter": {"term": {"annotations.profile": template.template}},
                                "aggs": {"values": {
                                    "terms": {"field": f"annotations.fields.{node.field}",
                                              "size": 1000},
                                    "aggs": {"patients": {"reverse_nested": {}}}}}}}}}}}}
            title = f"Patients per site by {node.field.replace('_', ' ')} ({template.name})"
            spec = {
                "$schema": VEGA_LITE, "title": title,
                "description": f"Field {node.field} of template {template.template}: per site, "
                               f"patients whose {template.name} SRs hold each value. A patient "
                               f"with SRs of several values counts in each.",
                "data": {"name": "values", "url": {"index": DEFAULT_INDEX, "body": body},
                         "format": {"property": "aggregations.sites.buckets"}},
                "transform": [
                    {"flatten": ["annotations.reports.values.buckets"], "as": ["value"]},
                    {"calculate": "datum.key", "as": "site"},
                    {"calculate": "datum.value.key", "as": "code"},
                    {"calculate": "datum.value.patients.doc_count", "as": "patients"},
                    {"lookup": "code", "from": {"data": {"values": labels}, "key": "code",
                                                "fields": ["label"]}},
                    {"calculate": "datum.label || datum.code", "as": "value_label"}],
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "site", "type": "nominal", "title": "site"},
                    "xOffset": {"field": "value_label", "type": "nominal"},
                    "y": {"field": "patients", "type": "quantitative", "title": "patients"},
                    "color": {"field": "value_label", "type": "nominal",
                              "title": node.field.replace("_", " "),
                              "legend": {"labelLimit": 0, "orient": "bottom", "columns": 2}}}}
            panels.append(Panel(f"srcohort-{study.name}-{template.template}-{node.field}",
                                title, spec))
    return panels


def funnel_panel(study: Study, name: str, cohort: Cohort) -> Panel:
    """Per site, patients meeting the first one, two, ... conditions of a saved cohort (its
    top-level ``all``), side by side: an unchanged step shows as a bar of the same height."""
    steps = cohort.criteria
    raw = cohort.source["patients"]
    raw_steps = raw["all"] if isinstance(raw, dict) and "all" in raw else [raw]
    labels = [{"step": i + 1, "label": f"{i + 1}. {_describe(step)}"}
              for i, step in enumerate(raw_steps)]
    body = {"size": 0, "query": _query_with_context(), "aggs": {"sites": {
        "terms": {"field": "site", "size": 1000, "order": {"_key": "asc"}},
        "aggs": {"steps": {"filters": {"filters": [
            compile_expr(BoolExpr("all", tuple(steps[:k]))) for k in range(1, len(steps) + 1)]}}}}}}
    title = f"Attrition per site ({name})"
    spec = {
        "$schema": VEGA_LITE, "title": title,
        "description": f"Patients per site meeting the first conditions of the saved cohort "
                       f"{name}, one more per bar; the queries are the ones srcohort compiles, "
                       f"so a site's last bar is what 'srcohort cohort count {name}' reports.",
        "data": {"name": "funnel", "url": {"index": DEFAULT_INDEX, "body": body},
                 "format": {"property": "aggregations.sites.buckets"}},
        "transform": [
            {"flatten": ["steps.buckets"], "as": ["bucket"]},
            {"calculate": "datum.key", "as": "site"},
            {"window": [{"op": "row_number", "as": "step"}], "groupby": ["site"]},
            {"calculate": "datum.bucket.doc_count", "as": "patients"},
            {"lookup": "step", "from": {"data": {"values": labels}, "key": "step",
                                        "fields": ["label"]}}],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "site", "type": "nominal", "title": "site"},
            "xOffset": {"field": "label", "type": "nominal", "sort": [l["label"] for l in labels]},
            "y": {"field": "patients", "type": "quantitative", "title": "patients"},
            "color": {"field": "label", "type": "nominal", "title": "condition",
                      "sort": [l["label"] for l in labels],
                      "legend": {"labelLimit": 0, "orient": "bottom", "columns": 1}}}}
    return Panel(f"srcohort-{study.name}-funnel-{name}", title, spec, width=48)


def _describe(step: Any) -> str:
    """A cohort condition in one short line, for a legend."""
    (kind, value), = step.items() if isinstance(step, dict) else (("?", step),)
    if kind == "series":
        return "series " + ", ".join(f"{k} {v}" for k, v in value.items())
    if kind == "annotation":
        parts = [f"{k} {v}" for k, v in value.items() if k in ("kind", "template", "title")]
        parts += [f"{name} {condition}" for name, condition in (value.get("fields") or {}).items()]
        parts += [f"{len(value[k])} {k} condition(s)" for k in ("codes", "numbers", "texts",
                                                                "dates", "segments") if k in value]
        if "within" in value:
            parts.append(f"within {value['within']['days']} days of {value['within']['event']}")
        return "annotation " + "; ".join(parts)
    return f"{kind} (nested condition)"


def study_panels(study: Study) -> list[Panel]:
    panels = field_panels(study)
    with using_study(study.folder):            # its cohorts name its fields
        for name, entry in study.cohorts.items():
            panels.append(funnel_panel(study, name, load_cohort(entry.read_text("utf-8"))))
    return panels


# -- saved objects -----------------------------------------------------------------------------
def saved_object_list(study: Study, index: str = DEFAULT_INDEX) -> list[SavedObject]:
    """Index pattern, visualizations and the dashboard, in the order Dashboards resolves
    references, with the patient index named ``index`` (a name or a pattern)."""
    if not index or _NOT_IN_INDEX_NAMES.search(index) or index[0] in "-_+":
        raise ValueError(f"{index!r} is not an OpenSearch index name or pattern")
    panels = study_panels(study)
    empty_search = compact({"query": {"query": "", "language": "kuery"}, "filter": []})
    objects: list[SavedObject] = [{
        "id": INDEX_PATTERN_ID, "type": "index-pattern", "references": [],
        "migrationVersion": {"index-pattern": MIGRATION["index-pattern"]},
        "attributes": {"title": index, "fields": "[]"}}]
    for panel in panels:
        spec = copy.deepcopy(panel.spec)
        spec["data"]["url"]["index"] = index
        state = {"title": panel.title, "type": "vega", "aggs": [],
                 "params": {"spec": spec_text(spec)}}
        objects.append({
            "id": panel.id, "type": "visualization", "references": [],
            "migrationVersion": {"visualization": MIGRATION["visualization"]},
            "attributes": {"title": panel.title, "description": spec.get("description", ""),
                           "visState": compact(state), "uiStateJSON": "{}", "version": 1,
                           "kibanaSavedObjectMeta": {"searchSourceJSON": empty_search}}})
    grid, x, y, row = [], 0, 0, 0
    for i, panel in enumerate(panels):
        if x + panel.width > 48:
            x, y = 0, y + row
        grid.append({"version": PANEL_VERSION, "panelIndex": str(i + 1),
                     "gridData": {"x": x, "y": y, "w": panel.width, "h": 15, "i": str(i + 1)},
                     "embeddableConfig": {}, "panelRefName": f"panel_{i}"})
        x, row = x + panel.width, 15
    objects.append({
        "id": f"srcohort-{study.name}", "type": "dashboard",
        "references": [{"name": f"panel_{i}", "type": "visualization", "id": p.id}
                       for i, p in enumerate(panels)],
        "migrationVersion": {"dashboard": MIGRATION["dashboard"]},
        "attributes": {
            "title": f"srcohort: {study.title or study.name}",
            "description": "Nested SR content of the srcohort patient index, per site. Narrow "
                           "it with DQL, nested fields included, e.g. "
                           'annotations:{ codes:{ name:"SCT:73211009" } }',
            "hits": 0, "panelsJSON": compact(grid),
            "optionsJSON": compact({"useMargins": True, "hidePanelTitles": False}),
            "version": 1, "timeRestore": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": empty_search}}})
    return objects


def saved_objects(index: str = DEFAULT_INDEX, study: Study | None = None) -> str:
    """The import file (ndjson) of ``study`` (default: the active one) for ``index``."""
    return ndjson(saved_object_list(study or load_study(), index))


def vega_spec(obj: SavedObject) -> dict[str, Any] | None:
    """The parsed Vega spec of a visualization object, ``None`` for anything else."""
    if obj.get("type") != "visualization":
        return None
    state = json.loads(obj["attributes"]["visState"])
    return json.loads(state["params"]["spec"]) if state.get("type") == "vega" else None


def vega_queries(index: str = DEFAULT_INDEX, *, context: Mapping[str, list] | None = None,
                 study: Study | None = None) -> dict[str, dict[str, Any]]:
    """Visualization id -> the search body its panel sends, ready for ``client.search``.

    ``context`` plays the dashboard's query and filters as a bool clause map (``must``,
    ``filter``, ``must_not``); by default an empty query bar. One OpenSearch request per panel.
    """
    queries: dict[str, dict[str, Any]] = {}
    for obj in saved_object_list(study or load_study(), index):
        spec = vega_spec(obj)
        if spec is None:
            continue
        body = copy.deepcopy(spec["data"]["url"]["body"])
        body["query"] = inject(body["query"], EMPTY_CONTEXT if context is None else context)
        leftover = _MAGIC.findall(json.dumps(body))
        if leftover:
            raise ValueError(f"{obj['id']}: unsupported Vega placeholders {sorted(set(leftover))}")
        queries[obj["id"]] = body
    return queries


def inject(node: Any, context: Mapping[str, list]) -> Any:
    """Replace the placeholders as Dashboards does: each array element naming a clause becomes
    that clause's queries (none: the element is dropped)."""
    if isinstance(node, dict):
        return {key: inject(value, context) for key, value in node.items()}
    if isinstance(node, list):
        out: list[Any] = []
        for item in node:
            if isinstance(item, str) and item in CONTEXT_CLAUSES:
                out.extend(copy.deepcopy(context.get(CONTEXT_CLAUSES[item], [])))
            else:
                out.append(inject(item, context))
        return out
    return node


def main(argv: Sequence[str] | None = None) -> int:
    """Print the import file of the study's dashboard for one deployment's patient index."""
    parser = argparse.ArgumentParser(prog="python -m srcohort.dashboards",
                                     description=main.__doc__)
    parser.add_argument("--study", default="", help="the study (default: the active one)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--prefix", default=DEFAULT_PREFIX, help="index name prefix the indexing "
                       f"used (the index is <prefix>patients; default {DEFAULT_PREFIX})")
    which.add_argument("--index", default=None, help="the index name or pattern itself")
    args = parser.parse_args(argv)
    try:
        text = saved_objects(args.index or index_names(args.prefix)[1], load_study(args.study))
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
