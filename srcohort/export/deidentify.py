"""De-identification of exported DICOM: PS3.15 Annex E Basic Application Level Confidentiality
Profile with the Retain Longitudinal Temporal Information with Modified Dates, Clean Descriptors
and Clean Structured Content options.

Why our own implementation: the PyPI candidates (dicognito, deid, dicom-anonymizer) either do
not implement Table E.1-1, or replace dates and UIDs randomly per run, which would break
references between re-exports (docs/deidentification.md has the evaluation). The profile itself
is data: Table E.1-1 is the file ``ps3.15-table-e1-1.txt`` beside this module, not code.

Everything that must stay stable across re-exports (pseudonym, date offset, replacement UIDs)
is an HMAC of the per-site secret, so nothing has to be stored and nobody without the secret can
link an export back to the hospital's records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from pydicom._uid_dict import UID_dictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from srcohort.export.pseudonym import pseudonym
from srcohort.study.load import active_study_name, load_study
from srcohort.uids import derived_uid

# PS3.15 Table E.1-1 as data (its header says where the rows come from and what the columns mean).
TABLE_FILE = Path(__file__).with_name("ps3.15-table-e1-1.txt")


class Rule(NamedTuple):
    """One row of Table E.1-1: the Basic Profile action and the option flags (``TABLE_FILE``)."""

    action: str
    flags: str


def _parse_table(text: str) -> tuple[dict[int, Rule], tuple[tuple[int, int, Rule], ...]]:
    """Rows by tag, plus the repeating-group rows (50xx,xxxx), (60xx,3000) as (value, mask)."""
    exact: dict[int, Rule] = {}
    masked: list[tuple[int, int, Rule]] = []
    for line in text.strip().splitlines():
        if line.startswith("#"):
            continue
        tag = line[0:4] + line[5:9]
        rule = Rule(line[11:18].strip(), line[18:21].strip())
        if "X" in tag:
            value = int(tag.replace("X", "0"), 16)
            mask = int("".join("0" if c == "X" else "F" for c in tag), 16)
            masked.append((value, mask, rule))
        else:
            exact[int(tag, 16)] = rule
    return exact, tuple(masked)


TABLE, _MASKED_ROWS = _parse_table(TABLE_FILE.read_text("utf-8"))

# Days subtracted from every date of a patient: at least one year, so that a shifted date never
# lands on the same patient's real date of an adjacent episode; at most ten years, so that
# ages at the event and seasons of follow-up intervals stay plausible for analysis.
MIN_SHIFT_DAYS = 365
MAX_SHIFT_DAYS = 3650

# Clean Descriptors / Clean Structured Content: a free-text value is kept only when every word
# is on this list of non-identifying terms (modalities, anatomy, acquisition and reporting
# vocabulary) and every number is short (at most 3 digits, optionally with up to 3 decimals).
# A value with anything else (a name, an id, a long number, a date) is treated per the Basic
# Profile: removed, emptied or replaced by a dummy.
DESCRIPTOR_VOCABULARY = frozenset("""
    a abdomen acquisition ag agent angio angiography anterior aorta aortic arterial
    artery ascending av axial balloon block bone branch bundle by bv ca calcification calcium
    cardiac cardiovascular cerebral chest classic contrast coronal coronary create ct cta
    delayed descending diastole diastolic ecg echo ejection equipment expandable fraction
    from fr gated head heart history hr hu image images in inferior instance interventricular
    kernel label lad lateral lcx lead left library line lm lung map mean measurement
    measurements membranous mip mm mpr mr mri native non normal of ostium outcome
    part patient pet phase planning portal posterior pre post procedure prospective rca
    converter recon reconstruction report resting retrospective rhythm right ring root s
    sagittal scan
    score scout segmentation self septum series sinus srcohort slice software source spectral stnd
    structures study superior systole systolic thick thin thorax to topogram
    the this used valve venous ventricle view volume with xcb
""".split())


def descriptor_vocabulary() -> frozenset[str]:
    """The words clean descriptors may hold: the engine's and the active study's
    (``words`` in study.yaml: its procedure names and abbreviations)."""
    return _vocabulary(active_study_name())


@lru_cache(maxsize=8)
def _vocabulary(study: str) -> frozenset[str]:
    return DESCRIPTOR_VOCABULARY | load_study(study).words


DUMMY_TEXT = "ANONYMIZED"
DUMMY_PERSON = "ANONYMOUS"
_DATE_LIKE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:\.\d+)?")
_SHORT_NUMBER = re.compile(r"\d{1,3}(?:\.\d{1,3})?")
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(.*)", re.DOTALL)

# Text of content items (TEXT values, waveform annotations): not rows of their own in the
# table; their structures are kept under Clean Structured Content, so the text is cleaned like
# a descriptor and replaced by a dummy otherwise (it is Type 1 in its content item).
STRUCTURED_TEXT = frozenset({0x0040A160, 0x00700006})  # Text Value, Unformatted Text Value
_PERSON_IDENTIFICATION_CODES = 0x00401101
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBER_VRS = frozenset({"FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"})
_WELL_KNOWN_ROOT = "1.2.840.10008."

DEIDENTIFICATION_METHODS = (  # CID 7050
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113105", "Clean Descriptors Option"),
    ("113104", "Clean Structured Content Option"),
)


def rule_for(tag: int) -> Rule | None:
    """The table row that governs ``tag``, or None when the profile keeps the attribute."""
    rule = TABLE.get(tag)
    if rule is not None:
        return rule
    return next((r for value, mask, r in _MASKED_ROWS if tag & mask == value), None)


def is_clean_descriptor(value: str) -> bool:
    """Whether free text ``value`` consists only of allow-listed words and short numbers."""
    if _DATE_LIKE.search(value):
        return False
    vocabulary = descriptor_vocabulary()
    return all(token in vocabulary or _SHORT_NUMBER.fullmatch(token)
               for token in _TOKEN.findall(value.casefold()))


def is_well_known_uid(value: str) -> bool:
    """UIDs defined by DICOM (SOP classes, transfer syntaxes, coding resources) are kept."""
    return value in UID_dictionary or value.startswith(_WELL_KNOWN_ROOT)


def _values(elem: DataElement) -> list[str]:
    value = elem.value
    items = value if isinstance(value, (list, MultiValue)) else [value]
    return [str(v) for v in items if v is not None and str(v) != ""]


def _all_clean(elem: DataElement) -> bool:
    return elem.VR not in _BINARY_VRS and all(is_clean_descriptor(v) for v in _values(elem))


def element_action(elem: DataElement) -> str:
    """What de-identification does with a non-sequence element.

    K keep, M keep with dates shifted, U replace UIDs, D dummy, Z empty, X remove. Combined
    actions resolve to D before Z before X: a dummy is valid whether an IOD makes the
    attribute Type 1, 2 or 3, an empty value whether it is Type 2 or 3.
    """
    if elem.tag in STRUCTURED_TEXT:
        return "K" if _all_clean(elem) else "D"
    rule = rule_for(elem.tag)
    if rule is None:
        return "M" if elem.VR in ("DA", "DT") else "K"
    if "M" in rule.flags and elem.VR not in _BINARY_VRS:
        return "M"
    if "C" in rule.flags and _all_clean(elem):
        return "K"
    if elem.VR == "UI" and ("U" in rule.action or "D" in rule.action):
        return "U"
    if elem.VR in ("DA", "DT") and "D" in rule.action:
        return "M"  # a shifted date is the dummy that keeps the timeline
    return next(a for a in ("D", "Z", "X") if a in rule.action)


def sequence_action(elem: DataElement) -> str:
    """What de-identification does with a sequence: R clean its items, Z, X, or P (dummy code).

    Structured content (S), X/Z/U* and D sequences keep their items, which are cleaned by the
    same table; an empty sequence (Z) is preferred where the table allows it.
    """
    rule = rule_for(elem.tag)
    if rule is None or "S" in rule.flags or "U*" in rule.action:
        return "R"
    if "Z" in rule.action:
        return "Z"
    if "D" in rule.action:
        return "P" if elem.tag == _PERSON_IDENTIFICATION_CODES else "R"
    return "X"


def shift_da(value: str, days: int) -> str:
    """DA ``YYYYMMDD`` (or ACR-NEMA ``YYYY.MM.DD``) moved by ``days``."""
    text = value.strip().replace(".", "")
    if not re.fullmatch(r"\d{8}", text):
        raise ValueError(f"not a DICOM date: {value!r}")
    return _format_date(dt.date(int(text[:4]), int(text[4:6]), int(text[6:])), days, 8)


def shift_dt(value: str, days: int) -> str:
    """DT moved by ``days``, keeping its precision, time of day and UTC offset."""
    match = _DT.fullmatch(value.strip())
    if not match:
        raise ValueError(f"not a DICOM date-time: {value!r}")
    year, month, day, rest = match.groups()
    date = dt.date(int(year), int(month or 1), int(day or 1))
    return _format_date(date, days, 4 + len(month or "") + len(day or "")) + rest


def _format_date(date: dt.date, days: int, digits: int) -> str:
    shifted = date + dt.timedelta(days=days)
    return f"{shifted.year:04d}{shifted.month:02d}{shifted.day:02d}"[:digits]


def _dummy(vr: str) -> object:
    if vr == "PN":
        return DUMMY_PERSON
    if vr in ("IS", "DS"):
        return "0"
    if vr in _NUMBER_VRS:
        return 0
    if vr in _BINARY_VRS:
        return b"\x00\x00"
    if vr == "AS":
        return "000D"
    if vr == "TM":
        return "000000"
    return DUMMY_TEXT


def _map(elem: DataElement, function) -> None:
    mapped = [function(v) for v in _values(elem)]
    elem.value = mapped[0] if len(mapped) == 1 else mapped


def _dummy_person_code() -> Dataset:
    item = Dataset()
    item.CodeValue = "0"
    item.CodingSchemeDesignator = "99SRCOHORT"
    item.CodeMeaning = "Anonymized person"
    return item


@lru_cache(maxsize=1 << 16)
def _replacement_uid(secret: bytes, site: str, original: str) -> str:
    digest = hmac.new(secret, f"uid\x1f{site}\x1f{original}".encode(), hashlib.sha256)
    return derived_uid("deidentified", digest.hexdigest())


@dataclass(frozen=True)
class Deidentifier:
    """PS3.15 Basic Profile with modified dates, clean descriptors and clean structured content.

    Pseudonym, date offset and replacement UIDs depend only on (secret, site, input), so a
    re-export writes byte-identical files and references between exported objects hold.
    """

    secret: bytes
    site: str

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("a non-empty de-identification secret is required")

    def pseudonym(self, patient_id: str) -> str:
        return pseudonym(self.secret, self.site, patient_id)

    def date_offset(self, patient_id: str) -> int:
        """Days (between -MAX_SHIFT_DAYS and -MIN_SHIFT_DAYS) added to every date of the patient."""
        digest = hmac.new(self.secret, f"date-offset\x1f{self.site}\x1f{patient_id}".encode(),
                          hashlib.sha256).digest()
        span = MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1
        return -(MIN_SHIFT_DAYS + int.from_bytes(digest[:8], "big") % span)

    def shift_date(self, patient_id: str, value: dt.date) -> dt.date:
        """The patient's date as it appears in the export (for tables and features)."""
        return value + dt.timedelta(days=self.date_offset(patient_id))

    def uid(self, original: str) -> str:
        """Stable replacement for an instance UID; DICOM-defined UIDs are returned unchanged."""
        original = original.strip()
        if is_well_known_uid(original):
            return original
        return _replacement_uid(self.secret, self.site, original)

    def dataset(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place and return it; ``ds.PatientID`` names the patient."""
        patient_id = str(ds.get("PatientID") or "").strip()
        if not patient_id:
            raise ValueError("the dataset has no PatientID to pseudonymise")
        days = self.date_offset(patient_id)
        ds.remove_private_tags()
        self._clean(ds, days)
        _mark_deidentified(ds, self.pseudonym(patient_id))
        if getattr(ds, "file_meta", None) is not None and "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _clean(self, ds: Dataset, days: int) -> None:
        for tag in list(ds.keys()):
            elem = ds[tag]
            if elem.VR == "SQ":
                self._clean_sequence(ds, elem, days)
            else:
                self._clean_element(ds, elem, days)

    def _clean_sequence(self, ds: Dataset, elem: DataElement, days: int) -> None:
        action = sequence_action(elem)
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            elem.value = Sequence()
        elif action == "P":
            elem.value = Sequence([_dummy_person_code()])
        else:
            for item in elem.value:
                self._clean(item, days)

    def _clean_element(self, ds: Dataset, elem: DataElement, days: int) -> None:
        action = element_action(elem)
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            elem.value = None
        elif action == "D":
            elem.value = _dummy(elem.VR)
        elif action == "U":
            _map(elem, self.uid)
        elif action == "M" and elem.VR == "DA":
            _map(elem, lambda v: shift_da(v, days))
        elif action == "M" and elem.VR == "DT":
            _map(elem, lambda v: shift_dt(v, days))


def _mark_deidentified(ds: Dataset, alias: str) -> None:
    """Pseudonym as patient identity and the PS3.15 E.1.1 record of what was done."""
    ds.PatientID = alias
    ds.PatientName = alias
    ds.PatientIdentityRemoved = "YES"
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.DeidentificationMethod = "PS3.15 E.1-1 Basic Profile, modified dates, clean descr."
    codes = []
    for value, meaning in DEIDENTIFICATION_METHODS:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
