"""Small constructors for CONTAINS content items that skip what a source did not record.

Registry rows are sparse; returning ``None`` for a missing value and dropping ``None`` when a
section is assembled keeps every template free of if-chains and never writes empty items
(which dsrdump rejects).
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import highdicom as hd
from highdicom.sr import RelationshipTypeValues as Rel
from pydicom.sr.coding import Code

from srcohort import codes

Item = hd.sr.ContentItem | None


def section(title: Code, items: Sequence[Item]) -> hd.sr.ContainerContentItem | None:
    """A CONTAINS container holding the present items, or None when none is present."""
    present = [item for item in items if item is not None]
    if not present:
        return None
    container = hd.sr.ContainerContentItem(name=title, relationship_type=Rel.CONTAINS)
    container.ContentSequence = present
    return container


def code(name: Code, value: Code | None) -> hd.sr.CodeContentItem | None:
    return None if value is None else hd.sr.CodeContentItem(
        name=name, value=value, relationship_type=Rel.CONTAINS)


def date(name: Code, value: dt.date | None) -> hd.sr.DateContentItem | None:
    return None if value is None else hd.sr.DateContentItem(
        name=name, value=value, relationship_type=Rel.CONTAINS)


def num(name: Code, value: float | None, unit: str) -> hd.sr.NumContentItem | None:
    return None if value is None else hd.sr.NumContentItem(
        name=name, value=value, unit=Code(unit, "UCUM", unit), relationship_type=Rel.CONTAINS)


def text(name: Code, value: str | None) -> hd.sr.TextContentItem | None:
    return None if not value else hd.sr.TextContentItem(
        name=name, value=value, relationship_type=Rel.CONTAINS)


def yes_no(flag: bool | None) -> Code | None:
    """Presence of a finding as the SNOMED CT Yes/No answer the index filters on."""
    return None if flag is None else (codes.YES if flag else codes.NO)
