"""ECG report SR instance."""

from __future__ import annotations

from pydicom.dataset import Dataset

from srcohort.sr import items
from srcohort.sr.ecg.content import EcgReport
from srcohort.sr.sop import SrcohortComprehensiveSR
from srcohort.uids import derived_uid


class EcgReportSR(SrcohortComprehensiveSR):
    """A Comprehensive SR whose root is an ``EcgReport`` on one stored ECG waveform.

    The waveform is the only evidence, so the report joins the waveform's patient and study.
    UIDs derive from site and waveform instance rather than from the patient: a patient may
    have many ECGs, and converting the same waveform again must give the same report.
    """

    SERIES_NUMBER = 9004
    SERIES_DESCRIPTION = "ECG report"

    def __init__(self, waveform: Dataset, content: EcgReport, *, site: str,
                 institution: str = "") -> None:
        key = (site, str(waveform.SOPInstanceUID), "ecg-report")
        super().__init__([waveform], _without_waveform_items(content), institution=institution,
                         series_instance_uid=derived_uid(*key, "series"),
                         sop_instance_uid=derived_uid(*key, "instance"))
        # highdicom 0.28 re-parses the content it is given and has no parser for WAVEFORM
        # items (KeyError in value_types._get_content_item_class), so it checked the tree
        # without them; the document gets the whole tree. Only highdicom's parsed view
        # (``self.content``) lacks the waveform reference.
        self.ContentSequence = content[0].ContentSequence


def _without_waveform_items(content: EcgReport) -> EcgReport:
    pruned = items.clone(content)
    stack = list(pruned)
    while stack:
        item = stack.pop()
        if "ContentSequence" in item:
            item.ContentSequence = [child for child in item.ContentSequence
                                    if child.ValueType != "WAVEFORM"]
            stack.extend(item.ContentSequence)
    return pruned
