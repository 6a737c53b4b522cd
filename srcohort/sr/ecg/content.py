"""TID 3700 ECG Report as a highdicom ``Template``, built from an ``EcgRecording``.

The stored ECG waveform is the report's evidence: the TID 3708 section references it as a
WAVEFORM item, and the SR takes patient and study from it. Sections are written only from what
the recording holds: global measurements (TID 3713, inside Quantitative Analysis) only when the
source measured something, findings (TID 3717) and their restatement as the summary (TID 3719)
only when it stated some. Nothing is inferred: no prior-exam section (TID 3702), because a
recording says nothing about earlier ECGs, and no "normal ECG", because the absence of the
findings srcohort reads does not make an ECG normal.
"""

from __future__ import annotations

import datetime as dt
import math

import highdicom as hd
from highdicom.sr import RelationshipTypeValues as Rel
from highdicom.sr.templates import Template
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import (AmbulatoryECGWaveformStorage, GeneralECGWaveformStorage,
                         TwelveLeadECGWaveformStorage)

from srcohort.sources.ecg.model import MEASUREMENT_UNITS, EcgRecording
from srcohort.sr import items
from srcohort.sr.ecg import enum as codes

TEMPLATE_ID = "3700"
ECG_WAVEFORM_CLASSES = frozenset({TwelveLeadECGWaveformStorage, GeneralECGWaveformStorage,
                                  AmbulatoryECGWaveformStorage})


class EcgReport(Template):
    """Root container of the report on one ECG: the waveform, its measurements and findings."""

    def __init__(self, recording: EcgRecording, waveform: Dataset) -> None:
        _check(recording, waveform)
        findings = [codes.FINDINGS[name] for name in dict.fromkeys(recording.findings)]
        root = hd.sr.ContainerContentItem(name=codes.ECG_REPORT, template_id=TEMPLATE_ID)
        content = [
            *hd.sr.LanguageOfContentItemAndDescendants(                           # TID 1204
                hd.sr.CodedConcept.from_code(codes.ENGLISH)),
            items.section(codes.CURRENT_PROCEDURE_DESCRIPTIONS, [                 # TID 3708
                _datetime(codes.PROCEDURE_DATETIME, recording.acquired),
                hd.sr.WaveformContentItem(
                    name=codes.SOURCE_OF_MEASUREMENT, referenced_sop_class_uid=waveform.SOPClassUID,
                    referenced_sop_instance_uid=waveform.SOPInstanceUID,
                    relationship_type=Rel.CONTAINS)]),
            items.section(codes.QUANTITATIVE_ANALYSIS, [                          # TID 3713
                items.section(codes.ECG_GLOBAL_MEASUREMENTS, [
                    items.num(codes.MEASUREMENT_CODES[name], recording.measurements.get(name), unit)
                    for name, unit in MEASUREMENT_UNITS.items()])]),
            items.section(codes.PATIENT_CHARACTERISTICS,                          # TID 3704
                          _characteristics(recording, waveform)),
            items.section(codes.QUALITATIVE_ANALYSIS,                             # TID 3717
                          [items.code(codes.ECG_FINDING, finding) for finding in findings]),
            items.section(codes.SUMMARY, [                                        # TID 3719
                items.text(codes.SUMMARY, "; ".join(finding.meaning for finding in findings))]),
        ]
        root.ContentSequence = [item for item in content if item is not None]
        super().__init__([root], is_root=True)


def _check(recording: EcgRecording, waveform: Dataset) -> None:
    """Refuse what would make a false or invalid report, naming the reason."""
    sop_class = str(waveform.get("SOPClassUID", ""))
    if sop_class not in ECG_WAVEFORM_CLASSES:
        raise ValueError(f"evidence {waveform.get('SOPInstanceUID', '(no SOP Instance UID)')} is "
                         f"not an ECG waveform: SOP class {sop_class or '(none)'}")
    if str(waveform.get("PatientID", "")) != recording.patient_id:
        raise ValueError(f"waveform {waveform.SOPInstanceUID} belongs to patient "
                         f"{waveform.get('PatientID', '')!r}, the recording to "
                         f"{recording.patient_id!r}")
    if recording.sex and recording.sex not in codes.SEXES:
        raise ValueError(f"sex {recording.sex!r} of patient {recording.patient_id!r} is not one "
                         f"of {sorted(codes.SEXES)}")
    for name, value in recording.measurements.items():
        if not math.isfinite(value):
            raise ValueError(f"measurement {name} of patient {recording.patient_id!r} is "
                             f"{value}, not a number")


def _datetime(name: Code, value: dt.datetime | None) -> hd.sr.DateTimeContentItem | None:
    return None if value is None else hd.sr.DateTimeContentItem(
        name=name, value=value, relationship_type=Rel.CONTAINS)


def _characteristics(recording: EcgRecording, waveform: Dataset) -> list[items.Item]:
    """Age at acquisition and sex from the recording; height and weight from the waveform's
    Patient Study attributes, where the acquiring cart recorded them."""
    height_m, weight_kg = waveform.get("PatientSize"), waveform.get("PatientWeight")
    return [
        items.num(codes.SUBJECT_AGE, _age_years(recording), "a"),
        items.code(codes.SUBJECT_SEX, codes.SEXES[recording.sex] if recording.sex else None),
        items.num(codes.BODY_HEIGHT, float(height_m) * 100 if height_m else None, "cm"),
        items.num(codes.BODY_WEIGHT, float(weight_kg) if weight_kg else None, "kg"),
    ]


def _age_years(recording: EcgRecording) -> int | None:
    """Completed years on the day of acquisition; unknown without both dates."""
    born, acquired = recording.birth_date, recording.acquired
    if born is None or acquired is None:
        return None
    day = acquired.date()
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    if years < 0:
        raise ValueError(f"patient {recording.patient_id!r} was born on {born.isoformat()}, "
                         f"after the ECG of {day.isoformat()}")
    return years
