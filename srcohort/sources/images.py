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
    """The files of one series and their headers (pixel data not kept)."""

    uid: str
    patient_id: str
    study_uid: str
    modality: str
    files: list[Path] = field(default_factory=list)
    headers: list[Dataset] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)     # sha256 of each file's bytes


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


def _read_checked(path: Path) -> tuple[Dataset | None, str, str]:
    """Worker: (header or None, sha256 of the bytes, reason when refused)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, "", f"cannot be read: {exc.strerror}"
    digest = hashlib.sha256(data).hexdigest()
    try:
        return check_instance(data), digest, ""
    except ValueError as exc:
        return None, digest, str(exc)


def scan_series(folder: Path, root: Path | None = None, *, workers: int | None = None
                ) -> tuple[dict[str, Series], list[RowError], list[Duplicate]]:
    """Group every passable DICOM file below ``folder`` by SeriesInstanceUID; files outside
    ``root`` (default ``folder``) are never read. Returns series, refusals and duplicates."""
    errors: list[RowError] = []
    candidates: list[Path] = []
    for path, refusal in site_files(folder, root or folder):
        if refusal:
            errors.append(RowError(path, None, refusal))
        else:
            candidates.append(path)
    with fork_map(_read_checked, candidates, workers=workers, chunksize=16) as results:
        checked = list(zip(candidates, results))
    by_uid: dict[str, list[tuple[Path, Dataset, str]]] = defaultdict(list)
    for path, (ds, digest, reason) in checked:
        if ds is None:
            errors.append(RowError(path, None, reason))
        else:
            by_uid[str(ds.SOPInstanceUID)].append((path, ds, digest))
    series: dict[str, Series] = {}
    duplicates: list[Duplicate] = []
    for uid, copies in by_uid.items():
        (path, ds, digest), *others = copies
        if any(d != digest for _, _, d in others):
            names = ", ".join(str(p) for p, _, _ in copies)
            errors += [RowError(p, None, f"SOP Instance UID {uid} is held by files with "
                                         f"different content ({names}); none is taken")
                       for p, _, _ in copies]
            continue
        duplicates += [Duplicate(p, path) for p, _, _ in others]
        entry = series.setdefault(ds.SeriesInstanceUID, Series(
            str(ds.SeriesInstanceUID), identifiers.patient_id(ds.PatientID),
            str(ds.StudyInstanceUID), str(ds.Modality)))
        entry.files.append(path)
        entry.headers.append(ds)
        entry.digests.append(digest)
    for entry in series.values():
        order = sorted(range(len(entry.files)),
                       key=lambda i: (_instance_number(entry.headers[i]), str(entry.files[i])))
        entry.files = [entry.files[i] for i in order]
        entry.headers = [entry.headers[i] for i in order]
        entry.digests = [entry.digests[i] for i in order]
    return series, errors, duplicates


def _instance_number(ds: Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0
