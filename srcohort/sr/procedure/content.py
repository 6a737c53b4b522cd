"""Procedure outcome template: the TAVI and whether a pacemaker followed.

No DICOM template covers "pacemaker implantation after TAVI"; this custom tree (root LN 28570-0
"Procedure note", described as data in sr_templates/) holds the procedure, its date, the
Yes/No outcome and its date, and the source codes as text for provenance.
"""

from __future__ import annotations

import highdicom as hd
from highdicom.sr.templates import Template

from srcohort import codes
from srcohort.sr import items
from srcohort.sr.procedure.utils import ProcedureOutcome


class TaviProcedureOutcome(Template):
    """Root container of a procedure outcome SR."""

    def __init__(self, outcome: ProcedureOutcome) -> None:
        root = hd.sr.ContainerContentItem(name=codes.PROCEDURE_REPORT)
        listing = "; ".join(f"{code} {date.isoformat()}" for code, date in outcome.codes)
        content = [
            items.code(codes.PROCEDURE_REPORTED, codes.TAVI),
            items.date(codes.PROCEDURE_DATE, outcome.tavi_date),
            items.code(codes.PACEMAKER_IMPLANTATION, items.yes_no(outcome.pacemaker)),
            items.date(codes.PACEMAKER_DATE, outcome.pacemaker_date),
            items.text(codes.SOURCE_PROCEDURE_CODES, listing),
        ]
        root.ContentSequence = [item for item in content if item is not None]
        super().__init__([root], is_root=True)
