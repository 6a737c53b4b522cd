"""Kaapana-style metadata fields: ``"<tag> <Keyword>_<type>"`` for top-level DICOM attributes.

Kaapana's own gallery and filters read these names (e.g. ``"00080060 Modality_keyword"``,
``"00080020 StudyDate_date"``, ``"00100010 PatientName_keyword_alphabetic"``), so series
documents carry them unchanged next to srcohort's own fields.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

_SUFFIX = {
    "DA": "date", "DT": "datetime", "TM": "time",
    "IS": "integer", "SL": "integer", "SS": "integer", "UL": "integer", "US": "integer",
    "SV": "integer", "UV": "integer",
    "DS": "float", "FL": "float", "FD": "float",
    "PN": "keyword_alphabetic",
}
_SKIP_VR = {"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "UT", "LT", "ST"}


def field_name(element: DataElement) -> str:
    return f"{element.tag.group:04X}{element.tag.elem:04X} {element.keyword}_" \
           f"{_SUFFIX.get(element.VR, 'keyword')}"


def kaapana_fields(ds: Dataset) -> dict[str, Any]:
    """Flatten the top-level, non-binary, non-sequence attributes of ``ds``."""
    out: dict[str, Any] = {}
    for element in ds:
        if element.VR in _SKIP_VR or not element.keyword or element.tag.is_private:
            continue
        value = _convert(element)
        if value not in (None, "", []):
            out[field_name(element)] = value
    return out


def _convert(element: DataElement) -> Any:
    values = element.value if isinstance(element.value, (list, MultiValue)) else [element.value]
    converted = [_scalar(element.VR, v) for v in values if v not in (None, "")]
    converted = [v for v in converted if v is not None]
    if not converted:
        return None
    return converted[0] if len(converted) == 1 else converted


def _scalar(vr: str, value: Any) -> Any:
    text = str(value).strip()
    try:
        if vr == "DA":
            return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) >= 8 else None
        if vr == "DT":
            return f"{text[:4]}-{text[4:6]}-{text[6:8]}T{text[8:10] or '00'}:{text[10:12] or '00'}" \
                   f":{text[12:14] or '00'}" if len(text) >= 8 else None
        if vr == "TM":
            return f"{text[:2]}:{text[2:4] or '00'}:{text[4:6] or '00'}" if len(text) >= 2 else None
        if _SUFFIX.get(vr) == "integer":
            return int(float(text))
        if _SUFFIX.get(vr) == "float":
            return float(text)
    except ValueError:
        return None
    return text
