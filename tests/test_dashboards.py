"""Dashboards generated from the study: well-formed saved objects, and every panel rendered with
the Vega libraries OpenSearch Dashboards 2.19 ships, its request sent to the real OpenSearch
with the dashboard context injected the way Dashboards does, drawing what the cohort engine
counts.

Dashboards itself cannot be built here, so the panels are rendered in node (tests/vega/
render.cjs: vega 5.23.0, vega-interpreter 1.0.5, vega-lite 5.6.1, installed by
tools/install-vega.sh) after the Python side has sent each panel's request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from srcohort.cohort.definition import load_cohort
from srcohort.cohort.run import count_patients
from srcohort.dashboards import (CONTEXT_CLAUSES, DEFAULT_INDEX, saved_object_list,
                                 saved_objects, vega_queries, vega_spec)
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names
from srcohort.study.load import load_study, walk_nodes

ROOT = Path(__file__).resolve().parents[1]
VEGA = ROOT / ".tools" / "vega" / "node_modules"
RENDER = ROOT / "tests" / "vega" / "render.cjs"
TYPE_ORDER = ("config", "index-pattern", "visualization", "dashboard")
STUDY = load_study("tavi")


def _specs(objects: list[dict]) -> dict[str, dict]:
    return {obj["id"]: spec for obj in objects if (spec := vega_spec(obj)) is not None}


def _coded_fields() -> set[tuple[str, str]]:
    return {(t.template, n.field) for t in STUDY.templates for n in walk_nodes(t)
            if n.value_type == "CODE" and n.field and n.terms}


def test_every_object_is_well_formed_in_import_order() -> None:
    objects = saved_object_list(STUDY)
    for obj in objects:
        assert {"id", "type", "attributes", "references", "migrationVersion"} <= obj.keys()
        assert obj["type"] in TYPE_ORDER and obj["attributes"]["title"]
    ranks = [TYPE_ORDER.index(obj["type"]) for obj in objects]
    assert ranks == sorted(ranks)
    assert len({(o["type"], o["id"]) for o in objects}) == len(objects)
    assert [o["type"] for o in objects].count("index-pattern") == 1
    dashboard, = (o for o in objects if o["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    assert {p["panelRefName"] for p in panels} == {r["name"] for r in dashboard["references"]}
    assert {r["id"] for r in dashboard["references"]} == {
        o["id"] for o in objects if o["type"] == "visualization"}
    for a, b in ((a, b) for i, a in enumerate(panels) for b in panels[i + 1:]):
        ga, gb = a["gridData"], b["gridData"]
        assert (ga["x"] + ga["w"] <= gb["x"] or gb["x"] + gb["w"] <= ga["x"]
                or ga["y"] + ga["h"] <= gb["y"] or gb["y"] + gb["h"] <= ga["y"]), "overlap"


def test_one_panel_per_coded_field_and_one_funnel_per_saved_cohort() -> None:
    specs = _specs(saved_object_list(STUDY))
    fields = {f"srcohort-tavi-{t}-{f}" for t, f in _coded_fields()}
    funnels = {f"srcohort-tavi-funnel-{name}" for name in STUDY.cohorts}
    assert set(specs) == fields | funnels and len(fields) >= 6
    for spec in specs.values():
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        url = spec["data"]["url"]
        assert url["index"] == DEFAULT_INDEX
        assert not {"%context%", "%timefield%"} & url.keys(), "not allowed with body.query"
        for placeholder, clause in CONTEXT_CLAUSES.items():
            assert url["body"]["query"]["bool"][clause] == [placeholder]
        assert spec["data"]["format"]["property"] == "aggregations.sites.buckets"
        assert "xOffset" in spec["encoding"]          # side by side, never overlapping
        assert spec["encoding"]["color"]["legend"]["labelLimit"] == 0


def test_a_second_study_gets_its_own_panels_from_its_declarations() -> None:
    lung = _specs(saved_object_list(load_study("lung-nodules")))
    assert "srcohort-lung-nodules-1500-lobe" in lung
    assert "srcohort-lung-nodules-funnel-lung-large-upper-lobe-nodule" in lung
    assert not any("tavi" in vis_id for vis_id in lung)


def test_index_name_is_substituted_everywhere() -> None:
    index = "demo-srcohort-patients"
    objects = [json.loads(line) for line in saved_objects(index, STUDY).splitlines()]
    pattern, = (o for o in objects if o["type"] == "index-pattern")
    assert pattern["attributes"]["title"] == index
    assert {s["data"]["url"]["index"] for s in _specs(objects).values()} == {index}
    with pytest.raises(ValueError):
        saved_objects("Demo/Patients", STUDY)


def test_vega_queries_replace_the_context_as_dashboards_does() -> None:
    queries = vega_queries("demo-srcohort-patients", study=STUDY)
    for body in queries.values():
        assert "%" not in json.dumps(body)
        assert body["query"] == {"bool": {"must": [], "filter": [{"match_all": {}}],
                                          "must_not": []}}
    site = {"term": {"site": "site-01"}}
    narrowed = vega_queries(context={"filter": [site], "must_not": [site]}, study=STUDY)
    assert all(b["query"] == {"bool": {"must": [], "filter": [site], "must_not": [site]}}
               for b in narrowed.values())


def _index_all(client: OpenSearch, converted: Path, prefix: str) -> str:
    for site_dir in sorted(p for p in converted.iterdir() if p.is_dir()):
        index_directory(client, site_dir / "dicom", site=site_dir.name, prefix=prefix)
    return index_names(prefix)[1]


def render(spec: dict, buckets: list) -> dict:
    """What the panel draws, rendered by the Vega libraries Dashboards ships, with the
    response of its request inlined as Dashboards inlines it (``format.property``)."""
    if not VEGA.is_dir() or shutil.which("node") is None:
        pytest.fail("node and the Vega libraries are needed: bash tools/install-vega.sh")
    spec = {**spec, "data": {"name": spec["data"]["name"], "values": buckets}}
    result = subprocess.run(["node", str(RENDER)], input=json.dumps({"spec": spec}), text=True,
                            capture_output=True, timeout=120,
                            env={**os.environ, "NODE_PATH": str(VEGA)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.opensearch
def test_every_panel_renders_and_draws_what_the_cohort_engine_counts(
        opensearch_client: OpenSearch, index_prefix: str, converted: Path) -> None:
    index = _index_all(opensearch_client, converted, index_prefix)
    specs = _specs(saved_object_list(STUDY, index))
    checked = 0
    for vis_id, body in vega_queries(index, study=STUDY).items():
        buckets = opensearch_client.search(index=index, body=body)["aggregations"]["sites"][
            "buckets"]
        drawn = render(specs[vis_id], buckets)
        assert drawn["versions"] == {"vega": "5.23.0", "vega_lite": "5.6.1"}
        assert drawn["svg_bytes"] > 1000 and drawn["bars"], vis_id
        if "-funnel-" in vis_id:
            name = vis_id.split("-funnel-")[1]
            source = load_cohort(STUDY.cohorts[name].read_text("utf-8")).source
            steps = source["patients"]["all"]
            for bar in drawn["bars"]:
                prefix = load_cohort({"name": "step", "patients": {"all": steps[:bar["step"]]}})
                counts = count_patients(opensearch_client, prefix, prefix=index_prefix)
                assert bar["patients"] == counts.get(bar["site"], 0), (vis_id, bar)
                checked += 1
            continue
        field = _field_of(vis_id)
        for bar in drawn["bars"]:
            cohort = load_cohort({"name": "value", "patients": {"annotation": {
                "fields": {field: [bar["code"]]}}}})
            counts = count_patients(opensearch_client, cohort, prefix=index_prefix)
            assert bar["patients"] == counts.get(bar["site"], 0), (vis_id, bar)
            assert bar["value_label"] != bar["code"]          # drawn with the code's meaning
            checked += 1
    assert checked > 20


def _field_of(vis_id: str) -> str:
    for template, field in _coded_fields():
        if vis_id == f"srcohort-tavi-{template}-{field}":
            return field
    raise AssertionError(vis_id)


@pytest.mark.opensearch
def test_dql_on_nested_fields_narrows_every_panel(opensearch_client: OpenSearch,
                                                  index_prefix: str, converted: Path) -> None:
    """The query bar's DQL
    ``annotations:{ codes:{ name:"SCT:73211009" and value:"SCT:373066001" } }``
    as Dashboards compiles it lands in the filter clause: every panel counts only the patients
    it holds for, and the funnel's last step equals the cohort with that condition added."""
    index = _index_all(opensearch_client, converted, index_prefix)
    diabetes, yes = "SCT:73211009", "SCT:373066001"
    dql = {"nested": {"path": "annotations", "score_mode": "none", "query": {"nested": {
        "path": "annotations.codes", "score_mode": "none", "query": {"bool": {"filter": [
            {"bool": {"should": [{"match_phrase": {"annotations.codes.name": diabetes}}],
                      "minimum_should_match": 1}},
            {"bool": {"should": [{"match_phrase": {"annotations.codes.value": yes}}],
                      "minimum_should_match": 1}}]}}}}}}
    with_diabetes = {b["key"]: b["doc_count"] for b in opensearch_client.search(
        index=index, body={"size": 0, "query": dql, "aggs": {"sites": {"terms": {
            "field": "site"}}}})["aggregations"]["sites"]["buckets"]}
    everyone = opensearch_client.count(index=index)["count"]
    assert 0 < sum(with_diabetes.values()) < everyone
    source = load_cohort(STUDY.cohorts["tavi-self-expanding"].read_text("utf-8")).source
    narrowed = load_cohort({**source, "patients": {"all": [
        *source["patients"]["all"],
        {"annotation": {"codes": [{"name": diabetes, "value": yes}]}}]}})
    expected = count_patients(opensearch_client, narrowed, prefix=index_prefix)
    for vis_id, body in vega_queries(index, context={"filter": [dql]}, study=STUDY).items():
        buckets = opensearch_client.search(index=index, body=body)["aggregations"]["sites"][
            "buckets"]
        assert {b["key"]: b["doc_count"] for b in buckets} == with_diabetes, vis_id
        if vis_id.endswith("-funnel-tavi-self-expanding"):
            last = {b["key"]: b["steps"]["buckets"][-1]["doc_count"] for b in buckets}
            assert {s: n for s, n in last.items() if n} == {
                s: n for s, n in expected.items() if s != "total" and n}
