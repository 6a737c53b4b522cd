"""Cardiovascular patient history (TID 3802 style) built from registry tables."""

from srcohort.sr.history.content import CardiovascularPatientHistory
from srcohort.sr.history.sop import PatientHistoryReport

__all__ = ["CardiovascularPatientHistory", "PatientHistoryReport"]
