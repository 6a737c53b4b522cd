"""The one in-memory form of a resting ECG, whatever format it came in.

Readers of every vendor format produce an ``EcgRecording``; the DICOM waveform writer and the
ECG report SR consume it. Samples are kept in microvolts as floats so that no reader has to
know about DICOM quantisation, and the writer can pick the sensitivity that loses nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from srcohort.study.load import template_vocabulary
from srcohort.study.model import Term

# The standard 12 leads in the order DICOM 12-lead ECG objects list them.
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

# What an ECG report may carry, as the ECG report template declares it (the one place:
# srcohort/templates/tid3700-ecg-report.yaml): global measurements by canonical name, with
# their code and UCUM unit, and coded findings by canonical name.
MEASUREMENTS: dict[str, Term] = template_vocabulary("3700", "ecg_measurement").terms
MEASUREMENT_UNITS: dict[str, str] = {name: str(term.attributes["unit"])
                                     for name, term in MEASUREMENTS.items()}
FINDING_TERMS: dict[str, Term] = template_vocabulary("3700", "ecg_finding").terms
FINDINGS: tuple[str, ...] = tuple(FINDING_TERMS)


class EcgFormatError(ValueError):
    """The file is not a readable ECG of the claimed format; the message says why."""


@dataclass
class EcgRecording:
    """A resting ECG: identity, acquisition time, per-lead samples, measurements, findings."""

    patient_id: str
    source_format: str                       # "dicom" | "ge-muse" | "philips" | "hl7-aecg" | "scp"
    sampling_rate: float                     # Hz, the same for every lead
    leads: dict[str, np.ndarray]             # lead name (STANDARD_LEADS spelling) -> microvolts
    acquired: dt.datetime | None = None
    measurements: dict[str, float] = field(default_factory=dict)   # keys of MEASUREMENT_UNITS
    findings: list[str] = field(default_factory=list)              # entries of FINDINGS
    patient_name: str = ""
    birth_date: dt.date | None = None
    sex: str = ""                            # "M" | "F" | "O" | ""
    # Smallest step the source stored (µV); the writer must keep values within one such step.
    resolution_uv: float = 1.0
    # The acquiring cart as the source names it (DICOM General Equipment of the waveform).
    manufacturer: str = ""
    manufacturer_model_name: str = ""

    def __post_init__(self) -> None:
        if not self.leads:
            raise EcgFormatError("no leads")
        lengths = {len(v) for v in self.leads.values()}
        if len(lengths) != 1:
            raise EcgFormatError(f"leads differ in length: {sorted(lengths)}")
        if self.sampling_rate <= 0:
            raise EcgFormatError(f"sampling rate {self.sampling_rate} is not positive")
        unknown = set(self.measurements) - MEASUREMENT_UNITS.keys()
        if unknown:
            raise EcgFormatError(f"unknown measurements {sorted(unknown)}")
        unknown = set(self.findings) - set(FINDINGS)
        if unknown:
            raise EcgFormatError(f"unknown findings {sorted(unknown)}")

    @property
    def samples(self) -> int:
        return len(next(iter(self.leads.values())))
