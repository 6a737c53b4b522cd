"""What a condition can be made of: the study's fields with their vocabularies and units, and
what the index actually holds (modalities, DICOM attribute values and ranges, SR codes, numbers
and their units, segment types and labels, event offsets), so the page offers only conditions
that the data can meet, by their meanings, while the definition keeps the codes.

``study_catalogue`` is pure (the active study's declarations); ``index_catalogue`` sends one
aggregation request over the deployment's patient indices and reads it.
"""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from srcohort.cohort.definition import ATTRIBUTE_KINDS, known_events
from srcohort.index.mapping import SUMMARY_ATTRIBUTES, field_suffix
from srcohort.sr.profiles import Profile, default_profiles
from srcohort.study.load import load_study
from srcohort.units import equivalent_ranges

FILTERABLE_FIELD_TYPES = ("CODE", "NUM", "DATE")   # what ``fields:`` takes (docs/cohorts.md)
VALUES_SHOWN = 200           # distinct values per list offered: codes, attribute values
KINDS = ("SR", "SEG")
ALGORITHM_TYPES = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
Json = dict[str, Any]


def convertible_units(unit: str | None) -> list[str]:
    """Units a bound may be written in for a number stored in ``unit`` (itself first)."""
    if not unit:
        return []
    others = [u for u, _, _ in equivalent_ranges(unit, None, None) if u and u != unit]
    return [unit, *others]


def attribute_kind(name: str) -> str:
    """``keyword``, ``integer``, ``number`` or ``date``, as the cohort language reads it."""
    return ATTRIBUTE_KINDS.get(field_suffix(name), "keyword")


def identify(profile: Profile) -> Json:
    """How a cohort names the SRs of a profile: ``template`` is the SR's TemplateIdentifier,
    so a profile without one (a custom template) is named by its root concept, ``title``."""
    return {"template": profile.template_id} if profile.template_id else {"title": profile.root}


def study_catalogue() -> Json:
    """The active study's templates, fields (with terms, units), label, events and meanings."""
    study = load_study()
    meanings: dict[str, str] = {}
    templates, fields = [], []
    for profile in default_profiles():
        templates.append({"template": profile.template, "name": profile.name,
                          "template_id": profile.template_id, "root": profile.root,
                          "identify": identify(profile)})
        for node in profile.nodes.values():
            if node.meaning:
                meanings.setdefault(node.concept, node.meaning)
            for _, code, meaning in node.terms:
                meanings.setdefault(code, meaning)
            if node.field and node.value_type in FILTERABLE_FIELD_TYPES:
                fields.append({
                    "field": node.field, "template": profile.template,
                    "template_name": profile.name, "identify": identify(profile),
                    "concept": node.concept,
                    "meaning": node.meaning, "value_type": node.value_type, "unit": node.unit,
                    "units": convertible_units(node.unit),
                    "terms": [{"name": name, "code": code, "meaning": meaning}
                              for name, code, meaning in node.terms]
                    or [{"name": code, "code": code, "meaning": meanings.get(code, code)}
                        for code in node.values]})
    for vocabulary in study.vocabularies.values():
        for term in vocabulary.terms.values():
            meanings.setdefault(term.code, term.meaning)
    label = study.label
    labelled = next((p for p in default_profiles() if label and p.template == label.template),
                    None)
    return {
        "study": {"name": study.name, "title": study.title},
        "templates": templates, "fields": fields, "kinds": list(KINDS),
        "algorithm_types": list(ALGORITHM_TYPES), "events": list(known_events()),
        "attributes": [{"name": name, "keyword": name.split(" ", 1)[1].rsplit("_", 1)[0],
                        "kind": attribute_kind(name)} for name in SUMMARY_ATTRIBUTES],
        "label": None if label is None or labelled is None else {
            "template": label.template, "identify": identify(labelled),
            "field": label.field, "positive": label.positive,
            "negative": label.negative, "name": label.name or label.field},
        "meanings": meanings,
    }


# -- what the index holds ----------------------------------------------------------------------
def _terms(field: str, size: int = VALUES_SHOWN, **aggs: Json) -> Json:
    body: Json = {"terms": {"field": field, "size": size, "order": {"_key": "asc"}}}
    if aggs:
        body["aggs"] = aggs
    return body


def _meaning(field: str) -> Json:
    return {"terms": {"field": field, "size": 1}}


def index_catalogue_body(study: Json) -> Json:
    """One request: sites, modalities, attribute values/ranges, annotation vocabularies."""
    series: Json = {}
    for attribute in study["attributes"]:
        field = f"series.{attribute['name']}"
        series[attribute["name"]] = (_terms(field) if attribute["kind"] == "keyword"
                                     else {"stats": {"field": field}})
    annotations: Json = {
        "kinds": _terms("annotations.kind"),
        "templates": _terms("annotations.template"),
        "titles": _terms("annotations.title", meaning=_meaning("annotations.title_meaning")),
        "codes": {"nested": {"path": "annotations.codes"}, "aggs": {"names": _terms(
            "annotations.codes.name", meaning=_meaning("annotations.codes.name_meaning"),
            values=_terms("annotations.codes.value",
                          meaning=_meaning("annotations.codes.value_meaning")))}},
        "numbers": {"nested": {"path": "annotations.numbers"}, "aggs": {"names": _terms(
            "annotations.numbers.name", meaning=_meaning("annotations.numbers.name_meaning"),
            units=_terms("annotations.numbers.unit",
                         range={"stats": {"field": "annotations.numbers.value"}}))}},
        "texts": {"nested": {"path": "annotations.texts"}, "aggs": {"names": _terms(
            "annotations.texts.name", meaning=_meaning("annotations.texts.name_meaning"))}},
        "dates": {"nested": {"path": "annotations.dates"}, "aggs": {"names": _terms(
            "annotations.dates.name", meaning=_meaning("annotations.dates.name_meaning"),
            range={"stats": {"field": "annotations.dates.value"}})}},
        "segments": {"nested": {"path": "annotations.segments"}, "aggs": {
            "types": _terms("annotations.segments.type",
                            label=_terms("annotations.segments.label", size=3),
                            category=_meaning("annotations.segments.category")),
            "labels": _terms("annotations.segments.label"),
            "algorithm_types": _terms("annotations.segments.algorithm_type")}},
    }
    for field in study["fields"]:
        name = field["field"]
        key = f"field:{field['template']}:{name}"
        path = f"annotations.fields.{name}"
        value = (_terms(path) if field["value_type"] == "CODE" else {"stats": {"field": path}})
        annotations[key] = {"filter": {"term": {"annotations.profile": field["template"]}},
                            "aggs": {"value": value}}
    for event in study["events"]:
        annotations[f"event:{event}"] = {"stats": {"field": f"annotations.days_from.{event}"}}
    return {"size": 0, "track_total_hits": True, "query": {"match_all": {}}, "aggs": {
        "sites": _terms("site", size=10_000),
        "modalities": _terms("modalities", size=VALUES_SHOWN),
        "series": {"nested": {"path": "series"}, "aggs": series},
        "annotations": {"nested": {"path": "annotations"}, "aggs": annotations}}}


def _buckets(agg: Json | None) -> list[Json]:
    return (agg or {}).get("buckets", [])


def _first_key(agg: Json | None) -> str | None:
    buckets = _buckets(agg)
    return str(buckets[0]["key"]) if buckets else None


def _range(stats: Json | None) -> Json:
    """min/max of a stats aggregation (dates as ``YYYY-MM-DD``); empty when nothing is there."""
    if not stats or not stats.get("count"):
        return {}
    if "min_as_string" in stats:
        return {"min": stats["min_as_string"][:10], "max": stats["max_as_string"][:10]}
    return {"min": stats["min"], "max": stats["max"]}


def parse_index_catalogue(result: Json, study: Json) -> Json:
    """The aggregation answer as lists the page offers (each with the patients or objects
    it was seen in), and the meanings the index knows."""
    aggs = result["aggregations"]
    ann = aggs["annotations"]
    meanings: dict[str, str] = {}

    def coded(bucket: Json) -> Json:
        meaning = _first_key(bucket.get("meaning"))
        if meaning:
            meanings.setdefault(str(bucket["key"]), meaning)
        return {"code": str(bucket["key"]), "meaning": meaning, "count": bucket["doc_count"]}

    attributes = {}
    for attribute in study["attributes"]:
        agg = aggs["series"].get(attribute["name"])
        attributes[attribute["name"]] = (
            {"values": [b.get("key_as_string", b["key"]) for b in _buckets(agg)]}
            if attribute["kind"] == "keyword" else _range(agg))
    codes = [{**coded(b), "values": [coded(v) for v in _buckets(b["values"])]}
             for b in _buckets(ann["codes"]["names"])]
    numbers = [{**coded(b), "units": [{"unit": u["key"], **_range(u["range"])}
                                      for u in _buckets(b["units"])]}
               for b in _buckets(ann["numbers"]["names"])]
    dates = [{**coded(b), **_range(b["range"])} for b in _buckets(ann["dates"]["names"])]
    texts = [coded(b) for b in _buckets(ann["texts"]["names"])]
    titles = [coded(b) for b in _buckets(ann["titles"]) if b["key"]]     # SEGs have none
    segments = ann["segments"]
    types = []
    for bucket in _buckets(segments["types"]):
        labels = [str(b["key"]) for b in _buckets(bucket["label"])]
        types.append({"code": str(bucket["key"]), "labels": labels,
                      "category": _first_key(bucket["category"]), "count": bucket["doc_count"]})
        if labels:
            meanings.setdefault(str(bucket["key"]), labels[0])
    fields = {}
    for field in study["fields"]:
        key = f"field:{field['template']}:{field['field']}"
        value = ann[key]["value"]
        fields[key] = ({"codes": {str(b["key"]): b["doc_count"] for b in _buckets(value)}}
                       if field["value_type"] == "CODE" else _range(value))
    return {
        "patients": result["hits"]["total"]["value"],
        "sites": [{"site": b["key"], "patients": b["doc_count"]} for b in _buckets(aggs["sites"])],
        "modalities": [{"code": b["key"], "count": b["doc_count"]}
                       for b in _buckets(aggs["modalities"])],
        "attributes": attributes, "fields": fields,
        "kinds": [b["key"] for b in _buckets(ann["kinds"])],
        "templates": [b["key"] for b in _buckets(ann["templates"]) if b["key"]],
        "titles": titles, "codes": codes, "numbers": numbers, "texts": texts, "dates": dates,
        "segments": {"types": types,
                     "labels": [b["key"] for b in _buckets(segments["labels"])],
                     "algorithm_types": [b["key"] for b in _buckets(segments["algorithm_types"])]},
        "events": {event: _range(ann.get(f"event:{event}")) for event in study["events"]},
        "meanings": meanings,
    }


def index_catalogue(client: OpenSearch, index: str, study: Json) -> Json:
    return parse_index_catalogue(client.search(index=index, body=index_catalogue_body(study)),
                                 study)
