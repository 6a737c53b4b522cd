"""Index mappings: nested annotations, Kaapana's suffix convention for DICOM fields.

srcohort writes to its own indices (``<prefix>series``, ``<prefix>patients``, prefix by default
``srcohort-``) and never deletes or rewrites Kaapana's ``project_*`` indices or templates.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement

from srcohort.index.fields import field_name
from srcohort.index.seg_content import SEGMENTS_MAPPING

DEFAULT_PREFIX = "srcohort-"
# OpenSearch index names are lowercase, without \ / * ? " < > | , # : or spaces, and may not
# start with - _ +; Kaapana's own indices and template own the ``project_`` names.
_PREFIX = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
SERIES_INDEX = "series"
PATIENTS_INDEX = "patients"
KW = {"type": "keyword"}
# Longest TEXT value searchable by ``contains`` (UTF-16 code units, as Lucene counts them):
# 8191 units are at most 32766 bytes of UTF-8, Lucene's limit for one term.
TEXT_KEYWORD_LIMIT = 8191

# Kaapana's project index template maps DICOM fields by name suffix; the same here.
SUFFIX_MAPPINGS: dict[str, dict[str, Any]] = {
    "keyword_alphabetic": KW, "keyword": KW, "integer": {"type": "long"},
    "float": {"type": "double"}, "date": {"type": "date", "format": "yyyy-MM-dd"},
    "datetime": {"type": "date", "format": "yyyy-MM-dd'T'HH:mm:ss"}, "time": KW,
}

# DICOM attributes copied into the patient roll-up's series summaries, so a cohort can filter
# series on them. A bounded list rather than every field: each one is a mapped field of the
# patients index (total_fields limit) and is repeated per series in every patient document.
# All are series-, study- or equipment-level, so the first instance speaks for the series.
SUMMARY_KEYWORDS = (
    "Manufacturer", "ManufacturerModelName", "InstitutionName", "StationName",
    "SoftwareVersions", "SOPClassUID", "ImageType", "BodyPartExamined", "StudyDescription",
    "SeriesDescription", "ProtocolName", "StudyDate", "SeriesDate", "PatientSex", "PatientAge",
    "SliceThickness", "SpacingBetweenSlices", "KVP", "ConvolutionKernel", "ContrastBolusAgent",
    "PixelSpacing", "Rows", "Columns", "NumberOfFrames", "SeriesNumber", "SegmentationType",
    # A cohort of given series (a Kaapana dataset as a cohort: srcohort.kaapana.dataset).
    "SeriesInstanceUID",
)


def check_prefix(prefix: str) -> str:
    """``prefix`` when it can start srcohort's index names; ValueError naming the rule else."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"index prefix {prefix!r}: expected lowercase letters, digits, '.', "
                         f"'_' or '-', starting with a letter or digit (e.g. {DEFAULT_PREFIX})")
    if prefix.startswith("project_"):
        raise ValueError(f"index prefix {prefix!r}: 'project_' names are Kaapana's own indices")
    return prefix


def _kaapana_name(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return field_name(DataElement(tag, dictionary_VR(tag), None))


def field_suffix(name: str) -> str:
    """The type suffix of a Kaapana field name (``"00180050 SliceThickness_float"`` -> float)."""
    return next(s for s in SUFFIX_MAPPINGS if name.endswith(f"_{s}"))


SUMMARY_ATTRIBUTES: tuple[str, ...] = tuple(_kaapana_name(k) for k in SUMMARY_KEYWORDS)

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
            "type": "text", "fields": {"keyword": {"type": "keyword",
                                                   "ignore_above": TEXT_KEYWORD_LIMIT}}}}},
        "dates": {"type": "nested", "properties": {**_ITEM, "value": {"type": "date"}}},
        "segments": SEGMENTS_MAPPING,
    },
}
_OWN = {"site": KW, "patient_id": KW, "patient_key": KW, "series_instance_uid": KW,
        "study_instance_uid": KW, "modality": KW, "study_date": {"type": "date"},
        "series_description": KW, "instances": {"type": "integer"},
        "files": {"type": "keyword", "index": False},
        # Where a series indexed from a PACS is fetched from (srcohort.index.retrieve); stored,
        # not searched.
        "retrieve": {"type": "object", "enabled": False}}
_DYNAMIC = [{f"dicom_{suffix}": {"match": f"*_{suffix}", "mapping": mapping}}
            for suffix, mapping in SUFFIX_MAPPINGS.items()]
# Strings become keywords and every number a double: the first value seen must not decide
# (a dynamic float would round 24.3 mm to single precision).
FIELD_TEMPLATES = [
    {f"annotation_fields_{kind}": {"path_match": "annotations.fields.*",
                                   "match_mapping_type": kind, "mapping": mapping}}
    for kind, mapping in (("string", KW), ("long", {"type": "double"}),
                          ("double", {"type": "double"}))]
SETTINGS = {"index": {"number_of_shards": 1, "number_of_replicas": 0,
                      "mapping.total_fields.limit": 6000, "mapping.nested_objects.limit": 10000}}


def series_index_body() -> dict[str, Any]:
    return {"settings": SETTINGS, "mappings": {
        "dynamic_templates": FIELD_TEMPLATES + _DYNAMIC,
        "properties": {**_OWN, "annotations": ANNOTATION}}}


def patients_index_body() -> dict[str, Any]:
    series = {"type": "nested", "properties": {
        **{k: v for k, v in _OWN.items() if k not in ("files", "retrieve", "site",
                                                     "patient_id", "patient_key")},
        **{name: SUFFIX_MAPPINGS[field_suffix(name)] for name in SUMMARY_ATTRIBUTES},
        "days_from": {"type": "object", "dynamic": True}}}
    return {"settings": SETTINGS, "mappings": {
        "dynamic": "strict", "dynamic_templates": FIELD_TEMPLATES, "properties": {
        "site": KW, "patient_id": KW, "patient_key": KW, "modalities": KW,
        "events": {"type": "object", "dynamic": True},
        "series": series, "annotations": ANNOTATION}}}
