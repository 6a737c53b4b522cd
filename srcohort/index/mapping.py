"""Index mappings: nested annotations, Kaapana's suffix convention for DICOM fields.

srcohort writes to its own indices (``<prefix>series``, ``<prefix>patients``, prefix by default
``srcohort-``) and never deletes or rewrites Kaapana's ``project_*`` indices or templates.
"""

from __future__ import annotations

from typing import Any

DEFAULT_PREFIX = "srcohort-"
SERIES_INDEX = "series"
PATIENTS_INDEX = "patients"
KW = {"type": "keyword"}

_ITEM = {"name": KW, "name_meaning": KW, "group": KW, "finding": KW}
ANNOTATION = {
    "type": "nested",
    "properties": {
        "kind": KW, "sop_instance_uid": KW, "series_instance_uid": KW, "template": KW,
        "title": KW, "title_meaning": KW, "referenced_series": KW, "modality": KW,
        "study_date": {"type": "date"},
        "days_from": {"type": "object", "dynamic": True},
        # Named by SR template profiles (sr_templates/*.yaml ``field``): declared as data, so
        # the mapping grows with the templates; strings map to keyword (FIELD_TEMPLATES).
        "profile": KW,
        "fields": {"type": "object", "dynamic": True},
        "codes": {"type": "nested", "properties": {**_ITEM, "value": KW, "value_meaning": KW}},
        "numbers": {"type": "nested", "properties": {**_ITEM, "value": {"type": "double"},
                                                     "unit": KW}},
        "points": {"type": "nested", "properties": {**_ITEM, "graphic_type": KW,
                                                    "dimensions": {"type": "integer"}}},
        "texts": {"type": "nested", "properties": {**_ITEM, "value": {
            "type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}}},
        "dates": {"type": "nested", "properties": {**_ITEM, "value": {"type": "date"}}},
    },
}
_OWN = {"site": KW, "patient_id": KW, "patient_key": KW, "series_instance_uid": KW,
        "study_instance_uid": KW, "modality": KW, "study_date": {"type": "date"},
        "series_description": KW, "instances": {"type": "integer"},
        "files": {"type": "keyword", "index": False}}
# Kaapana's project index template maps DICOM fields by name suffix; the same here.
_DYNAMIC = [
    {f"dicom_{suffix}": {"match": f"*_{suffix}", "mapping": mapping}}
    for suffix, mapping in (
        ("keyword_alphabetic", KW), ("keyword", KW), ("integer", {"type": "long"}),
        ("float", {"type": "double"}), ("date", {"type": "date", "format": "yyyy-MM-dd"}),
        ("datetime", {"type": "date", "format": "yyyy-MM-dd'T'HH:mm:ss"}), ("time", KW))
]
FIELD_TEMPLATES = [{"annotation_fields": {"path_match": "annotations.fields.*",
                                         "match_mapping_type": "string", "mapping": KW}}]
SETTINGS = {"index": {"number_of_shards": 1, "number_of_replicas": 0,
                      "mapping.total_fields.limit": 6000, "mapping.nested_objects.limit": 10000}}


def series_index_body() -> dict[str, Any]:
    return {"settings": SETTINGS, "mappings": {
        "dynamic_templates": FIELD_TEMPLATES + _DYNAMIC,
        "properties": {**_OWN, "annotations": ANNOTATION}}}


def patients_index_body() -> dict[str, Any]:
    series = {"type": "nested", "properties": {
        **{k: v for k, v in _OWN.items() if k not in ("files", "site", "patient_id",
                                                     "patient_key")},
        "days_from": {"type": "object", "dynamic": True}}}
    return {"settings": SETTINGS, "mappings": {
        "dynamic": "strict", "dynamic_templates": FIELD_TEMPLATES, "properties": {
        "site": KW, "patient_id": KW, "patient_key": KW, "modalities": KW,
        "events": {"type": "object", "dynamic": True},
        "series": series, "annotations": ANNOTATION}}}
