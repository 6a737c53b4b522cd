"""Codes and IOD limits of the ECG waveform family.

Lead codes come from CID 3001 "ECG Leads" as pydicom ships it (MDC, e.g. ``2:1`` "Lead I"), so
a viewer that knows the context group labels every channel. Measurement concepts are the ECG
report's (``srcohort.sources.ecg.model.MEASUREMENTS``), so waveform annotations and SR say the same;
units are UCUM. The limits are PS3.3 A.34.3.4 (12-lead ECG) and A.34.4.4 (General ECG).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import UID, GeneralECGWaveformStorage, TwelveLeadECGWaveformStorage

_CID3001 = codes.cid3001

# Lead name (model spelling) -> CID 3001 code.
LEAD_CODES: dict[str, Code] = {
    "I": _CID3001.LeadI, "II": _CID3001.LeadII, "III": _CID3001.LeadIII,
    "aVR": _CID3001.AvrAugmentedVoltageRight, "aVL": _CID3001.AvlAugmentedVoltageLeft,
    "aVF": _CID3001.AvfAugmentedVoltageFoot, "-aVR": _CID3001.Avr,
    "V1": _CID3001.LeadV1, "V2": _CID3001.LeadV2, "V3": _CID3001.LeadV3,
    "V4": _CID3001.LeadV4, "V5": _CID3001.LeadV5, "V6": _CID3001.LeadV6,
    "V7": _CID3001.LeadV7, "V8": _CID3001.LeadV8, "V9": _CID3001.LeadV9,
    "V2R": _CID3001.LeadV2R, "V3R": _CID3001.LeadV3R, "V4R": _CID3001.LeadV4R,
    "V5R": _CID3001.LeadV5R, "V6R": _CID3001.LeadV6R, "V7R": _CID3001.LeadV7R,
    "X": _CID3001.LeadX, "Y": _CID3001.LeadY, "Z": _CID3001.LeadZ,
}
# A channel whose source names no lead of CID 3001; its name goes to Channel Label.
UNSPECIFIED_LEAD: Code = _CID3001.UnspecifiedLead

# Samples are stored in microvolts: the meaning as CID 3082 words it.
MICROVOLT = Code("uV", "UCUM", "microvolt")

UNIT_CODES: dict[str, Code] = {
    "/min": Code("/min", "UCUM", "per minute"),
    "ms": Code("ms", "UCUM", "millisecond"),
    "deg": Code("deg", "UCUM", "degree"),
}


@dataclass(frozen=True)
class EcgIod:
    """What one ECG waveform IOD accepts in the single multiplex group srcohort writes."""

    sop_class_uid: UID
    max_channels: int
    max_samples: int | None          # None: no limit beyond Waveform Data's size
    min_rate: float = 200.0          # Hz, both IODs
    max_rate: float = 1000.0

    def fits(self, channels: int, samples: int, rate: float) -> bool:
        return (channels <= self.max_channels and self.min_rate <= rate <= self.max_rate
                and (self.max_samples is None or samples <= self.max_samples))


# Tried in this order: the specific 12-lead IOD first, the General ECG IOD otherwise.
TWELVE_LEAD_ECG = EcgIod(TwelveLeadECGWaveformStorage, max_channels=13, max_samples=16384)
GENERAL_ECG = EcgIod(GeneralECGWaveformStorage, max_channels=24, max_samples=None)
ECG_IODS = (TWELVE_LEAD_ECG, GENERAL_ECG)
