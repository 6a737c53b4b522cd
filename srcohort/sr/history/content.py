"""TID 3802 style Cardiovascular Patient History as a highdicom ``Template``.

The tree has the sections of TID 3802 that TAVI registries fill: problem list (diabetes,
left bundle branch block), social history (tobacco smoking) and past surgical history (the
implanted transcatheter valve: model, family, nominal size, date). Findings are CODE items with
Yes/No values rather than present-or-absent items, so that "no diabetes" is searchable and
distinct from "not recorded".
"""

from __future__ import annotations

import datetime as dt

import highdicom as hd
from highdicom.sr.templates import Template

from srcohort import codes
from srcohort.sr import items
from srcohort.sr.history.enum import SmokingStatus

TEMPLATE_ID = "3802"


class CardiovascularPatientHistory(Template):
    """Root container of a patient history SR with the sections that have content."""

    def __init__(self, *, diabetes: bool | None = None, lbbb: bool | None = None,
                 smoking: SmokingStatus | None = None, prosthesis: str | None = None,
                 prosthesis_size_mm: float | None = None, tavi_date: dt.date | None = None,
                 source: str | None = None) -> None:
        root = hd.sr.ContainerContentItem(name=codes.HISTORY, template_id=TEMPLATE_ID)
        content = [
            items.section(codes.PROBLEM_LIST, [
                items.code(codes.DIABETES_MELLITUS, items.yes_no(diabetes)),
                items.code(codes.LEFT_BUNDLE_BRANCH_BLOCK, items.yes_no(lbbb)),
            ]),
            items.section(codes.SOCIAL_HISTORY, [
                items.code(codes.TOBACCO_SMOKING_BEHAVIOR, smoking.code if smoking else None),
            ]),
            items.section(codes.PAST_SURGICAL_HISTORY,
                          _valve_items(prosthesis, prosthesis_size_mm, tavi_date)),
            items.text(codes.SOURCE_DOCUMENT, source),
        ]
        root.ContentSequence = [item for item in content if item is not None]
        super().__init__([root], is_root=True)


def _valve_items(prosthesis: str | None, size_mm: float | None,
                 date: dt.date | None) -> list[items.Item]:
    model, family = codes.PROSTHESES[prosthesis] if prosthesis else (None, None)
    return [
        items.code(codes.PROCEDURE_REPORTED, codes.TAVI if date or prosthesis else None),
        items.date(codes.PROCEDURE_DATE, date),
        items.code(codes.HEART_VALVE_PROSTHESIS, model),
        items.code(codes.PROSTHESIS_FAMILY, family),
        items.num(codes.PROSTHESIS_SIZE, size_mm, "mm"),
    ]
