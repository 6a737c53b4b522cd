"""A DICOM ECG waveform as a (12, n) millivolt array at one rate, the same from every site.

Sites record at 250 to 1000 Hz, in µV or mV steps, with channels in any order and sometimes only
the eight independent leads. A model needs one layout: rows in ``LEADS`` order, millivolts,
``rate`` Hz, ``seconds`` long. Channels are identified by their CID 3001 code (MDC ``2:N``, or
the retired SCPECG ``5.6.3-9-N`` older carts write; both number leads as SCP-ECG does), by the
Channel Label only when the code names no lead. Missing limb leads III, aVR, aVL and aVF are
computed from I and II (Einthoven, Goldberger), which holds exactly for any recording; the
chest leads cannot be computed, so a recording without all of V1-V6 is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from scipy import signal as sp_signal

from srcohort.waveform.enum import LEAD_CODES

LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                          "V1", "V2", "V3", "V4", "V5", "V6")
REQUIRED = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
# Lead number -> name: MDC "2:N" and SCPECG "5.6.3-9-N" share SCP-ECG's lead numbering.
LEAD_NUMBERS = {code.value.split(":")[1]: lead for lead, code in LEAD_CODES.items()}
LABELS = {lead.lower(): lead for lead in LEADS}
CODE_PREFIXES = {"MDC": "2:", "SCPECG": "5.6.3-9-"}
MILLIVOLTS_PER_UNIT = {"uV": 1e-3, "mV": 1.0, "V": 1e3}   # UCUM codes of CID 3082
MAX_DENOMINATOR = 1000     # rate ratios are exact for any whole-Hz rates up to 1000 Hz


class EcgArrayError(ValueError):
    """A file that gives no usable 12-lead array; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class EcgArray:
    """Leads in ``LEADS`` order (float32 mV) at ``rate`` Hz, and how they were obtained."""

    signal: np.ndarray
    rate: float
    source_rate: float
    derived: tuple[str, ...]


def ecg_array(path: Path, *, rate: float = 500.0, seconds: float | None = 10.0) -> EcgArray:
    """The rhythm of the ECG waveform at ``path`` as a ``(12, round(seconds * rate))`` array.

    Resampling is ``scipy.signal.resample_poly`` with up/down the rate ratio in lowest terms
    (denominator at most ``MAX_DENOMINATOR``): a polyphase FIR low-pass (Kaiser window) removes
    what the new rate cannot hold before decimating, so nothing aliases into the diagnostic band.
    Beyond both ends the signal is taken to continue the line through its first and last sample
    (``padtype="line"``), so a baseline offset does not ring at the edges as zero padding would.
    Equal rates pass the samples through untouched. The result keeps the first ``seconds`` and
    is padded with zeros (the isoelectric line) at the end when the recording is shorter;
    ``seconds=None`` keeps the whole recording.
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise EcgArrayError(path, f"not readable as DICOM: {exc}") from None
    if not ds.get("WaveformSequence"):
        raise EcgArrayError(path, "no waveform (Waveform Sequence absent or empty)")
    index = _rhythm_group(ds)
    group = ds.WaveformSequence[index]
    source_rate = float(group.get("SamplingFrequency", 0) or 0)
    if source_rate <= 0:
        raise EcgArrayError(path, f"waveform group {index + 1} has no sampling frequency")
    leads = _leads_mv(path, ds, index)
    missing = [lead for lead in REQUIRED if lead not in leads]
    if missing:
        raise EcgArrayError(path, f"lead(s) {', '.join(missing)} missing (channels found: "
                                  f"{', '.join(leads) or 'none'})")
    present = [lead for lead in LEADS if lead in leads]
    samples = np.stack([leads[lead] for lead in present])
    ratio = Fraction(rate / source_rate).limit_denominator(MAX_DENOMINATOR)
    if ratio != 1:
        samples = sp_signal.resample_poly(samples, ratio.numerator, ratio.denominator, axis=1,
                                          padtype="line")
    if seconds is not None:
        n = int(round(seconds * rate))
        samples = np.pad(samples[:, :n], ((0, 0), (0, max(0, n - samples.shape[1]))))
    rows = dict(zip(present, samples.astype(np.float32)))
    derived = tuple(lead for lead in LEADS if lead not in rows)
    rows |= {lead: values for lead, values in _limb_leads(rows["I"], rows["II"]).items()
             if lead in derived}
    return EcgArray(np.stack([rows[lead] for lead in LEADS]), float(rate), source_rate, derived)


def _rhythm_group(ds: Dataset) -> int:
    """The multiplex group labelled RHYTHM, else the longest: never a median beat."""
    groups = list(ds.WaveformSequence)
    for index, group in enumerate(groups):
        if str(group.get("MultiplexGroupLabel", "")).strip().upper() == "RHYTHM":
            return index
    return max(range(len(groups)), key=lambda i: int(groups[i].get("NumberOfWaveformSamples", 0))
               / float(groups[i].get("SamplingFrequency", 0) or 1))


def _leads_mv(path: Path, ds: Dataset, index: int) -> dict[str, np.ndarray]:
    """The group's channels that are standard leads, calibrated to millivolts.

    pydicom's ``waveform_array`` applies Channel Sensitivity, its correction factor and the
    baseline, giving values in the Channel Sensitivity Units; those are converted to mV. A
    channel without sensitivity holds uncalibrated counts and is refused.
    """
    group = ds.WaveformSequence[index]
    try:
        values = ds.waveform_array(index)
    except (AttributeError, KeyError, ValueError) as exc:
        raise EcgArrayError(path, f"waveform group {index + 1} unreadable: {exc}") from None
    leads: dict[str, np.ndarray] = {}
    for channel, definition in enumerate(group.get("ChannelDefinitionSequence", []), start=1):
        lead = _lead_name(definition)
        if lead not in LEADS:
            continue
        if lead in leads:
            raise EcgArrayError(path, f"lead {lead} recorded twice (again in channel {channel})")
        units = definition.get("ChannelSensitivityUnitsSequence") or [Dataset()]
        unit = str(units[0].get("CodeValue", ""))
        if "ChannelSensitivity" not in definition or unit not in MILLIVOLTS_PER_UNIT:
            raise EcgArrayError(path, f"channel {channel} (lead {lead}) is not calibrated in "
                                      f"volts (sensitivity unit {unit or 'absent'})")
        leads[lead] = values[:, channel - 1] * MILLIVOLTS_PER_UNIT[unit]
    return leads


def _lead_name(definition: Dataset) -> str:
    """The lead a channel records: its coded source, else its label (``"Lead II"``, ``"V1"``)."""
    for source in definition.get("ChannelSourceSequence", [])[:1]:
        prefix = CODE_PREFIXES.get(str(source.get("CodingSchemeDesignator", "")), "")
        value = str(source.get("CodeValue", ""))
        if prefix and value.startswith(prefix) and value[len(prefix):] in LEAD_NUMBERS:
            return LEAD_NUMBERS[value[len(prefix):]]
    label = str(definition.get("ChannelLabel", "")).strip()
    if label.lower().startswith("lead "):
        label = label[len("lead "):].strip()
    return LABELS.get(label.lower(), label)


def _limb_leads(one: np.ndarray, two: np.ndarray) -> dict[str, np.ndarray]:
    """III, aVR, aVL, aVF from I and II (Einthoven's law, Goldberger's augmented leads)."""
    return {"III": two - one, "aVR": -(one + two) / 2, "aVL": one - two / 2, "aVF": two - one / 2}
