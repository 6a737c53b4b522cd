"""DICOM folders -> series of instances that are safe to pass through, and the reasons for the
files that are not.

Sites export images in any folder structure and with any file names, so every regular file
inside the site folder is tried. Images pass through byte for byte, so what passes must be a
file every DICOM reader can read, not only lenient pydicom: it is parsed whole, its body must
be encoded as its file meta says, no element may be shorter than its declared length, and the
pixel data must fit the transfer syntax (native: exactly rows x columns x samples x frames
values; compressed: encapsulated). Patient id and UIDs must identify exactly
(``identifiers``). A file that fails is reported with the reason and the rest of its series
goes on.

Two files with one SOP Instance UID are one instance twice when their bytes agree (the later
ones are noted as duplicates and not passed on again), and a conflict when they differ: then
none of them is passed on, since nothing says which one is right.

A scan keeps of each file only what grouping, checking and filing need (path, digest, UIDs):
a site has 100,000 files and more, a full header costs some 24 KB, and what the parent holds
every forked worker holds too. Whoever needs the headers of a series reads them when it needs
them (``read_headers``) and drops them afterwards.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import UID

from srcohort.parallel import fork_map
from srcohort.sources import identifiers
from srcohort.sources.confine import site_files
from srcohort.sources.tables import RowError

REQUIRED = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality")
UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
UNDEFINED_LENGTH = 0xFFFFFFFF
_PIXEL_DATA = Tag("PixelData")
_VR_SWITCH = ("Expected explicit VR", "Expected implicit VR")   # pydicom's warnings


@dataclass
class Series:
    """The files of one series, each with its SOP Instance UID and digest (no header kept:
    ``read_headers``)."""

    uid: str
    patient_id: str
    study_uid: str
    modality: str
    files: list[Path] = field(default_factory=list)
    instance_uids: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)     # sha256 of each file's bytes


@dataclass(frozen=True)
class Scanned:
    """What the scan keeps of a file that passed ``check_instance``."""

    patient_id: str
    study_uid: str
    series_uid: str
    instance_uid: str
    modality: str
    instance_number: int

    @classmethod
    def of(cls, ds: Dataset) -> "Scanned":
        return cls(identifiers.patient_id(ds.PatientID), str(ds.StudyInstanceUID),
                   str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), str(ds.Modality),
                   _instance_number(ds))


@dataclass
class Duplicate:
    """A file holding the same bytes as an instance already taken."""

    file: Path
    same_as: Path


def read_header(path: Path) -> Dataset:
    """Read a DICOM header without pixel data; raise ValueError with a reason otherwise."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not readable as DICOM: {exc.__class__.__name__}: {exc}") from None
    check_identity(ds)
    return ds


def read_headers(series: Series) -> list[Dataset]:
    """The headers of ``series``' files, in its order, read now (pixel data not read); each
    must still be the instance the scan found, else ValueError naming the file."""
    headers = []
    for path, uid in zip(series.files, series.instance_uids):
        try:
            ds = read_header(path)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc} (it was readable when the site was scanned)") \
                from None
        if str(ds.SOPInstanceUID) != uid:
            raise ValueError(f"{path}: now holds SOP Instance UID {ds.SOPInstanceUID}, not "
                             f"{uid} as when the site was scanned")
        headers.append(ds)
    return headers


def check_identity(ds: Dataset) -> None:
    """The identifiers matching and filing need: present, and each identifying exactly."""
    missing = [kw for kw in REQUIRED if not str(ds.get(kw, "")).strip()]
    if missing:
        raise ValueError(f"DICOM file lacks {', '.join(missing)}")
    identifiers.patient_id(ds.PatientID, "PatientID")
    for keyword in UIDS:
        identifiers.uid(ds.get(keyword), keyword)


def check_instance(data: bytes) -> Dataset:
    """The header of a DICOM file that is safe to pass through byte for byte; ValueError
    naming the first problem otherwise."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError,
            IndexError, OverflowError) as exc:
        raise ValueError(f"not readable as DICOM: {exc.__class__.__name__}: {exc}") from None
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if not syntax.is_transfer_syntax:
        raise ValueError(f"file meta names no known transfer syntax ({str(syntax)!r})")
    switched = [str(w.message) for w in caught if str(w.message).startswith(_VR_SWITCH)]
    if switched:
        raise ValueError(f"body is not encoded as the file meta's transfer syntax "
                         f"{syntax.name} says ({switched[0]})")
    for tag, elem in ds._dict.items():
        if isinstance(elem, RawDataElement) and elem.length != UNDEFINED_LENGTH and \
                elem.value is not None and len(elem.value) != elem.length:
            raise ValueError(f"element {Tag(tag)} is cut off: {len(elem.value)} of "
                             f"{elem.length} declared bytes (truncated file?)")
    check_identity(ds)
    if _PIXEL_DATA in ds._dict:
        _check_pixel_data(ds, syntax)
    elif "Rows" in ds:
        raise ValueError("an image without pixel data")
    del ds[_PIXEL_DATA:]            # what follows pixel data is not needed to file or match
    return ds


def _check_pixel_data(ds: Dataset, syntax: UID) -> None:
    elem = ds._dict[_PIXEL_DATA]
    length = elem.length if isinstance(elem, RawDataElement) else len(elem.value or b"")
    if syntax.is_encapsulated:
        if length != UNDEFINED_LENGTH:
            raise ValueError(f"pixel data has a defined length ({length}) but transfer syntax "
                             f"{syntax.name} needs encapsulated fragments")
        return
    if length == UNDEFINED_LENGTH:
        raise ValueError(f"pixel data is encapsulated but transfer syntax {syntax.name} is "
                         f"native")
    try:
        rows, columns, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"image pixel attributes unusable: {exc}") from None
    expected = (rows * columns * samples * frames * bits + 7) // 8
    if length not in (expected, expected + expected % 2):
        raise ValueError(f"pixel data holds {length} bytes; {rows} x {columns} x {samples} "
                         f"sample(s) x {frames} frame(s) at {bits} bits need {expected}")


def _read_checked(path: Path) -> tuple[Scanned | None, str, str]:
    """Worker: (what the scan keeps of the file or None, sha256 of its bytes, reason when
    refused)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, "", f"cannot be read: {exc.strerror}"
    digest = hashlib.sha256(data).hexdigest()
    try:
        return Scanned.of(check_instance(data)), digest, ""
    except ValueError as exc:
        return None, digest, str(exc)


def scan_series(folder: Path, root: Path | None = None, *, workers: int | None = None
                ) -> tuple[dict[str, Series], list[RowError], list[Duplicate]]:
    """Group every passable DICOM file below ``folder`` by SeriesInstanceUID, each series in
    instance number order; files outside ``root`` (default ``folder``) are never read.
    Returns series, refusals and duplicates."""
    errors: list[RowError] = []
    candidates: list[Path] = []
    for path, refusal in site_files(folder, root or folder):
        if refusal:
            errors.append(RowError(path, None, refusal))
        else:
            candidates.append(path)
    with fork_map(_read_checked, candidates, workers=workers, chunksize=16) as results:
        checked = list(zip(candidates, results))
    by_uid: dict[str, list[tuple[Path, Scanned, str]]] = defaultdict(list)
    for path, (scanned, digest, reason) in checked:
        if scanned is None:
            errors.append(RowError(path, None, reason))
        else:
            by_uid[scanned.instance_uid].append((path, scanned, digest))
    members: dict[str, list[tuple[int, str, Path, str, str]]] = defaultdict(list)
    first: dict[str, Scanned] = {}
    duplicates: list[Duplicate] = []
    for uid, copies in by_uid.items():
        (path, scanned, digest), *others = copies
        if any(d != digest for _, _, d in others):
            names = ", ".join(str(p) for p, _, _ in copies)
            errors += [RowError(p, None, f"SOP Instance UID {uid} is held by files with "
                                         f"different content ({names}); none is taken")
                       for p, _, _ in copies]
            continue
        duplicates += [Duplicate(p, path) for p, _, _ in others]
        first.setdefault(scanned.series_uid, scanned)
        members[scanned.series_uid].append((scanned.instance_number, str(path), path, digest,
                                            uid))
    series: dict[str, Series] = {}
    for series_uid, files in members.items():
        head = first[series_uid]
        entry = series[series_uid] = Series(series_uid, head.patient_id, head.study_uid,
                                            head.modality)
        for _, _, path, digest, uid in sorted(files, key=lambda f: f[:2]):
            entry.files.append(path)
            entry.instance_uids.append(uid)
            entry.digests.append(digest)
    return series, errors, duplicates


def _instance_number(ds: Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0
