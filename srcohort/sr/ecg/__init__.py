"""ECG report (TID 3700) on a stored ECG waveform, built from an ``EcgRecording``."""

from srcohort.sr.ecg.content import EcgReport
from srcohort.sr.ecg.sop import EcgReportSR

__all__ = ["EcgReport", "EcgReportSR"]
