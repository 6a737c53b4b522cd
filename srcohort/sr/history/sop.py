"""Patient history SR instance."""

from __future__ import annotations

from typing import Sequence

from pydicom.dataset import Dataset

from srcohort.sr.history.content import CardiovascularPatientHistory
from srcohort.sr.sop import SrcohortComprehensiveSR, sr_kwargs

SERIES_NUMBER = 9001


class PatientHistoryReport(SrcohortComprehensiveSR):
    """A Comprehensive SR whose root is a ``CardiovascularPatientHistory``.

    Evidence is the patient's CT (so the history joins the patient's imaging study) or, for a
    patient without images, a patient context from ``srcohort.sr.evidence``.
    """

    def __init__(self, evidence: Sequence[Dataset], history: CardiovascularPatientHistory, *,
                 series_instance_uid: str, sop_instance_uid: str, institution: str = "") -> None:
        super().__init__(evidence, history, private_codes=True, **sr_kwargs(
            evidence, series_instance_uid=series_instance_uid, sop_instance_uid=sop_instance_uid,
            series_number=SERIES_NUMBER, series_description="Cardiovascular patient history",
            institution=institution))
