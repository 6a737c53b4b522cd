"""Find identifying values of the source objects in an export.

``phi_values`` collects what de-identification removes or replaces, from the SOURCE objects;
``scan_export`` looks for each of those values in every exported file, in the form that file
type stores text in. De-identification is checked by its result, not trusted: a bug in a rule,
a manifest column or a NIfTI description that carries a name is found here.

Matching: case-insensitive, the value must not be glued to further letters or digits
(``0000007`` does not match inside a UID or a pseudonym), all values in one regular expression
built as a trie, so each file is searched in one pass.
"""

from __future__ import annotations

import gzip
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import AbstractSet, Iterable, Iterator

import pyarrow.parquet as pq
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from srcohort.export.deidentify import (DUMMY_PERSON, DUMMY_TEXT, descriptor_vocabulary,
                                        element_action, is_well_known_uid)

# Values too short or too generic to identify anybody, which a clean export may well contain.
MIN_ALNUM = 4
GENERIC = frozenset({"yes", "no", "none", "unknown", "male", "female", "other",
                     DUMMY_TEXT.lower(), DUMMY_PERSON.lower()})
TEXT_SUFFIXES = frozenset({".json", ".csv", ".tsv", ".txt", ".yaml", ".yml", ".md", ".log"})
# Sample arrays, not text: left out of the raw-byte pass, where random samples would match.
BULK_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009, 0x54001010})
_BOUNDARY = "[0-9A-Za-z]"
# Value representations whose values may identify a person or an instance: ids and free text
# (LO, SH, LT, ST, UT, UC) and UIDs; dates and names are taken apart (DA, DT, PN).
IDENTIFYING_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "UI"})


@dataclass(frozen=True)
class PhiFinding:
    path: str
    value: str
    where: str


def phi_values(datasets: Iterable[Dataset]) -> set[str]:
    """Identifying values of the source datasets.

    Every non-empty value of an identifying kind (ids and text, ``IDENTIFYING_VRS``) of an
    element that de-identification removes, empties or replaces (``deidentify.element_action``):
    ids, accession numbers, institutions, addresses, free text that fails the clean-descriptor
    check, instance UIDs (not DICOM-defined ones); every person
    name in full and per component; every date (DA, DT) as YYYYMMDD, YYYY-MM-DD and DD.MM.YYYY.
    Values with fewer than ``MIN_ALNUM`` letters or digits and ``GENERIC`` words are left out:
    they would match everywhere and identify nobody; so are values made only of words of the
    clean-descriptor vocabulary (``RHYTHM``), which clean descriptors may contain. Private
    elements are not collected (they are removed wholesale and mostly hold vendor parameters).
    """
    values: set[str] = set()
    for ds in datasets:
        for elem in _walk(ds):
            values.update(_identifying(elem))
    return {v for v in values if _is_specific(v)}


def scan_file(path: Path, phi: AbstractSet[str]) -> list[PhiFinding]:
    """Findings of ``phi`` in one file, read as its type stores text."""
    if not phi:
        return []
    matcher = _matcher(frozenset(phi))
    name = path.name.lower()
    if name.endswith(".dcm"):
        hits = _scan_dicom(path, matcher)
    elif name.endswith((".nii", ".nii.gz")):
        hits = [(v, "nifti header") for v in matcher.in_bytes(_nifti_header(path))]
    elif name.endswith(".parquet"):
        hits = _scan_parquet(path, matcher)
    elif path.suffix.lower() in TEXT_SUFFIXES:
        hits = [(v, "text") for v in matcher.in_text(path.read_text("utf-8", errors="replace"))]
    elif name.endswith(".npy"):
        hits = [(v, "npy header") for v in matcher.in_bytes(_npy_header(path))]
    else:
        hits = [(v, "bytes") for v in matcher.in_bytes(path.read_bytes())]
    return [PhiFinding(str(path), value, where) for value, where in dict.fromkeys(hits)]


def scan_export(root: Path, phi: AbstractSet[str]) -> list[PhiFinding]:
    """Findings of ``phi`` in every file under ``root``."""
    values = frozenset(phi)     # scan_file's matcher cache is keyed by it: hashed once
    return [finding for path in sorted(root.rglob("*")) if path.is_file()
            for finding in scan_file(path, values)]


def _walk(ds: Dataset) -> Iterator[DataElement]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)
        elif not elem.tag.is_private:
            yield elem


def _identifying(elem: DataElement) -> list[str]:
    """The values of ``elem`` that could identify somebody: only identifying kinds (names,
    ids and free text, dates, instance UIDs). Numbers, code strings, times and ages are not:
    a weight of ``0.000000`` would otherwise match inside every image orientation."""
    if elem.VR in ("DA", "DT"):
        return [form for value in _strings(elem) for form in _date_forms(value)]
    if elem.VR == "PN":
        return [part for value in _strings(elem) for part in _name_parts(value)]
    if elem.VR not in IDENTIFYING_VRS or element_action(elem) in ("K", "M"):
        return []
    if elem.VR == "UI":
        return [v for v in _strings(elem) if not is_well_known_uid(v)]
    return _strings(elem)


def kind_of(value: str) -> str:
    """What kind of identifying value ``value`` is, for messages that must say why."""
    if re.fullmatch(r"\d{8}|\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}", value):
        return "a date"
    if re.fullmatch(r"\d+(\.\d+){2,}", value):
        return "a UID"
    return "a name, id or text"


def _strings(elem: DataElement) -> list[str]:
    value = elem.value
    items = value if isinstance(value, (list, MultiValue)) else [value]
    return [str(v).strip() for v in items if v is not None and str(v).strip()]


def _date_forms(value: str) -> list[str]:
    digits = value[:8]
    if not re.fullmatch(r"\d{8}", digits):
        return []
    year, month, day = digits[:4], digits[4:6], digits[6:8]
    return [digits, f"{year}-{month}-{day}", f"{day}.{month}.{year}"]


def _name_parts(value: str) -> list[str]:
    name = PersonName(value)
    parts = [value.replace("^", " ").strip()]
    for group in (name, *(PersonName(g) for g in value.split("=")[1:])):
        parts += [group.family_name, group.given_name, group.middle_name, group.name_prefix,
                  group.name_suffix]
    return [p for p in parts if p]


def _is_specific(value: str) -> bool:
    """Long enough, not generic, and not made of allow-listed descriptor words only."""
    words = re.findall(r"[^\W_]+", value.casefold())
    return (sum(c.isalnum() for c in value) >= MIN_ALNUM and value.lower() not in GENERIC
            and not all(w in descriptor_vocabulary() for w in words))


class _Matcher:
    """All values as one case-insensitive pattern over text and one over bytes."""

    def __init__(self, values: frozenset[str]) -> None:
        self._by_text = {v.lower(): v for v in values}
        self._by_bytes: dict[bytes, str] = {}
        for value in values:
            for encoding in ("utf-8", "latin-1"):
                try:
                    self._by_bytes.setdefault(value.lower().encode(encoding), value)
                except UnicodeEncodeError:
                    continue
        self._text = re.compile(_bounded(_trie(self._by_text)), re.IGNORECASE)
        self._bytes = re.compile(_bounded(_trie(self._by_bytes)).encode("latin-1"),
                                 re.IGNORECASE)

    def in_text(self, text: str) -> list[str]:
        return [self._by_text[m.group(0).lower()] for m in self._text.finditer(text)]

    def in_bytes(self, data: bytes) -> list[str]:
        return [self._by_bytes[m.group(0).lower()] for m in self._bytes.finditer(data)]


@lru_cache(maxsize=4)
def _matcher(values: frozenset[str]) -> _Matcher:
    return _Matcher(values)


def _bounded(pattern: str) -> str:
    return f"(?<!{_BOUNDARY})(?:{pattern})(?!{_BOUNDARY})"


def _trie(words: Iterable[str | bytes]) -> str:
    """Regular expression matching exactly ``words``, factored by common prefixes (fast)."""
    root: dict = {}
    for word in words:
        node = root
        for unit in (word.decode("latin-1") if isinstance(word, bytes) else word):
            node = node.setdefault(unit, {})
        node[""] = {}
    return _trie_pattern(root)


def _trie_pattern(node: dict) -> str:
    branches = [re.escape(unit) + _trie_pattern(child)
                for unit, child in sorted(node.items()) if unit]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return f"(?:{body})?" if "" in node else body


def _scan_dicom(path: Path, matcher: _Matcher) -> list[tuple[str, str]]:
    """Parsed values (with the element's keyword) and the raw file minus sample arrays."""
    ds = pydicom.dcmread(path, force=True)
    hits = [(value, f"dicom {elem.keyword or elem.tag}")
            for elem in _walk_all(ds) if elem.VR not in ("OB", "OW", "UN") and elem.value
            for value in matcher.in_text(" \\ ".join(_strings(elem)))]
    raw = path.read_bytes()
    for elem in _walk_all(ds):
        if elem.tag in BULK_TAGS and isinstance(elem.value, bytes) and elem.value:
            start = raw.find(elem.value)
            if start >= 0:
                raw = raw[:start] + bytes(len(elem.value)) + raw[start + len(elem.value):]
    return hits + [(value, "dicom bytes") for value in matcher.in_bytes(raw)]


def _walk_all(ds: Dataset) -> Iterator[DataElement]:
    """Every element including private ones and the file meta information."""
    meta = getattr(ds, "file_meta", None)
    for elem in [*(meta or []), *ds]:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk_all(item)
        else:
            yield elem


def _scan_parquet(path: Path, matcher: _Matcher) -> list[tuple[str, str]]:
    """Column names, key-value metadata and every cell."""
    parquet = pq.ParquetFile(path)
    hits = [(v, "parquet column name") for name in parquet.schema_arrow.names
            for v in matcher.in_text(name)]
    metadata = parquet.schema_arrow.metadata or {}
    hits += [(v, "parquet metadata") for key, value in metadata.items()
             for v in matcher.in_bytes(key + b"\n" + value)]
    table = parquet.read()
    for name, column in zip(table.column_names, table.columns):
        for cell in column.to_pylist():
            if cell is not None:
                hits += [(v, f"parquet column {name}") for v in matcher.in_text(str(cell))]
    return hits


def _nifti_header(path: Path) -> bytes:
    """Header and extensions (everything before the voxels) of a NIfTI-1/2 file."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as stream:
        head = stream.read(544)
        for order in "<>":
            size = struct.unpack(f"{order}i", head[:4])[0]
            if size == 348:
                offset = int(struct.unpack(f"{order}f", head[108:112])[0])
                break
            if size == 540:
                offset = struct.unpack(f"{order}q", head[168:176])[0]
                break
        else:
            return head + stream.read()     # not NIfTI after all: scan it whole
        if not offset:                      # header-only file (.hdr of a pair)
            return head + stream.read()
        return (head + stream.read(max(0, offset - len(head))))[:offset]


def _npy_header(path: Path) -> bytes:
    """Magic, version and the header dict of a .npy file (the array itself is numbers)."""
    with open(path, "rb") as stream:
        start = stream.read(10)
        if start[6:7] == b"\x01":
            return start + stream.read(struct.unpack("<H", start[8:10])[0])
        rest = stream.read(2)
        return start + rest + stream.read(struct.unpack("<I", start[8:10] + rest)[0])
