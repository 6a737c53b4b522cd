"""Distribution panels of the current cohort: patients per value of each coded field, per
segment type, per modality, and the label balance, each per site.

Every panel counts patients of the cohort (the request's query is ``compile_expr`` of the
definition) and names the condition a click on one of its bars adds, so the page never has to
know how a field or a segment is written in the cohort language.
"""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from srcohort.builder.counting import sites_agg
from srcohort.cohort.model import Cohort
from srcohort.cohort.query import compile_expr

VALUES_SHOWN = 50
Json = dict[str, Any]


def _patients_per_site() -> Json:
    return {"reverse_nested": {}, "aggs": {"sites": sites_agg()}}


def _nested(path: str, query: Json) -> Json:
    return {"nested": {"path": path, "query": query}}


def label_queries(label: Json) -> dict[str, Json]:
    """Patients the training label reads as ``yes`` and as ``no`` (``LabelSpec.of``): every
    labelled SR of the patient gives that answer; any other answer, a missing value or SRs that
    disagree make it ``unknown`` (the rest of the cohort)."""
    profile = {"term": {"annotations.profile": label["template"]}}
    field = f"annotations.fields.{label['field']}"

    def answer(code: str) -> Json:
        return _nested("annotations", {"bool": {"filter": [profile, {"term": {field: code}}]}})

    other = _nested("annotations", {"bool": {"filter": [profile], "must_not": [
        {"terms": {field: [label["positive"], label["negative"]]}}]}})
    positive, negative = answer(label["positive"]), answer(label["negative"])
    return {"yes": {"bool": {"filter": [positive], "must_not": [negative, other]}},
            "no": {"bool": {"filter": [negative], "must_not": [positive, other]}}}


def distributions_body(cohort: Cohort, catalogue: Json) -> Json:
    """Aggregations over the cohort's patients for every panel the study declares."""
    fields: Json = {}
    for field in catalogue["fields"]:
        if field["value_type"] == "CODE" and field["terms"]:
            fields[f"{field['template']}:{field['field']}"] = {
                "filter": {"term": {"annotations.profile": field["template"]}},
                "aggs": {"values": {"terms": {"field": f"annotations.fields.{field['field']}",
                                              "size": VALUES_SHOWN},
                                    "aggs": {"patients": _patients_per_site()}}}}
    aggs: Json = {
        "sites": sites_agg(),
        "modalities": {"terms": {"field": "modalities", "size": VALUES_SHOWN},
                       "aggs": {"sites": sites_agg()}},
        "annotations": {"nested": {"path": "annotations"}, "aggs": {
            **fields,
            "segments": {"nested": {"path": "annotations.segments"}, "aggs": {
                "types": {"terms": {"field": "annotations.segments.type", "size": VALUES_SHOWN},
                          "aggs": {"patients": _patients_per_site()}}}}}},
    }
    if catalogue.get("label"):
        aggs["label"] = {"filters": {"filters": label_queries(catalogue["label"])},
                         "aggs": {"sites": sites_agg()}}
    return {"size": 0, "track_total_hits": True, "query": compile_expr(cohort.patients),
            "aggs": aggs}


def _per_site(buckets: list[Json]) -> dict[str, int]:
    return {b["key"]: b["doc_count"] for b in buckets}


def _bars(value: str, meaning: str, sites: dict[str, int], condition: Json) -> list[Json]:
    return [{"value": value, "meaning": meaning, "site": site, "patients": n,
             "condition": condition} for site, n in sites.items() if n]


def parse_distributions(result: Json, catalogue: Json) -> list[Json]:
    """Panels: ``{id, title, bars: [{value, meaning, site, patients, condition}]}``; a bar's
    ``condition`` is the criterion (YAML form) that selects its patients."""
    aggs = result["aggregations"]
    meanings = catalogue["meanings"]
    panels = [{"id": "modalities", "title": "Patients by modality", "bars": [
        bar for b in aggs["modalities"]["buckets"]
        for bar in _bars(b["key"], b["key"], _per_site(b["sites"]["buckets"]),
                         {"series": {"modality": b["key"]}})]}]
    for field in catalogue["fields"]:
        key = f"{field['template']}:{field['field']}"
        if key not in aggs["annotations"]:
            continue
        terms = {t["code"]: t["meaning"] for t in field["terms"]}
        panels.append({"id": f"field:{key}",
                       "title": f"Patients by {field['field'].replace('_', ' ')} "
                                f"({field['template_name']})",
                       "bars": [bar for b in aggs["annotations"][key]["values"]["buckets"]
                                for bar in _bars(
                                    b["key"], terms.get(b["key"], meanings.get(b["key"], b["key"])),
                                    _per_site(b["patients"]["sites"]["buckets"]),
                                    {"annotation": {**field["identify"],
                                                    "fields": {field["field"]: b["key"]}}})]})
    panels.append({"id": "segments", "title": "Patients by segment type", "bars": [
        bar for b in aggs["annotations"]["segments"]["types"]["buckets"]
        for bar in _bars(b["key"], meanings.get(b["key"], b["key"]),
                         _per_site(b["patients"]["sites"]["buckets"]),
                         {"annotation": {"kind": "SEG", "segments": [{"type": b["key"]}]}})]})
    if "label" in aggs:
        label = catalogue["label"]
        total = _per_site(aggs["sites"]["buckets"])
        answers = {name: _per_site(bucket["sites"]["buckets"])
                   for name, bucket in aggs["label"]["buckets"].items()}
        unknown = {site: n - answers["yes"].get(site, 0) - answers["no"].get(site, 0)
                   for site, n in total.items()}
        bars = []
        for name, code in (("yes", label["positive"]), ("no", label["negative"])):
            bars += _bars(name, f"{label['name']}: {name}", answers[name],
                          {"annotation": {**label["identify"],
                                          "fields": {label["field"]: code}}})
        bars += _bars("unknown", f"{label['name']}: unknown", unknown, {})
        panels.append({"id": "label", "title": f"Label balance ({label['name']})", "bars": bars})
    return panels


def distributions(client: OpenSearch, index: str, cohort: Cohort, catalogue: Json) -> list[Json]:
    return parse_distributions(client.search(index=index, body=distributions_body(cohort, catalogue)),
                               catalogue)
