"""Patient history SR instance."""

from srcohort.sr.sop import SrcohortComprehensiveSR


class PatientHistoryReport(SrcohortComprehensiveSR):
    """A Comprehensive SR whose root is a ``CardiovascularPatientHistory``.

    Evidence is the patient's CT (so the history joins the patient's imaging study) or, for a
    patient without images, a patient context from ``srcohort.sr.evidence``.
    """

    SERIES_NUMBER = 9001
    SERIES_DESCRIPTION = "Cardiovascular patient history"
