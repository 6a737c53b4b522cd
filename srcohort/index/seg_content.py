"""SEG -> one nested ``annotation`` object, shaped like an SR's so both are queried alike.

A segmentation says which structures were delineated on which series; its segments (number,
label, category and type codes, algorithm type) become a nested ``segments`` list, so "a SEG
with a calcification segment on the CT" is one nested query. The SR item lists stay empty:
a SEG has no content tree, and keeping the keys lets the roll-up treat every annotation alike.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from srcohort.index.content import Annotation, concept_key

_KEYWORD = {"type": "keyword"}
SEGMENTS_MAPPING = {"type": "nested", "properties": {
    "number": {"type": "integer"}, "label": _KEYWORD, "category": _KEYWORD, "type": _KEYWORD,
    "algorithm_type": _KEYWORD}}


def seg_annotation(ds: Dataset) -> Annotation:
    """The SEG's segments and referenced series (docs/segmentations.md lists the fields)."""
    return {
        "kind": "SEG", "sop_instance_uid": str(ds.SOPInstanceUID),
        "series_instance_uid": str(ds.SeriesInstanceUID), "template": "", "title": "",
        "title_meaning": "", "codes": [], "numbers": [], "points": [], "texts": [], "dates": [],
        "referenced_series": sorted({str(s.SeriesInstanceUID)
                                     for s in ds.get("ReferencedSeriesSequence", [])}),
        "segments": [_segment(item) for item in ds.get("SegmentSequence", [])],
    }


def _segment(item: Dataset) -> dict[str, object]:
    return {
        "number": int(item.SegmentNumber), "label": str(item.get("SegmentLabel", "")),
        "category": _code(item, "SegmentedPropertyCategoryCodeSequence"),
        "type": _code(item, "SegmentedPropertyTypeCodeSequence"),
        "algorithm_type": str(item.get("SegmentAlgorithmType", "")),
    }


def _code(item: Dataset, keyword: str) -> str:
    sequence = item.get(keyword)
    return concept_key(sequence[0]) if sequence else ""
