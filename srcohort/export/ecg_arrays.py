"""A DICOM ECG waveform as a (12, n) millivolt array at one rate, the same from every site.

Sites record at 250 to 1000 Hz, in µV or mV steps, with channels in any order and sometimes only
the eight independent leads. A model needs one layout: rows in ``LEADS`` order, millivolts,
``rate`` Hz, ``seconds`` long. The waveform is read by the converter's own DICOM ECG reader
(``srcohort.sources.ecg.dicom``: rhythm group, lead names, calibration), so a lead is what it
was at conversion. Missing limb leads III, aVR, aVL and aVF are computed from I and II
(Einthoven, Goldberger), which holds exactly for any recording; the chest leads cannot be
computed, so a recording without all of V1-V6 is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal as sp_signal

from srcohort.sources.ecg.dicom import read_dicom
from srcohort.sources.ecg.model import STANDARD_LEADS, EcgFormatError

LEADS: tuple[str, ...] = STANDARD_LEADS
REQUIRED = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
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
        recording = read_dicom(path)
    except EcgFormatError as exc:
        raise EcgArrayError(path, str(exc).removeprefix(f"{path}: ")) from None
    source_rate = recording.sampling_rate
    leads = {lead: values / 1000.0 for lead, values in recording.leads.items()
             if lead in LEADS}                                          # µV -> mV
    missing = [lead for lead in REQUIRED if lead not in leads]
    if missing:
        raise EcgArrayError(path, f"lead(s) {', '.join(missing)} missing (channels found: "
                                  f"{', '.join(recording.leads) or 'none'})")
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


def _limb_leads(one: np.ndarray, two: np.ndarray) -> dict[str, np.ndarray]:
    """III, aVR, aVL, aVF from I and II (Einthoven's law, Goldberger's augmented leads)."""
    return {"III": two - one, "aVR": -(one + two) / 2, "aVL": one - two / 2, "aVF": two - one / 2}
