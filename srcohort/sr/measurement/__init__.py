"""TAVI planning landmarks and measurements as TID 1500 Measurement Reports."""

from srcohort.sr.measurement.content import Landmark, PlanningMeasurement, TaviPlanningReport
from srcohort.sr.measurement.sop import PlanningMeasurementReport

__all__ = ["Landmark", "PlanningMeasurement", "PlanningMeasurementReport", "TaviPlanningReport"]
