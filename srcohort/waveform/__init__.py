"""DICOM ECG waveform objects (12-lead ECG, General ECG) from an ``EcgRecording``."""

from srcohort.waveform.sop import choose_iod, ecg_dataset

__all__ = ["choose_iod", "ecg_dataset"]
