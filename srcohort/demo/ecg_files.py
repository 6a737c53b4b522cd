"""Synthetic resting ECGs, written the way hospitals export them (docs/ecg-formats.md).

The readers must meet the files carts and ECG management systems write, without patient data:
this module invents a 12-lead recording (a dipole model: per beat a sum of gaussian waves, each
with a direction in the body, projected on every lead; a wide, notched, left-directed QRS with
a discordant T wave when the patient has left bundle branch block) and writes it as GE MUSE XML,
Philips XML (XLI-compressed, as PageWriter carts write it), HL7 aECG, SCP-ECG and DICOM.
Everything derives from the arguments and the seed, so a rerun writes the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import struct
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from srcohort.sources.ecg.model import STANDARD_LEADS, EcgRecording
from srcohort.sources.ecg.utils import STATEMENTS
from srcohort.uids import derived_uid
from srcohort.waveform import ecg_dataset

RATE_HZ = 500.0
DURATION_S = 10.0
LIMB_DERIVED = ("III", "aVR", "aVL", "aVF")
# Lead directions: frontal leads in the x (left) / y (inferior) plane, chest leads in the
# x / z (anterior) plane at their usual angles from the left (V6) to the front (V2) and right.
_FRONTAL = {"I": 0.0, "II": 60.0}
_CHEST = {"V1": 115.0, "V2": 90.0, "V3": 75.0, "V4": 60.0, "V5": 30.0, "V6": 0.0,
          "V7": -30.0, "V8": -60.0, "V9": -90.0}


@dataclass(frozen=True)
class Wave:
    """One deflection of a beat: centre relative to the R peak (s), width (s), amplitude (mV),
    and the direction (x left, y inferior, z anterior) of the heart vector it stands for."""

    offset: float
    width: float
    amplitude: float
    direction: tuple[float, float, float]


P_WAVE = Wave(-0.170, 0.022, 0.12, (0.5, 0.85, 0.1))
NORMAL_BEAT = (P_WAVE,
               Wave(-0.022, 0.008, 0.15, (-0.6, 0.1, 0.8)),      # septal q: left to right
               Wave(0.000, 0.010, 1.40, (0.7, 0.6, -0.35)),      # R
               Wave(0.024, 0.009, 0.50, (-0.3, -0.4, -0.85)),    # S
               Wave(0.300, 0.045, 0.35, (0.6, 0.6, 0.4)))        # T
LBBB_BEAT = (P_WAVE,
             Wave(-0.030, 0.020, 0.90, (0.8, 0.2, -0.55)),       # septum right to left: no q
             Wave(0.035, 0.022, 1.10, (0.85, 0.1, -0.5)),        # late notch of a wide R
             Wave(0.330, 0.050, 0.30, (-0.6, -0.2, 0.6)))        # T discordant to the QRS
# Intervals (ms) and axes (deg) a cart would report for these morphologies.
NORMAL_MEASURES = {"pr_interval": 160, "qrs_duration": 92, "qt_interval": 384,
                   "p_axis": 60, "qrs_axis": 41, "t_axis": 45}
LBBB_MEASURES = {"pr_interval": 172, "qrs_duration": 148, "qt_interval": 440,
                 "p_axis": 60, "qrs_axis": 10, "t_axis": -162}


def synthetic_recording(patient_id: str, *, patient_name: str, birth_date: dt.date, sex: str,
                        acquired: dt.datetime, lbbb: bool, seed: int,
                        leads: tuple[str, ...] = STANDARD_LEADS,
                        duration_s: float = DURATION_S, rate_hz: float = RATE_HZ) -> EcgRecording:
    """A 1 µV-resolution recording of ``leads`` with the measurements and findings it shows.

    Limb leads other than I and II follow from I and II exactly (Einthoven, Goldberger), as on
    a real cart; ``leads`` may add chest leads V7-V9 (posterior), for recordings beyond 12 leads.
    """
    rng = np.random.default_rng([seed, zlib.crc32(patient_id.encode())])
    t = np.arange(int(round(duration_s * rate_hz))) / rate_hz
    rr = 60.0 / rng.uniform(55, 95)
    beats = np.cumsum(rr * rng.uniform(0.97, 1.03, size=int(duration_s / rr) + 2)) - rr + 0.4
    morphology = LBBB_BEAT if lbbb else NORMAL_BEAT
    vectors = {name: (math.cos(math.radians(a)), math.sin(math.radians(a)), 0.0)
               for name, a in _FRONTAL.items()}
    vectors |= {name: (math.cos(math.radians(a)), 0.0, math.sin(math.radians(a)))
                for name, a in _CHEST.items()}
    independent = ("I", "II") + tuple(n for n in leads if n in _CHEST)
    signal = {}
    for name in independent:
        trace = sum(_wave_train(t, beats, wave, vectors[name]) for wave in morphology)
        wander = 0.04 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 2 * np.pi))
        signal[name] = np.round((trace + wander + rng.normal(0, 0.008, t.size)) * 1000)  # µV
    one, two = signal["I"], signal["II"]
    signal |= {"III": two - one, "aVR": -(one + two) / 2, "aVL": one - two / 2,
               "aVF": two - one / 2}
    qt = (LBBB_MEASURES if lbbb else NORMAL_MEASURES)["qt_interval"]
    measurements = {**(LBBB_MEASURES if lbbb else NORMAL_MEASURES),
                    "heart_rate": round(60 / rr), "rr_interval": round(rr * 1000),
                    "qtc_interval": round(qt / math.sqrt(rr))}
    return EcgRecording(
        patient_id=patient_id, source_format="synthetic", sampling_rate=rate_hz,
        leads={name: signal[name] for name in leads}, acquired=acquired,
        measurements={k: float(v) for k, v in measurements.items()},
        findings=["SINUS_RHYTHM"] + (["LBBB"] if lbbb else []), patient_name=patient_name,
        birth_date=birth_date, sex=sex, resolution_uv=1.0)


def _wave_train(t: np.ndarray, beats: np.ndarray, wave: Wave,
                lead: tuple[float, float, float]) -> np.ndarray:
    direction = np.asarray(wave.direction) / np.linalg.norm(wave.direction)
    gain = wave.amplitude * float(direction @ np.asarray(lead))
    centres = beats[:, None] + wave.offset
    return gain * np.exp(-0.5 * ((t[None, :] - centres) / wave.width) ** 2).sum(axis=0)


def _counts(samples: np.ndarray, step_uv: float) -> np.ndarray:
    return np.rint(np.asarray(samples) / step_uv).astype(np.int64)


def _family_given(recording: EcgRecording) -> tuple[str, str]:
    family, _, given = recording.patient_name.partition("^")
    return family, given.split("^")[0]


def _sub(parent: ET.Element, tag: str, text: object = None, **attributes: object) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attributes.items()})
    if text is not None:
        element.text = str(text)
    return element


def _statements(recording: EcgRecording) -> list[str]:
    return [STATEMENTS[finding] for finding in recording.findings]


def _integer(recording: EcgRecording, name: str) -> str:
    value = recording.measurements.get(name)
    return "" if value is None else str(int(round(value)))


# GE MUSE XML ------------------------------------------------------------------------------

MUSE_UV_PER_BIT = 4.88
MUSE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")   # MUSE stores the independent 8
MUSE_MEASUREMENTS = {"VentricularRate": "heart_rate", "PRInterval": "pr_interval",
                     "QRSDuration": "qrs_duration", "QTInterval": "qt_interval",
                     "QTCorrected": "qtc_interval", "PAxis": "p_axis", "RAxis": "qrs_axis",
                     "TAxis": "t_axis"}


def write_muse(recording: EcgRecording, path: Path) -> Path:
    """A MUSE ``RestingECG`` export: 8 rhythm leads, Base64 int16 LE, CRC32 per lead."""
    family, given = _family_given(recording)
    acquired = recording.acquired or dt.datetime(1970, 1, 1)
    root = ET.Element("RestingECG")
    _sub(_sub(root, "MuseInfo"), "MuseVersion", "9.0.10.18167")
    demographics = _sub(root, "PatientDemographics")
    _sub(demographics, "PatientID", recording.patient_id)
    if recording.birth_date:
        _sub(demographics, "DateofBirth", recording.birth_date.strftime("%m-%d-%Y"))
    _sub(demographics, "Gender", {"M": "MALE", "F": "FEMALE"}.get(recording.sex, "UNKNOWN"))
    _sub(demographics, "PatientLastName", family)
    _sub(demographics, "PatientFirstName", given)
    test = _sub(root, "TestDemographics")
    _sub(test, "DataType", "RESTING")
    _sub(test, "AcquisitionDevice", "MAC55")
    _sub(test, "Status", "CONFIRMED")
    _sub(test, "AcquisitionTime", acquired.strftime("%H:%M:%S"))
    _sub(test, "AcquisitionDate", acquired.strftime("%m-%d-%Y"))
    measures = _sub(root, "RestingECGMeasurements")
    for tag, name in MUSE_MEASUREMENTS.items():
        _sub(measures, tag, _integer(recording, name))
    _sub(_sub(root, "QRSTimesTypes"), "GlobalRR", _integer(recording, "rr_interval"))
    diagnosis = _sub(root, "Diagnosis")
    _sub(diagnosis, "Modality", "RESTING")
    for text in _statements(recording):
        statement = _sub(diagnosis, "DiagnosisStatement")
        _sub(statement, "StmtFlag", "ENDSLINE")
        _sub(statement, "StmtText", text)
    waveform = _sub(root, "Waveform")
    _sub(waveform, "WaveformType", "Rhythm")
    _sub(waveform, "WaveformStartTime", 0)
    stored = [lead for lead in MUSE_LEADS if lead in recording.leads]
    _sub(waveform, "NumberofLeads", len(stored))
    _sub(waveform, "SampleType", "CONTINUOUS_SAMPLES")
    _sub(waveform, "SampleBase", int(recording.sampling_rate))
    _sub(waveform, "SampleExponent", 0)
    for lead in stored:
        payload = _counts(recording.leads[lead], MUSE_UV_PER_BIT).astype("<i2").tobytes()
        data = _sub(waveform, "LeadData")
        _sub(data, "LeadByteCountTotal", len(payload))
        _sub(data, "LeadSampleCountTotal", len(payload) // 2)
        _sub(data, "LeadAmplitudeUnitsPerBit", MUSE_UV_PER_BIT)
        _sub(data, "LeadAmplitudeUnits", "MICROVOLTS")
        _sub(data, "LeadID", lead)
        _sub(data, "LeadSampleSize", 2)
        _sub(data, "LeadDataCRC32", zlib.crc32(payload))
        _sub(data, "WaveFormData", base64.encodebytes(payload).decode("ascii"))
    declaration, _, body = ET.tostring(root, encoding="ISO-8859-1",
                                       xml_declaration=True).partition(b"\n")
    path.write_bytes(declaration + b'\n<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n' + body)
    return path


# Philips XML with XLI compression ---------------------------------------------------------

PHILIPS_UV_PER_COUNT = 5.0
XLI_CODE_BITS = 10


def write_philips(recording: EcgRecording, path: Path) -> Path:
    """A Philips ``restingecgdata`` 1.04 document, the 12 leads XLI-compressed (Base64)."""
    family, given = _family_given(recording)
    acquired = recording.acquired or dt.datetime(1970, 1, 1)
    leads = [lead for lead in STANDARD_LEADS if lead in recording.leads]
    root = ET.Element("restingecgdata")
    info = _sub(root, "documentinfo")
    _sub(info, "documentname", path.name)
    _sub(info, "documenttype", "PhilipsECG")
    _sub(info, "documentversion", "1.04")
    patient = _sub(_sub(root, "patient"), "generalpatientdata")
    _sub(patient, "patientid", recording.patient_id)
    name = _sub(patient, "name")
    _sub(name, "lastname", family)
    _sub(name, "firstname", given)
    if recording.birth_date:
        _sub(_sub(patient, "age"), "dateofbirth", recording.birth_date.isoformat())
    _sub(patient, "sex", {"M": "Male", "F": "Female"}.get(recording.sex, "Unspecified"))
    acquisition = _sub(root, "dataacquisition", date=acquired.strftime("%Y-%m-%d"),
                       time=acquired.strftime("%H:%M:%S"))
    _sub(acquisition, "machine", "PageWriter TC50", machineid="1",
         detaildescription="Philips Medical Products:860306:A.07.07.07")
    signal = _sub(acquisition, "signalcharacteristics")
    for tag, value in (("samplingrate", int(recording.sampling_rate)),
                       ("resolution", PHILIPS_UV_PER_COUNT), ("acquisitiontype", "STD-12"),
                       ("bitspersample", 16), ("signaloffset", 0), ("signalsigned", "True"),
                       ("numberchannelsvalid", len(leads)),
                       ("numberchannelsallocated", len(leads))):
        _sub(signal, tag, value)
    interpretation = _sub(_sub(root, "interpretations"), "interpretation")
    measures = _sub(interpretation, "globalmeasurements")
    for tag, name in (("heartrate", "heart_rate"), ("rrint", "rr_interval"),
                      ("print", "pr_interval"), ("qrsdur", "qrs_duration"),
                      ("qtint", "qt_interval"), ("qtcb", "qtc_interval"),
                      ("pfrontaxis", "p_axis"), ("qrsfrontaxis", "qrs_axis"),
                      ("tfrontaxis", "t_axis")):
        _sub(measures, tag, _integer(recording, name))
    for text in _statements(recording):
        statement = _sub(interpretation, "statement")
        _sub(statement, "leftstatement", text)
    counts = [_counts(recording.leads[lead], PHILIPS_UV_PER_COUNT) for lead in leads]
    _sub(_sub(root, "waveforms"), "parsedwaveforms", xli_encode(counts),
         dataencoding="Base64", compression="XLI", compressflag="True",
         samplespersecond=int(recording.sampling_rate),
         durationperchannel=int(round(recording.samples * 1000 / recording.sampling_rate)),
         numberofleads=len(leads), leadlabels=" ".join(leads), signalsigned="True")
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def xli_encode(leads: list[np.ndarray]) -> str:
    """Base64 XLI: per lead, an 8-byte header and LZW-compressed second-order residuals.

    With the 12 standard leads in order, III, aVR, aVL and aVF are stored as residuals of the
    values predicted from I and II, which is what makes XLI small; a reader rebuilds them.
    """
    chunks = [np.asarray(lead, dtype=np.int64) for lead in leads]
    if len(chunks) >= 6:
        one, two, three, avr, avl, avf = chunks[:6]
        chunks[2:6] = [two - one - three, -avr - (one + two) // 2,
                       (one - three) // 2 - avl, (two + three) // 2 - avf]
    out = bytearray()
    for samples in chunks:
        codes, start = _xli_codes(samples)
        words = codes.astype(np.int16).view(np.uint16)
        body = _lzw(bytes((words >> 8).astype(np.uint8)) + bytes((words & 0xFF).astype(np.uint8)))
        out += struct.pack("<iHh", len(body), 0, start) + body
    return base64.b64encode(bytes(out)).decode("ascii")


def _xli_codes(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """XLI delta codes and the chunk's start value for ``samples`` (at least 3).

    A reader predicts ``x[i] = 2 x[i-1] - x[i-2] - c[i]`` where ``c[2]`` is the header's start
    value and ``c[i] = code[i-1] - 64`` after it; the first two codes are the samples.
    """
    corrections = 2 * samples[1:-1] - samples[:-2] - samples[2:]      # c[2] .. c[n-1]
    codes = np.concatenate([samples[:2], corrections[1:] + 64, [64]])
    return codes, int(corrections[0])


def _lzw(data: bytes) -> bytes:
    """LZW with 10-bit codes, most significant bit first, table frozen at code 1022."""
    table = {bytes([i]): i for i in range(256)}
    limit = (1 << XLI_CODE_BITS) - 2
    codes, word = [], b""
    for value in data:
        longer = word + bytes([value])
        if longer in table:
            word = longer
            continue
        codes.append(table[word])
        if len(table) <= limit:
            table[longer] = len(table)
        word = bytes([value])
    if word:
        codes.append(table[word])
    bits = "".join(format(code, f"0{XLI_CODE_BITS}b") for code in codes)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


# HL7 aECG ---------------------------------------------------------------------------------

AECG_UV_PER_DIGIT = 2.5
HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ACT_CODE = "2.16.840.1.113883.5.4"
MDC = "2.16.840.1.113883.6.24"
AECG_MEASUREMENTS = {"heart_rate": ("MDC_ECG_HEART_RATE", "bpm"),
                     "rr_interval": ("MDC_ECG_TIME_PD_RR", "ms"),
                     "pr_interval": ("MDC_ECG_TIME_PD_PR", "ms"),
                     "qrs_duration": ("MDC_ECG_TIME_PD_QRS", "ms"),
                     "qt_interval": ("MDC_ECG_TIME_PD_QT", "ms"),
                     "qtc_interval": ("MDC_ECG_TIME_PD_QTc", "ms"),
                     "p_axis": ("MDC_ECG_ANGLE_P_FRONT", "deg"),
                     "qrs_axis": ("MDC_ECG_ANGLE_QRS_FRONT", "deg"),
                     "t_axis": ("MDC_ECG_ANGLE_T_FRONT", "deg")}


def write_aecg(recording: EcgRecording, path: Path) -> Path:
    """An ``AnnotatedECG``: one rhythm series, leads as SLIST_PQ digits, machine annotations."""
    family, given = _family_given(recording)
    acquired = recording.acquired or dt.datetime(1970, 1, 1)
    end = acquired + dt.timedelta(seconds=recording.samples / recording.sampling_rate)
    ts = "%Y%m%d%H%M%S"

    def typed(parent: ET.Element, kind: str, **attributes: object) -> ET.Element:
        element = _sub(parent, "value", **attributes)
        element.set("xsi:type", kind)
        return element

    root = ET.Element("AnnotatedECG", {"xmlns": HL7, "xmlns:xsi": XSI})
    document = derived_uid("aecg", recording.patient_id, acquired.isoformat())
    _sub(root, "id", root=str(uuid.UUID(int=int(document.removeprefix("2.25.")))))
    _sub(root, "code", code="93000", codeSystem="2.16.840.1.113883.6.12")
    period = _sub(root, "effectiveTime")
    _sub(period, "low", value=acquired.strftime(ts))
    _sub(period, "high", value=end.strftime(ts))
    subject = _sub(_sub(_sub(_sub(_sub(root, "componentOf"), "timepointEvent"), "componentOf"),
                      "subjectAssignment"), "subject")
    trial_subject = _sub(subject, "trialSubject")
    _sub(trial_subject, "id", extension=recording.patient_id)
    person = _sub(trial_subject, "subjectDemographicPerson")
    name = _sub(person, "name")
    _sub(name, "given", given)
    _sub(name, "family", family)
    if recording.sex:
        _sub(person, "administrativeGenderCode", code=recording.sex,
            codeSystem="2.16.840.1.113883.5.1")
    if recording.birth_date:
        _sub(person, "birthTime", value=recording.birth_date.strftime("%Y%m%d"))
    series = _sub(_sub(root, "component"), "series")
    _sub(series, "code", code="RHYTHM", codeSystem=ACT_CODE)
    series_time = _sub(series, "effectiveTime")
    _sub(series_time, "low", value=acquired.strftime(ts))
    _sub(series_time, "high", value=end.strftime(ts))
    sequences = _sub(_sub(series, "component"), "sequenceSet")
    time = _sub(sequences, "component")
    time_sequence = _sub(time, "sequence")
    _sub(time_sequence, "code", code="TIME_ABSOLUTE", codeSystem=ACT_CODE)
    glist = typed(time_sequence, "GLIST_TS")
    _sub(glist, "head", value=acquired.strftime(ts), unit="s")
    _sub(glist, "increment", value=f"{1 / recording.sampling_rate:g}", unit="s")
    for lead, samples in recording.leads.items():
        sequence = _sub(_sub(sequences, "component"), "sequence")
        _sub(sequence, "code", code=f"MDC_ECG_LEAD_{lead.upper()}", codeSystem=MDC)
        slist = typed(sequence, "SLIST_PQ")
        _sub(slist, "origin", value=0, unit="uV")
        _sub(slist, "scale", value=AECG_UV_PER_DIGIT, unit="uV")
        _sub(slist, "digits", " ".join(map(str, _counts(samples, AECG_UV_PER_DIGIT).tolist())))
    annotations = _sub(_sub(series, "subjectOf"), "annotationSet")
    for name, (code, unit) in AECG_MEASUREMENTS.items():
        if name in recording.measurements:
            annotation = _sub(_sub(annotations, "component"), "annotation")
            _sub(annotation, "code", code=code, codeSystem=MDC)
            typed(annotation, "PQ", value=_integer(recording, name), unit=unit)
    for text in _statements(recording):
        annotation = _sub(_sub(annotations, "component"), "annotation")
        _sub(annotation, "code", code="MDC_ECG_INTERPRETATION_STATEMENT", codeSystem=MDC)
        typed(annotation, "ST").text = text
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


# SCP-ECG ----------------------------------------------------------------------------------

SCP_AVM_NV = 5000                  # amplitude value multiplier: 5 µV per count
SCP_PROTOCOL = 20                  # SCP-ECG version 2.0
SCP_SECTIONS = 12                  # Section 0 points to sections 0-11
SCP_DEFAULT_HUFFMAN = 19999        # Section 2: "use the default Huffman table"
# Lead code of Section 3 (the SCP lead table, same numbers as MDC 2:N).
SCP_LEADS = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8, "V7": 9,
             "III": 61, "aVR": 62, "aVL": 63, "aVF": 64, "V8": 66, "V9": 67}
QRS_ONSET_MS = 200                 # Section 7 boundaries are relative to the reference beat


def write_scp(recording: EcgRecording, path: Path, *, huffman: bool = True) -> Path:
    """An SCP-ECG record: sections 0, 1, (2,) 3, 6, 7 and 8.

    Rhythm data is second differences in the default Huffman table (Section 2 = 19999), as
    most carts write it, or with ``huffman=False`` plain 16-bit samples without Section 2.
    """
    body = {1: _scp_patient(recording), 3: _scp_leads(recording),
            6: _scp_rhythm(recording, huffman), 7: _scp_measurements(recording),
            8: _scp_statements(recording)}
    if huffman:
        body[2] = struct.pack("<H", SCP_DEFAULT_HUFFMAN)
    sections = {sid: _scp_section(sid, data) for sid, data in body.items()}
    pointer_bytes = 10 * SCP_SECTIONS
    offset = 6 + 16 + pointer_bytes + 1            # 1-based index of the first section after 0
    pointers = [struct.pack("<HII", 0, 16 + pointer_bytes, 7)]
    placed = b""
    for sid in range(1, SCP_SECTIONS):
        if sid in sections:
            pointers.append(struct.pack("<HII", sid, len(sections[sid]), offset + len(placed)))
            placed += sections[sid]
        else:
            pointers.append(struct.pack("<HII", sid, 0, 0))
    record = _scp_section(0, b"".join(pointers)) + placed
    size = struct.pack("<I", 6 + len(record))
    path.write_bytes(struct.pack("<H", _crc(size + record)) + size + record)
    return path


def _crc(data: bytes) -> int:
    """CRC-CCITT (polynomial 0x1021, initial 0xFFFF), as SCP-ECG checks records and sections."""
    return binascii.crc_hqx(data, 0xFFFF)


def _scp_section(sid: int, data: bytes) -> bytes:
    data += b"\0" * (len(data) % 2)                 # sections have even lengths
    reserved = b"SCPECG" if sid == 0 else b"\0" * 6
    header = struct.pack("<HIBB", sid, 16 + len(data), SCP_PROTOCOL, SCP_PROTOCOL) + reserved
    return struct.pack("<H", _crc(header + data)) + header + data


def _scp_text(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def _scp_patient(recording: EcgRecording) -> bytes:
    """Section 1 tags: names, id, birth date, sex, acquiring device, acquisition time."""
    family, given = _family_given(recording)
    acquired = recording.acquired or dt.datetime(1970, 1, 1)
    device = (struct.pack("<HHHBB", 0, 0, 1, 0, 255) + b"SYNECG" +
              bytes([SCP_PROTOCOL, 0x90, 0x01, 0x00, 1]) + b"\0" * 16 + bytes([1]) +
              b"\0" + _scp_text("0001") + _scp_text("1.0") + _scp_text("srcohort") +
              _scp_text("Synthetic"))
    tags = [(0, _scp_text(family)), (1, _scp_text(given)), (2, _scp_text(recording.patient_id)),
            (8, bytes([{"M": 1, "F": 2}.get(recording.sex, 0)])), (14, device),
            (25, struct.pack("<HBB", acquired.year, acquired.month, acquired.day)),
            (26, bytes([acquired.hour, acquired.minute, acquired.second]))]
    if recording.birth_date:
        born = recording.birth_date
        tags.append((5, struct.pack("<HBB", born.year, born.month, born.day)))
    return b"".join(struct.pack("<BH", tag, len(value)) + value for tag, value in tags) + \
        struct.pack("<BH", 255, 0)


def _scp_leads(recording: EcgRecording) -> bytes:
    """Section 3: every lead recorded simultaneously over all samples."""
    leads = list(recording.leads)
    flags = 0x04 | (len(leads) << 3)
    return bytes([len(leads), flags]) + b"".join(
        struct.pack("<IIB", 1, recording.samples, SCP_LEADS[lead]) for lead in leads)


def _scp_rhythm(recording: EcgRecording, huffman: bool) -> bytes:
    """Section 6: AVM, sample interval (µs), encoding, then the bytes of every lead."""
    counts = [_counts(s, SCP_AVM_NV / 1000) for s in recording.leads.values()]
    if huffman:
        data = [_default_huffman(_second_differences(c)) for c in counts]
    else:
        data = [c.astype("<i2").tobytes() for c in counts]
    interval = int(round(1e6 / recording.sampling_rate))
    return struct.pack("<HHBB", SCP_AVM_NV, interval, 2 if huffman else 0, 0) + \
        b"".join(struct.pack("<H", len(d)) for d in data) + b"".join(data)


def _second_differences(x: np.ndarray) -> np.ndarray:
    """``d[0] = x[0]``, ``d[1] = x[1]``, ``d[n] = x[n] - 2 x[n-1] + x[n-2]``."""
    return np.concatenate([x[:2], x[2:] - 2 * x[1:-1] + x[:-2]])


def _default_huffman(values: np.ndarray) -> bytes:
    """SCP's default Huffman table: 0 -> ``0``; 1 to 8 -> that many ones, ``0``, sign bit;
    larger values escaped as 9 ones + ``0`` + 8 bits or 10 ones + 16 bits (two's complement)."""
    parts = []
    for value in values.tolist():
        size = abs(value)
        if size <= 8:
            parts.append("1" * size + "0" + ("1" if value < 0 else "0") if size else "0")
        elif -128 <= value <= 127:
            parts.append("1111111110" + format(value & 0xFF, "08b"))
        else:
            parts.append("1111111111" + format(value & 0xFFFF, "016b"))
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def _scp_measurements(recording: EcgRecording) -> bytes:
    """Section 7: one reference beat's wave boundaries and axes, rate and QTc (Bazett)."""
    undefined = 29999

    def get(name: str, offset: int = 0) -> int:
        value = recording.measurements.get(name)
        return undefined if value is None else int(round(value)) + offset

    onset = QRS_ONSET_MS
    p_onset = undefined if "pr_interval" not in recording.measurements else \
        onset - get("pr_interval")
    block = struct.pack("<5H3h", p_onset, undefined, onset, get("qrs_duration", onset),
                        get("qt_interval", onset), get("p_axis"), get("qrs_axis"), get("t_axis"))
    rates = struct.pack("<3HB", get("heart_rate"), undefined, get("qtc_interval"), 1)
    return struct.pack("<BBHH", 1, 0, get("rr_interval"), undefined) + block + \
        struct.pack("<H", 0) + rates


def _scp_statements(recording: EcgRecording) -> bytes:
    """Section 8: the device's (unconfirmed) interpretation statements."""
    acquired = recording.acquired or dt.datetime(1970, 1, 1)
    texts = [_scp_text(text) for text in _statements(recording)]
    return (bytes([0]) + struct.pack("<HBB", acquired.year, acquired.month, acquired.day) +
            bytes([acquired.hour, acquired.minute, acquired.second, len(texts)]) +
            b"".join(bytes([i + 1]) + struct.pack("<H", len(t)) + t for i, t in enumerate(texts)))


# DICOM ------------------------------------------------------------------------------------

def write_dicom(recording: EcgRecording, path: Path) -> Path:
    """A 12-lead (or General) ECG waveform, as a cart with DICOM export writes it."""
    parts = ("demo-ecg", recording.patient_id,
             recording.acquired.isoformat() if recording.acquired else "")
    ds = ecg_dataset(recording, study=None, series_instance_uid=derived_uid(*parts, "series"),
                     sop_instance_uid=derived_uid(*parts, "instance"))
    ds.save_as(path, enforce_file_format=True)
    return path


ECG_WRITERS: dict[str, Callable[[EcgRecording, Path], Path]] = {
    "ge-muse": write_muse, "philips": write_philips, "hl7-aecg": write_aecg,
    "scp": write_scp, "dicom": write_dicom,
}
