"""Procedure outcome SR instance."""

from __future__ import annotations

from typing import Sequence

from pydicom.dataset import Dataset

from srcohort.sr.procedure.content import TaviProcedureOutcome
from srcohort.sr.sop import SrcohortComprehensiveSR, sr_kwargs

SERIES_NUMBER = 9002


class ProcedureOutcomeReport(SrcohortComprehensiveSR):
    """A Comprehensive SR whose root is a ``TaviProcedureOutcome``."""

    def __init__(self, evidence: Sequence[Dataset], outcome: TaviProcedureOutcome, *,
                 series_instance_uid: str, sop_instance_uid: str, institution: str = "") -> None:
        super().__init__(evidence, outcome, private_codes=True, **sr_kwargs(
            evidence, series_instance_uid=series_instance_uid, sop_instance_uid=sop_instance_uid,
            series_number=SERIES_NUMBER, series_description="TAVI procedure outcome",
            institution=institution))
