"""The identifiers patients and objects are matched by, checked before anything is joined.

A patient id that cannot be read exactly would merge patients silently: two different
invalid-UTF-8 ids both decode to U+FFFD, a backslash is DICOM's value separator (the id would
be a list), a NUL or other control character is invisible in every report. DICOM's Long String
(LO, Patient ID) holds at most 64 characters and UIDs at most 64 digits and dots. An id that
breaks one of these rules is refused with the rule it breaks, never repaired.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.multival import MultiValue

MAX_ID = 64                                   # PS3.5 6.2: LO
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def patient_id(value: Any, what: str = "patient id") -> str:
    """``value`` as a patient id (surrounding spaces removed), or ValueError saying why not."""
    if isinstance(value, (list, tuple, MultiValue)):
        raise ValueError(f"{what} holds several values (a backslash, DICOM's value "
                         f"separator): {_show(value)}")
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValueError(f"{what} is empty")
    if "\ufffd" in text:
        raise ValueError(f"{what} {_show(text)} is not valid in its character set "
                         f"(undecodable bytes would merge different patients)")
    if "\\" in text:
        raise ValueError(f"{what} {_show(text)} contains a backslash, DICOM's value separator")
    if _CONTROL.search(text):
        raise ValueError(f"{what} {_show(text)} contains a control character")
    if len(text) > MAX_ID:
        raise ValueError(f"{what} has {len(text)} characters; DICOM allows at most {MAX_ID}")
    return text


def uid(value: Any, what: str) -> str:
    """``value`` as a DICOM UID, or ValueError saying why not."""
    text = str(value if value is not None else "").strip().rstrip("\x00")
    if not text:
        raise ValueError(f"{what} is empty")
    if len(text) > MAX_ID or not _UID.fullmatch(text):
        raise ValueError(f"{what} {_show(text)} is not a valid UID (digits and dots, no "
                         f"leading zeros, at most {MAX_ID} characters)")
    return text


def _show(value: Any, limit: int = 40) -> str:
    text = repr(str(value) if not isinstance(value, (list, tuple, MultiValue))
                else "\\".join(map(str, value)))
    return text if len(text) <= limit else f"{text[:limit]}...' ({len(str(value))} characters)"
