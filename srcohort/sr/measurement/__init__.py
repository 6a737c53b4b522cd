"""TID 1500 Measurement Reports a study declares, written with highdicom's classes."""

from srcohort.sr.measurement.content import (DeclaredMeasurementReport, Group, measurement_report,
                                             report_groups)

__all__ = ["DeclaredMeasurementReport", "Group", "measurement_report", "report_groups"]
