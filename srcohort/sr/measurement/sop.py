"""Planning measurement SR instance (Comprehensive 3D SR, needed for SCOORD3D)."""

from __future__ import annotations

from typing import Sequence

from pydicom.dataset import Dataset

from srcohort.sr.measurement.content import TaviPlanningReport
from srcohort.sr.sop import SrcohortComprehensive3DSR, sr_kwargs

SERIES_NUMBER = 9003


class PlanningMeasurementReport(SrcohortComprehensive3DSR):
    """TID 1500 report about one CT series, which is its evidence."""

    def __init__(self, evidence: Sequence[Dataset], report: TaviPlanningReport, *,
                 series_instance_uid: str, sop_instance_uid: str, institution: str = "") -> None:
        super().__init__(evidence, report, private_codes=True, **sr_kwargs(
            evidence, series_instance_uid=series_instance_uid, sop_instance_uid=sop_instance_uid,
            series_number=SERIES_NUMBER, series_description="TAVI planning measurements",
            institution=institution))
