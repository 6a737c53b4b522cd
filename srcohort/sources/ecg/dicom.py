"""DICOM ECG waveforms (12-lead, General, Ambulatory ECG) -> ``EcgRecording``.

The one reading of DICOM ECG waveforms: the converter reads sites' files with it and the
training export reads the waveforms srcohort wrote with it (``export.ecg_arrays``).

Samples come from pydicom's ``waveform_array``, which applies Channel Sensitivity, its
correction factor and Channel Baseline; a channel without sensitivity holds uncalibrated counts
and is refused. Of several multiplex groups the one labelled RHYTHM is read, else the first
that is not a median beat (a median beat group is not a recording). Leads are named from their
CID 3001 code (MDC ``2:N`` or the older SCPECG ``5.6.3-9-N``, which share ``N``), else from
Channel Label (``Lead II``, ``v1``: case and a ``Lead`` prefix aside). Measurements and
statements come from the Waveform Annotation Sequence, as carts write them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (AmbulatoryECGWaveformStorage, GeneralECGWaveformStorage,
                         TwelveLeadECGWaveformStorage)
from pydicom.valuerep import DA, DT, TM

from srcohort.sources.ecg.model import (MEASUREMENT_UNITS, MEASUREMENTS, EcgFormatError,
                                        EcgRecording)
from srcohort.sources.ecg.utils import MICROVOLTS, build, findings_in
from srcohort.waveform.enum import LEAD_CODES

SOURCE_FORMAT = "dicom"
ECG_SOP_CLASSES = {TwelveLeadECGWaveformStorage: "12-lead ECG",
                   GeneralECGWaveformStorage: "General ECG",
                   AmbulatoryECGWaveformStorage: "Ambulatory ECG"}
MEDIAN_GROUP_WORDS = ("MEDIAN", "REPRESENTATIVE", "AVERAGE")
_LEAD_BY_NUMBER = {code.value.split(":")[1]: name for name, code in LEAD_CODES.items()}
_SCPECG_LEAD_PREFIX = "5.6.3-9-"
_STANDARD_BY_LOWER = {name.lower(): name for name in LEAD_CODES}
# Annotation concept -> measurement: srcohort's codes, and the SCPECG codes carts still write.
_MEASUREMENT_BY_CODE = {
    **{(term.concept.scheme_designator, term.concept.value): name
       for name, term in MEASUREMENTS.items()},
    ("SCPECG", "5.10.2.1-3"): "rr_interval", ("SCPECG", "5.13.5-7"): "pr_interval",
    ("SCPECG", "5.13.5-9"): "qrs_duration", ("SCPECG", "5.13.5-11"): "qt_interval",
    ("SCPECG", "5.10.2.5-5"): "qtc_interval", ("SCPECG", "5.10.3-11"): "p_axis",
    ("SCPECG", "5.10.3-13"): "qrs_axis", ("SCPECG", "5.10.3-15"): "t_axis",
}
# Model unit -> {unit (UCUM) a file may use: factor to the model unit}.
_UNIT_FACTORS = {"ms": {"ms": 1.0, "s": 1000.0}, "/min": {"/min": 1.0, "{beats}/min": 1.0,
                 "{beat}/min": 1.0, "1/min": 1.0}, "deg": {"deg": 1.0}}


def is_dicom(header: bytes) -> bool:
    """Whether the first bytes of a file are a DICOM Part 10 preamble and prefix."""
    return header[128:132] == b"DICM"


def read_dicom(path: str | Path) -> EcgRecording:
    """Read the rhythm group of a DICOM ECG waveform with patient, time and annotations."""
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise EcgFormatError(f"{path}: not readable as DICOM: {exc}") from None
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in ECG_SOP_CLASSES:
        raise EcgFormatError(f"{path}: SOP class {sop_class or '(none)'} is not an ECG waveform")
    try:
        return _recording(ds, path)
    except EcgFormatError:
        raise
    except (AttributeError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise EcgFormatError(f"{path}: cannot decode: {type(exc).__name__}: {exc}") from None


def _recording(ds: Dataset, path: Path) -> EcgRecording:
    index = _rhythm_group(ds, path)
    group = ds.WaveformSequence[index]
    _check_group(group, index, path)
    values = ds.waveform_array(index)
    leads: dict[str, np.ndarray] = {}
    steps = []
    for channel, item in enumerate(group.ChannelDefinitionSequence):
        name = _lead_name(item, channel)
        if name in leads:
            raise EcgFormatError(f"{path}: channel {channel + 1} repeats lead {name}")
        factor = _channel_microvolts(item, channel, path)
        leads[name] = values[:, channel] * factor
        steps.append(abs(float(item.get("ChannelSensitivity", 1.0))
                         * float(item.get("ChannelSensitivityCorrectionFactor", 1.0))) * factor)
    measurements, statements = _annotations(ds)
    birth = str(ds.get("PatientBirthDate", "") or "")
    sex = str(ds.get("PatientSex", "") or "")
    return build(
        path, patient_id=str(ds.get("PatientID", "") or ""), source_format=SOURCE_FORMAT,
        sampling_rate=float(group.SamplingFrequency), leads=leads, acquired=_acquired(ds),
        measurements=measurements, findings=findings_in(statements),
        patient_name=str(ds.get("PatientName", "") or ""),
        birth_date=_date(DA(birth)) if birth else None, sex=sex if sex in ("M", "F", "O") else "",
        resolution_uv=min(steps), manufacturer=str(ds.get("Manufacturer", "") or ""),
        manufacturer_model_name=str(ds.get("ManufacturerModelName", "") or ""))


def _rhythm_group(ds: Dataset, path: Path) -> int:
    groups = ds.get("WaveformSequence") or []
    labels = [str(group.get("MultiplexGroupLabel", "")).strip().upper() for group in groups]
    if "RHYTHM" in labels:
        return labels.index("RHYTHM")
    for index, label in enumerate(labels):
        if not any(word in label for word in MEDIAN_GROUP_WORDS):
            return index
    raise EcgFormatError(f"{path}: no rhythm multiplex group in the Waveform Sequence "
                         f"({len(groups)} group(s), all median beats)")


def _check_group(group: Dataset, index: int, path: Path) -> None:
    """Declared channels and samples must match the definitions and the data."""
    channels = int(group.NumberOfWaveformChannels)
    definitions = len(group.get("ChannelDefinitionSequence") or [])
    if definitions != channels:
        raise EcgFormatError(f"{path}: multiplex group {index + 1} declares {channels} channels "
                             f"but defines {definitions}")
    expected = channels * int(group.NumberOfWaveformSamples) * int(group.WaveformBitsAllocated) // 8
    if len(group.WaveformData) < expected:
        raise EcgFormatError(f"{path}: multiplex group {index + 1} holds {len(group.WaveformData)} "
                             f"bytes of Waveform Data, {expected} expected")
    if "WaveformPaddingValue" in group:
        raw = np.frombuffer(group.WaveformData[:expected], dtype=_sample_dtype(group))
        padding = np.frombuffer(group.WaveformPaddingValue, dtype=_sample_dtype(group))[0]
        if np.any(raw == padding):
            raise EcgFormatError(f"{path}: multiplex group {index + 1} has padded (missing) "
                                 "samples, which a recording cannot represent")


def _sample_dtype(group: Dataset) -> str:
    return {8: "<i1", 16: "<i2", 32: "<i4", 64: "<i8"}[int(group.WaveformBitsAllocated)]


def _lead_name(item: Dataset, channel: int) -> str:
    source = (item.get("ChannelSourceSequence") or [Dataset()])[0]
    value = str(source.get("CodeValue", ""))
    number = value[len(_SCPECG_LEAD_PREFIX):] if value.startswith(_SCPECG_LEAD_PREFIX) \
        else value.partition(":")[2] if value.startswith("2:") else ""
    if number in _LEAD_BY_NUMBER:
        return _LEAD_BY_NUMBER[number]
    label = str(item.get("ChannelLabel", "")).strip()
    if label.lower().startswith("lead "):
        label = label[len("lead "):].strip()
    return _STANDARD_BY_LOWER.get(label.lower(), label) or f"channel {channel + 1}"


def _channel_microvolts(item: Dataset, channel: int, path: Path) -> float:
    units = item.get("ChannelSensitivityUnitsSequence") or []
    unit = str(units[0].get("CodeValue", "")) if units else ""
    if unit not in MICROVOLTS:
        raise EcgFormatError(f"{path}: channel {channel + 1} is in {unit or 'no unit'}, "
                             "not a voltage")
    if "ChannelSensitivity" not in item:
        raise EcgFormatError(f"{path}: channel {channel + 1} has no Channel Sensitivity: "
                             "uncalibrated counts, not volts")
    return MICROVOLTS[unit]


def _annotations(ds: Dataset) -> tuple[dict[str, float], list[str]]:
    """Global measurements (whole-group numeric items) and statement texts."""
    measurements: dict[str, float] = {}
    statements: list[str] = []
    for item in ds.get("WaveformAnnotationSequence") or []:
        if any(k in item for k in ("ReferencedSamplePositions", "ReferencedTimeOffsets",
                                   "ReferencedDateTime")):
            continue                     # fiducial points, not global content
        names = item.get("ConceptNameCodeSequence") or []
        concept = names[0] if names else Dataset()
        if "NumericValue" in item:
            name = _MEASUREMENT_BY_CODE.get((str(concept.get("CodingSchemeDesignator", "")),
                                             str(concept.get("CodeValue", ""))))
            value = _in_model_unit(name, item)
            if name and value is not None:
                measurements.setdefault(name, value)
        elif "UnformattedTextValue" in item:
            statements.append(str(item.UnformattedTextValue))
        elif "CodeMeaning" in concept:
            statements.append(str(concept.CodeMeaning))
    return measurements, statements


def _in_model_unit(name: str | None, item: Dataset) -> float | None:
    if name is None:
        return None
    units = item.get("MeasurementUnitsCodeSequence") or []
    unit = str(units[0].get("CodeValue", "")) if units else ""
    factor = _UNIT_FACTORS[MEASUREMENT_UNITS[name]].get(unit)
    return None if factor is None else float(item.NumericValue) * factor


def _acquired(ds: Dataset) -> dt.datetime | None:
    """Acquisition DateTime, else Content Date and Time, else Study Date and Time."""
    if ds.get("AcquisitionDateTime"):
        stamp = DT(str(ds.AcquisitionDateTime))
        return dt.datetime.combine(stamp.date(), stamp.timetz())
    for day, clock in (("ContentDate", "ContentTime"), ("StudyDate", "StudyTime")):
        if ds.get(day) and ds.get(clock):
            return dt.datetime.combine(_date(DA(str(ds.get(day)))), TM(str(ds.get(clock))))
    return None


def _date(value: dt.date) -> dt.date:
    """A plain date: pydicom's DA keeps its DICOM string form, the model wants none."""
    return dt.date(value.year, value.month, value.day)
