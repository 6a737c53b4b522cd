"""Coded concepts used across the pipeline, in one place.

Standard codes come from SNOMED CT (SCT), DICOM (DCM), LOINC (LN) and UCUM. Where no standard
code exists the concept lives in the private scheme ``99SRCOHORT``; every SR that uses it
declares the scheme in its Coding Scheme Identification Sequence (see ``private_scheme_item``),
and docs/codes.md lists its codes.

The canonical vocabulary of site exports (``SAPIEN3``, ``current``, ``LCC_HINGE``, ...) maps to
codes here; site mapping files translate each hospital's spelling into that vocabulary.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

PRIVATE_SCHEME = "99SRCOHORT"
PRIVATE_SCHEME_UID = "2.25.58116745000839245085346640600583658003"  # UUID-derived (PS3.5 B.2)
PRIVATE_SCHEME_NAME = "srcohort private codes"


def private(value: str, meaning: str) -> Code:
    """A concept of the private scheme: for things no standard terminology names yet."""
    return Code(value, PRIVATE_SCHEME, meaning)


def private_scheme_item() -> Dataset:
    """One Coding Scheme Identification Sequence item that declares ``99SRCOHORT``."""
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeUID = PRIVATE_SCHEME_UID
    item.CodingSchemeName = PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = "srcohort project"
    return item


def concept_key(item: Dataset) -> str:
    """``SCHEME:VALUE`` of a coded entry (long and URN code values included): the form codes
    take in the index and in cohort definitions."""
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue") or ""
    return f"{item.get('CodingSchemeDesignator', '')}:{value}"
