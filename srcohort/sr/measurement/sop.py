"""Planning measurement SR instance (Comprehensive 3D SR, needed for SCOORD3D)."""

from srcohort.sr.sop import SrcohortComprehensive3DSR


class PlanningMeasurementReport(SrcohortComprehensive3DSR):
    """TID 1500 report (``TaviPlanningReport``) about one CT series, which is its evidence."""

    SERIES_NUMBER = 9003
    SERIES_DESCRIPTION = "TAVI planning measurements"
