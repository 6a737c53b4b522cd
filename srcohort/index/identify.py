"""Which instance of which series a DICOM file holds, from its first kilobytes.

Indexing groups every file of a site by Series Instance UID before it reads one header per
series in full. A 512 x 512 CT slice is 512 KB, its identifiers sit in the first ~2 KB (groups
0008 to 0020 come before everything else), and a site holds hundreds of thousands of slices,
so this read decides the indexing speed. Two things make it cheap:

* Only the first ``HEAD_BYTES`` are read, with the kernel's read-ahead switched off for the
  file (``POSIX_FADV_RANDOM``): by default the kernel reads 128 KB and more ahead of a
  sequential reader, which on a cold cache costs more than the parsing (measured: 3,750 vs
  7,100 files/s for the same 8 KB reads; docs/performance.md).
* Files in Explicit or Implicit VR Little Endian (every uncompressed and every encapsulated
  transfer syntax but two retired ones) are walked element by element with ``struct``, up to
  (0020,000E). Anything else, anything unusual on the way (a sequence of undefined length, a
  header longer than the bytes read, a missing identifier), and every error goes to pydicom,
  which decides and words the reason exactly as a full read would.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag, Tag

from srcohort.sources.images import REQUIRED

HEAD_BYTES = 16384
LAST_IDENTIFIER = (0x0020, 0x000E)           # SeriesInstanceUID: REQUIRED all come before it
WANTED = {(0x0008, 0x0018): "SOPInstanceUID", (0x0008, 0x0060): "Modality",
          (0x0010, 0x0020): "PatientID", (0x0020, 0x000D): "StudyInstanceUID",
          (0x0020, 0x000E): "SeriesInstanceUID"}
# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
# Transfer syntaxes whose data set is not Explicit VR Little Endian: pydicom reads these.
OTHER_ENCODINGS = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}   # deflated, big endian
UNDEFINED = 0xFFFFFFFF
assert set(WANTED.values()) == set(REQUIRED)


def instance_of(path: Path) -> tuple[str, str] | ValueError:
    """The Series and SOP Instance UIDs of a DICOM file (the SOP UID tells two copies of one
    instance apart from two instances), or (returned, not raised: one bad file must not end a
    map over thousands) the reason it cannot be indexed."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            head = os.pread(fd, HEAD_BYTES, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        return ValueError(f"not readable as DICOM: {exc.__class__.__name__}: {exc}")
    found = _walk(head)
    if found is not None and all(found.get(kw) for kw in REQUIRED):
        return found["SeriesInstanceUID"], found["SOPInstanceUID"]
    return _with_pydicom(path, head)


def _walk(head: bytes) -> dict[str, str] | None:
    """The identifiers of a Little Endian file, or None where pydicom must decide."""
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    pos, syntax = 132, None
    while pos + 8 <= len(head) and struct.unpack_from("<H", head, pos)[0] == 0x0002:
        element, value, pos = _explicit(head, pos)
        if element is None:
            return None
        if element == (0x0002, 0x0010):
            syntax = value.rstrip(b"\0 ").decode("ascii", "replace")
    if syntax is None or syntax in OTHER_ENCODINGS:
        return None
    read = _implicit if syntax == IMPLICIT_LITTLE else _explicit
    found: dict[str, str] = {}
    while pos + 8 <= len(head):
        element, value, pos = read(head, pos)
        if element is None:
            return None
        if element > LAST_IDENTIFIER:
            return found
        if element in WANTED:
            found[WANTED[element]] = value.rstrip(b"\0 ").decode("latin-1").strip()
        if element == LAST_IDENTIFIER:
            return found
    return None


def _explicit(head: bytes, pos: int) -> tuple[tuple[int, int] | None, bytes, int]:
    group, number = struct.unpack_from("<HH", head, pos)
    vr = head[pos + 4:pos + 6]
    if not vr.isalpha() or not vr.isupper():
        return None, b"", pos
    if vr in LONG_VRS:
        if pos + 12 > len(head):
            return None, b"", pos
        length, start = struct.unpack_from("<I", head, pos + 8)[0], pos + 12
    else:
        length, start = struct.unpack_from("<H", head, pos + 6)[0], pos + 8
    return _value((group, number), head, start, length)


def _implicit(head: bytes, pos: int) -> tuple[tuple[int, int] | None, bytes, int]:
    group, number, length = struct.unpack_from("<HHI", head, pos)
    return _value((group, number), head, pos + 8, length)


def _value(element: tuple[int, int], head: bytes, start: int, length: int
           ) -> tuple[tuple[int, int] | None, bytes, int]:
    if element > LAST_IDENTIFIER:           # the value need not be in the bytes read
        return element, b"", start
    if length == UNDEFINED or start + length > len(head):
        return None, b"", start
    return element, head[start:start + length], start + length


def _with_pydicom(path: Path, head: bytes) -> tuple[str, str] | ValueError:
    """pydicom's read up to the identifiers, from the bytes read where they hold the whole
    file; the reason as ``sources.images.read_header`` words it."""
    try:
        source = io.BytesIO(head) if len(head) < HEAD_BYTES else path
        ds = header_until(source, Tag(*LAST_IDENTIFIER))
        return str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
    except ValueError as exc:
        return exc


def header_until(source: Path | io.BytesIO, last: BaseTag) -> Dataset:
    """The file's elements up to ``last`` (none after it is parsed), or ValueError worded as
    ``sources.images.read_header`` words it. Reading a SEG up to its segments and references,
    without the functional groups of each of its hundreds of frames, takes a fifth of the time
    of its whole header."""
    try:
        with (open(source, "rb") if isinstance(source, Path) else source) as stream:
            ds = read_partial(stream, stop_when=lambda tag, vr, length: tag > last)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not readable as DICOM: {exc.__class__.__name__}: {exc}") from None
    missing = [kw for kw in REQUIRED if not str(ds.get(kw, "")).strip()]
    if missing:
        raise ValueError(f"DICOM file lacks {', '.join(missing)}")
    return ds
