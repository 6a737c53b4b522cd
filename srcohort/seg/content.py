"""Segment descriptions: what each segment of a label-map SEG is, in codes.

Segments are numbered 1..N in the order of the structures given (ascending label value), as the
Segmentation IOD requires consecutive numbers. Label maps come from annotators or tools the SEG
cannot name, so the algorithm type is MANUAL, which needs no algorithm identification.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd

from srcohort.seg.enum import Structure

ALGORITHM_TYPE = hd.seg.SegmentAlgorithmTypeValues.MANUAL


def segment_descriptions(structures: Sequence[Structure]) -> list[hd.seg.SegmentDescription]:
    """One description per structure, segment number = position + 1."""
    return [
        hd.seg.SegmentDescription(
            segment_number=number, segment_label=structure.label,
            segmented_property_category=structure.category,
            segmented_property_type=structure.property_type, algorithm_type=ALGORITHM_TYPE)
        for number, structure in enumerate(structures, start=1)
    ]
