"""What the ECG readers share: running an ecgdatakit parser safely, turning its record into an
``EcgRecording``, and recognising findings in statement text.

ecgdatakit (Apache-2.0) parses the vendor formats well; srcohort's part is the contract around
it: every failure names the file, a checksum mismatch is an error (a corrupted waveform must
not reach a training set), samples end up in microvolts with the step the source stored, and
the vendor's free-text statements become the canonical findings of the model.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from ecgdatakit import ChecksumWarning, ECGDataKitError, ECGRecord, Lead, Parser

from srcohort.logs import get_logger
from srcohort.sources.ecg.model import FINDING_TERMS, EcgFormatError, EcgRecording

log = get_logger(__name__)

MICROVOLTS = {"uV": 1.0, "mV": 1000.0, "V": 1e6, "nV": 1e-3}   # voltage unit -> µV

# Wording of each finding where srcohort writes statements: the meaning of its code.
STATEMENTS = {name: term.meaning for name, term in FINDING_TERMS.items()}
# How carts word them (English, German, Italian); an incomplete bundle branch block is not one.
_NOT_INCOMPLETE = r"(?<!incomplete )(?<!inkompletter )(?<!incompleto )"
_FINDING_PATTERNS = {
    "SINUS_RHYTHM": r"sinus rhythm|sinusrhythmus|ritmo sinusale",
    "LBBB": _NOT_INCOMPLETE + r"(?:left bundle[- ]branch block|\blbbb\b|linksschenkelblock"
                              r"|blocco di branca sinistr)",
    "RBBB": _NOT_INCOMPLETE + r"(?:right bundle[- ]branch block|\brbbb\b|rechtsschenkelblock"
                              r"|blocco di branca destr)",
    "AF": r"atrial fibrillation|vorhofflimmern|fibrillazione atriale",
    "AV_BLOCK_1": r"(?:first|1st)[- ]degree (?:av|a-v|atrioventricular) block"
                  r"|\bav[- ]?block (?:i|1)\b|blocco av di (?:i|primo) grado",
    "LVH": r"left ventricular hypertrophy|\blvh\b|linksventrikul(?:ä|ae)re hypertrophie"
           r"|ipertrofia ventricolare sinistra",
}
_FINDING_RE = {name: re.compile(pattern, re.IGNORECASE)
               for name, pattern in _FINDING_PATTERNS.items()}


def findings_in(statements: Iterable[str]) -> list[str]:
    """The findings (model names) that any of ``statements`` states."""
    text = "\n".join(statements)
    return [name for name, pattern in _FINDING_RE.items() if pattern.search(text)]


def recogniser(parser: type[Parser]) -> Callable[[bytes], bool]:
    """Whether a file's first bytes are of ``parser``'s format (ecgdatakit's own sniffing)."""
    return lambda header: parser.can_parse(Path(), header)


def parse_with(parser: type[Parser], path: Path) -> ECGRecord:
    """Run an ecgdatakit parser on ``path``; failures and checksum mismatches name the file.

    Parsers meet untrusted bytes, so any exception while decoding means the file is not
    readable as that format. Other parser warnings (an ignored extra waveform, say) are logged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            record = parser().parse(path)
        except OSError:
            raise
        except ECGDataKitError as exc:
            raise EcgFormatError(f"{path}: {_reason(exc, path)}") from None
        except Exception as exc:  # noqa: BLE001 - untrusted input, see docstring
            raise EcgFormatError(f"{path}: cannot decode: {type(exc).__name__}: "
                                 f"{_reason(exc, path)}") from None
    for warning in caught:
        if issubclass(warning.category, ChecksumWarning):
            raise EcgFormatError(f"{path}: {_reason(warning.message, path)}")
        log.warning("ecg reader warning",
                    extra={"file": str(path), "warning": str(warning.message)})
    return record


def _reason(message: object, path: Path) -> str:
    """ecgdatakit's message without its own mention of the file (the prefix names it)."""
    text = str(message)
    for name in (str(path), path.name):
        text = re.sub(rf"\s+(?:in|of)\s+{re.escape(name)}\b", "", text)
    return text


def lead_microvolts(lead: Lead, path: Path) -> tuple[np.ndarray, float]:
    """Samples of ``lead`` in µV and the step (µV) the file stored them with."""
    unit = lead.resolution_unit if lead.is_raw else lead.units
    factor = MICROVOLTS.get(unit)
    if factor is None or (lead.is_raw and lead.resolution == 0):
        raise EcgFormatError(f"{path}: lead {lead.label} has no amplitude scale in volts "
                             f"(unit {unit or 'not stated'})")
    samples = np.asarray(lead.to_physical().samples, dtype=np.float64) * factor
    if not np.all(np.isfinite(samples)):
        raise EcgFormatError(f"{path}: lead {lead.label} holds samples that are not numbers")
    return samples, (lead.resolution if lead.is_raw else 1.0) * factor


def recording_from(record: ECGRecord, path: Path, source_format: str, *,
                   measurements: dict[str, float | None] | None = None,
                   derive: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
                   ) -> EcgRecording:
    """The ``EcgRecording`` of an ecgdatakit record.

    ``measurements`` adds what a reader found beyond ecgdatakit's global measurements;
    ``derive`` completes the leads where a format stores only the independent ones (MUSE).
    """
    if not record.leads:
        raise EcgFormatError(f"{path}: no leads")
    rates = {lead.sampling_rate for lead in record.leads}
    if len(rates) != 1:
        raise EcgFormatError(f"{path}: leads are sampled at different rates {sorted(rates)} Hz")
    converted = {lead.label: lead_microvolts(lead, path) for lead in record.leads}
    patient = record.patient
    gm = record.measurements
    values: dict[str, Any] = {
        "heart_rate": gm.heart_rate, "rr_interval": gm.rr_interval,
        "pr_interval": gm.pr_interval, "qrs_duration": gm.qrs_duration,
        "qt_interval": gm.qt_interval, "p_axis": gm.p_axis, "qrs_axis": gm.qrs_axis,
        "t_axis": gm.t_axis, **(measurements or {})}
    statements = [" ".join(part for part in pair if part)
                  for pair in record.interpretation.statements]
    return build(
        path, patient_id=patient.patient_id, source_format=source_format,
        sampling_rate=float(rates.pop()),
        leads=(derive or dict)({name: samples for name, (samples, _) in converted.items()}),
        acquired=record.recording.date,
        measurements={name: float(v) for name, v in values.items() if v is not None},
        findings=findings_in(statements),
        patient_name=person_name(patient.last_name, patient.first_name),
        birth_date=patient.birth_date.date() if patient.birth_date else None,
        sex=patient.sex if patient.sex in ("M", "F") else "",
        resolution_uv=min(step for _, step in converted.values()),
        manufacturer=record.recording.device.manufacturer,
        manufacturer_model_name=record.recording.device.model)


def build(path: Path, **fields: Any) -> EcgRecording:
    """``EcgRecording(**fields)``, its own checks failing with the file's name."""
    try:
        return EcgRecording(**fields)
    except EcgFormatError as exc:
        raise EcgFormatError(f"{path}: {exc}") from None


def person_name(family: str, given: str) -> str:
    """DICOM PN form ``Family^Given`` (just ``Family`` without a given name)."""
    return f"{family}^{given}" if given else family


def number(text: str | None) -> float | None:
    """The leading number of a vendor value such as ``"436 ms (formula not stated)"``."""
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", text or "")
    return float(match.group(1)) if match else None


def first_of(*values: float | int | None) -> float | None:
    """The first stated value: vendors put QTc in different fields."""
    return next((float(v) for v in values if v is not None), None)
