"""Procedure outcome SR instance."""

from srcohort.sr.sop import SrcohortComprehensiveSR


class ProcedureOutcomeReport(SrcohortComprehensiveSR):
    """A Comprehensive SR whose root is a ``TaviProcedureOutcome``."""

    SERIES_NUMBER = 9002
    SERIES_DESCRIPTION = "TAVI procedure outcome"
