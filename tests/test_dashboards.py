"""The Dashboards import file: well-formed, up to date, counting what the cohort engine counts.

Dashboards only shows a broken saved object when someone opens it, so everything checkable
without a browser is checked here: the file's structure and import order, the Vega specs, the
index substitution, and, against the real OpenSearch, the numbers the panels would draw.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from opensearchpy import OpenSearch

from srcohort.cohort.definition import BoolExpr, load_cohort
from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.query import compile_expr
from srcohort.cohort.run import count_patients
from srcohort.dashboards import (CONTEXT_CLAUSES, DEFAULT_INDEX, NDJSON, load_objects,
                                 saved_objects, vega_queries, vega_spec)
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names

ROOT = Path(__file__).resolve().parents[1]
TYPE_ORDER = ("config", "index-pattern", "visualization", "dashboard")
FUNNEL = "srcohort-cohort-funnel-per-site"
PACEMAKER = "srcohort-pacemaker-outcome-per-site"
PROSTHESIS = "srcohort-prosthesis-family-per-site"
OUTCOME_TITLE = "LN:28570-0"
SELF_EXPANDING = "99SRCOHORT:SELF_EXPANDING"


def _build_module() -> ModuleType:
    path = ROOT / "dashboards" / "build.py"
    spec = importlib.util.spec_from_file_location("dashboards_build", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def _url(spec: dict) -> dict:
    return spec["data"]["url"]


def _specs(objects: list[dict]) -> dict[str, dict]:
    return {obj["id"]: spec for obj in objects if (spec := vega_spec(obj)) is not None}


def test_committed_file_is_what_build_generates() -> None:
    assert NDJSON.read_text("utf-8") == _build_module().build(), \
        "dashboards/srcohort.ndjson is out of date: run .venv/bin/python dashboards/build.py"


def test_every_line_is_a_saved_object_in_import_order() -> None:
    lines = NDJSON.read_text("utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert len(objects) == len(lines) >= 5
    for obj in objects:
        assert {"id", "type", "attributes", "references", "migrationVersion"} <= obj.keys()
        assert obj["type"] in TYPE_ORDER and obj["attributes"]["title"]
    ranks = [TYPE_ORDER.index(obj["type"]) for obj in objects]
    assert ranks == sorted(ranks)
    assert len({(o["type"], o["id"]) for o in objects}) == len(objects)
    assert [o["type"] for o in objects].count("index-pattern") == 1
    assert [o["type"] for o in objects].count("dashboard") == 1


def test_dashboard_panels_reference_objects_in_the_file() -> None:
    objects = load_objects()
    known = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in known, ref
    dashboard, = (o for o in objects if o["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    names = {ref["name"] for ref in dashboard["references"]}
    assert len(panels) == len(names) and {p["panelRefName"] for p in panels} == names
    assert len({p["panelIndex"] for p in panels}) == len(panels)
    visualizations = {o["id"] for o in objects if o["type"] == "visualization"}
    assert {ref["id"] for ref in dashboard["references"]} == visualizations
    json.loads(dashboard["attributes"]["optionsJSON"])
    json.loads(dashboard["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def test_vega_specs_query_the_index_pattern_with_the_dashboard_context() -> None:
    objects = load_objects()
    pattern, = (o for o in objects if o["type"] == "index-pattern")
    assert pattern["attributes"]["title"] == DEFAULT_INDEX
    specs = _specs(objects)
    assert set(specs) == {FUNNEL, PACEMAKER, PROSTHESIS}
    for vis_id, spec in specs.items():
        obj, = (o for o in objects if o["id"] == vis_id)
        assert json.loads(obj["attributes"]["visState"])["title"] == obj["attributes"]["title"]
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        url = _url(spec)
        assert url["index"] == DEFAULT_INDEX
        assert not {"%context%", "%timefield%"} & url.keys(), "not allowed with body.query"
        bool_query = url["body"]["query"]["bool"]
        for placeholder, clause in CONTEXT_CLAUSES.items():
            assert bool_query[clause] == [placeholder], (vis_id, clause)
        name = spec["data"]["format"]["property"].split(".")[1]
        assert spec["data"]["format"]["property"] == f"aggregations.{name}.buckets"
        assert name in url["body"]["aggs"]


def test_funnel_filters_are_the_compiled_example_cohort() -> None:
    cohort = resolve_cohort("tavi-self-expanding")
    steps = cohort.patients.children
    funnel = _specs(load_objects())[FUNNEL]
    filters = _url(funnel)["body"]["aggs"]["sites"]["aggs"]["steps"]["filters"]["filters"]
    assert filters == [compile_expr(BoolExpr("all", steps[:k])) for k in range(1, len(steps) + 1)]
    assert filters[-1] == compile_expr(cohort.patients)


def test_index_name_is_substituted_everywhere_and_nowhere_else() -> None:
    assert saved_objects() == NDJSON.read_text("utf-8")
    index = "demo-srcohort-patients"
    text = saved_objects(index)
    objects = [json.loads(line) for line in text.splitlines()]
    pattern, = (o for o in objects if o["type"] == "index-pattern")
    assert pattern["attributes"]["title"] == index and pattern["id"] == "srcohort-patients"
    specs = _specs(objects)
    assert {_url(spec)["index"] for spec in specs.values()} == {index}
    for spec in specs.values():
        _url(spec)["index"] = DEFAULT_INDEX
    assert specs == _specs(load_objects())
    with pytest.raises(ValueError):
        saved_objects("Demo/Patients")


def test_vega_queries_replace_the_context_as_dashboards_does() -> None:
    queries = vega_queries("demo-srcohort-patients")
    assert set(queries) == {FUNNEL, PACEMAKER, PROSTHESIS}
    for body in queries.values():
        assert "%" not in json.dumps(body)
        assert body["query"] == {"bool": {"must": [], "filter": [{"match_all": {}}],
                                          "must_not": []}}
    site = {"term": {"site": "site-01"}}
    narrowed = vega_queries(context={"filter": [site], "must_not": [site]})
    assert narrowed[FUNNEL]["query"] == {"bool": {"must": [], "filter": [site],
                                                  "must_not": [site]}}


def _index_all(client: OpenSearch, converted: Path, prefix: str) -> str:
    """The small consortium in the patient index, as the demo and Kaapana's workflow index it."""
    for site_dir in sorted(p for p in converted.iterdir() if p.is_dir()):
        index_directory(client, site_dir / "dicom", site=site_dir.name, prefix=prefix)
    return index_names(prefix)[1]


def _patients_per_site(client: OpenSearch, index: str, query: dict) -> dict[str, int]:
    body = {"size": 0, "query": query,
            "aggs": {"sites": {"terms": {"field": "site", "size": 1000}}}}
    result = client.search(index=index, body=body)
    return {b["key"]: b["doc_count"] for b in result["aggregations"]["sites"]["buckets"]}


def _value_buckets(site_bucket: dict, report: str, item: str) -> dict[str, int]:
    values = site_bucket["annotations"][report]["codes"][item]["values"]["buckets"]
    return {b["key"]: b["patients"]["doc_count"] for b in values}


def _panels(client: OpenSearch, index: str, context: dict | None = None
            ) -> dict[str, dict[str, dict]]:
    """Visualization id -> site -> its aggregation bucket, from the panels' own queries."""
    out = {}
    for vis_id, body in vega_queries(index, context=context).items():
        result = client.search(index=index, body=body)
        out[vis_id] = {b["key"]: b for b in result["aggregations"]["sites"]["buckets"]}
    return out


@pytest.mark.opensearch
def test_panels_count_what_the_cohort_engine_counts(opensearch_client: OpenSearch,
                                                    index_prefix: str, converted: Path) -> None:
    index = _index_all(opensearch_client, converted, index_prefix)
    sites = sorted(_patients_per_site(opensearch_client, index, {"match_all": {}}))
    assert len(sites) == len([p for p in converted.iterdir() if p.is_dir()])
    panels = _panels(opensearch_client, index)

    cohort = count_patients(opensearch_client, resolve_cohort("tavi-self-expanding"),
                            prefix=index_prefix)
    funnel = {site: [b["doc_count"] for b in panels[FUNNEL][site]["steps"]["buckets"]]
              for site in sites}
    assert set(panels[FUNNEL]) == set(sites)
    for site, steps in funnel.items():
        assert steps == sorted(steps, reverse=True), (site, steps)
        assert steps[-1] == cohort.get(site, 0), site
    assert sum(steps[-1] for steps in funnel.values()) == cohort["total"] > 0

    with_outcome = _patients_per_site(opensearch_client, index, {"nested": {
        "path": "annotations", "query": {"term": {"annotations.title": OUTCOME_TITLE}}}})
    pacemaker = {site: sum(_value_buckets(b, "outcome_reports", "pacemaker").values())
                 for site, b in panels[PACEMAKER].items()}
    assert {s: n for s, n in pacemaker.items() if n} == with_outcome
    assert sum(with_outcome.values()) > 0

    self_expanding = _patients_per_site(opensearch_client, index, {"nested": {
        "path": "annotations", "query": {"bool": {"filter": [
            {"term": {"annotations.template": "3802"}},
            {"nested": {"path": "annotations.codes", "query": {"bool": {"filter": [
                {"term": {"annotations.codes.name": "99SRCOHORT:PROSTHESIS_FAMILY"}},
                {"term": {"annotations.codes.value": SELF_EXPANDING}}]}}}}]}}}})
    charted = {site: _value_buckets(b, "history_reports", "family").get(SELF_EXPANDING, 0)
               for site, b in panels[PROSTHESIS].items()}
    assert {s: n for s, n in charted.items() if n} == self_expanding


@pytest.mark.opensearch
def test_dql_on_nested_fields_narrows_every_panel(opensearch_client: OpenSearch,
                                                  index_prefix: str, converted: Path) -> None:
    """The query bar's DQL
    ``annotations:{ codes:{ name:"SCT:73211009" and value:"SCT:373066001" } }``
    as Dashboards compiles it (kuery nested/is without an index pattern) lands in the filter
    clause; the funnel's last step must then equal the cohort with that condition added."""
    index = _index_all(opensearch_client, converted, index_prefix)
    diabetes, yes = "SCT:73211009", "SCT:373066001"
    dql = {"nested": {"path": "annotations", "score_mode": "none", "query": {"nested": {
        "path": "annotations.codes", "score_mode": "none", "query": {"bool": {"filter": [
            {"bool": {"should": [{"match_phrase": {"annotations.codes.name": diabetes}}],
                      "minimum_should_match": 1}},
            {"bool": {"should": [{"match_phrase": {"annotations.codes.value": yes}}],
                      "minimum_should_match": 1}}]}}}}}}
    panels = _panels(opensearch_client, index, context={"filter": [dql]})

    source = resolve_cohort("tavi-self-expanding").source
    narrowed = load_cohort({**source, "patients": {"all": [
        *source["patients"]["all"],
        {"annotation": {"codes": [{"name": diabetes, "value": yes}]}}]}})
    expected = count_patients(opensearch_client, narrowed, prefix=index_prefix)
    last = {site: b["steps"]["buckets"][-1]["doc_count"] for site, b in panels[FUNNEL].items()}
    assert {s: n for s, n in last.items() if n} == {s: n for s, n in expected.items()
                                                    if s != "total" and n}
    with_diabetes = _patients_per_site(opensearch_client, index, dql)
    for vis_id, buckets in panels.items():
        assert {site: b["doc_count"] for site, b in buckets.items()} == with_diabetes, vis_id
    everyone = _patients_per_site(opensearch_client, index, {"match_all": {}})
    assert 0 < sum(with_diabetes.values()) < sum(everyone.values())
