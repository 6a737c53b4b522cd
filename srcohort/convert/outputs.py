"""How converted instances are written: by UID, named by their content, never half-written,
and never left behind by a rerun that no longer makes them.

A SOP Instance UID must never carry two different contents: a PACS keeps the first object it
received under a UID (or refuses the second), and an index keyed by UIDs cannot tell versions
apart. Builders give each object a provisional instance UID derived from its identity (site,
patient or source file, kind); ``seal`` replaces it with a UID derived from that identity and
the object's encoded bytes. With the clock kept out of the objects (``content_time``), the
same inputs give the same bytes under the same UID on any day, and changed content gives a new
instance UID in the same series. The instance it replaces is moved out of the DICOM folder
(``supersede``), so the folder, and an index of it, hold one version of each object.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Iterable

from pydicom.dataset import Dataset
from pydicom.uid import UID

from srcohort.files import write_atomic
from srcohort.uids import derived_uid


def dicom_path(root: Path, ds: Dataset) -> Path:
    """Where an instance lives in the output: by UID only, so paths carry no PHI."""
    return uid_path(root, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def uid_path(root: Path, study_uid: str, series_uid: str, instance_uid: str) -> Path:
    """``dicom_path`` of the instance with these UIDs."""
    return root / study_uid / series_uid / f"{instance_uid}.dcm"


def encode(ds: Dataset) -> bytes:
    """The DICOM file (Part 10) bytes of ``ds``."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def seal(ds: Dataset) -> bytes:
    """Give ``ds`` the instance UID its identity and content name; return its file bytes.

    Call once per built object: its provisional UID is the identity the final one derives from.
    Encoding dominates the cost of writing an SR, so the object is encoded once: the UID
    elements of the encoded file (File Meta's Media Storage SOP Instance UID and the data
    set's SOP Instance UID) are rewritten in place, and the meta group length with them.
    """
    data = encode(ds)
    uid = UID(derived_uid(str(ds.SOPInstanceUID), hashlib.sha256(data).hexdigest()))
    sealed = _with_instance_uid(data, ds, uid)
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    return sealed


def _with_instance_uid(data: bytes, ds: Dataset, uid: str) -> bytes:
    """``data`` (the encoding of ``ds``) with ``uid`` as SOP Instance UID in meta and body."""
    old, new = _ui_value(str(ds.SOPInstanceUID)), _ui_value(uid)
    meta_start = 132                                   # preamble and b"DICM"
    group_length = int.from_bytes(data[meta_start + 8:meta_start + 12], "little")
    meta_end = meta_start + 12 + group_length
    meta = data[meta_start + 12:meta_end]              # explicit VR little endian, always
    meta = _replace_once(meta, b"\x02\x00\x03\x00UI" + _u16(old) + old,
                         b"\x02\x00\x03\x00UI" + _u16(new) + new)
    syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    if syntax.is_implicit_VR:
        body_old = b"\x08\x00\x18\x00" + len(old).to_bytes(4, "little") + old
        body_new = b"\x08\x00\x18\x00" + len(new).to_bytes(4, "little") + new
    else:
        body_old = b"\x08\x00\x18\x00UI" + _u16(old) + old
        body_new = b"\x08\x00\x18\x00UI" + _u16(new) + new
    if not syntax.is_little_endian or syntax.is_deflated:
        raise ValueError(f"cannot seal an object in transfer syntax {syntax.name}")
    body = _replace_once(data[meta_end:], body_old, body_new)
    return (data[:meta_start + 8] + len(meta).to_bytes(4, "little") + meta + body)


def _ui_value(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\x00" * (len(raw) % 2)


def _u16(value: bytes) -> bytes:
    return len(value).to_bytes(2, "little")


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` with the first ``old`` replaced; the SOP Instance UID element is the first
    element with that tag and value, since elements are written in tag order."""
    at = data.find(old)
    if at < 0:
        raise ValueError("the encoded object does not hold its SOP Instance UID element")
    return data[:at] + new + data[at + len(old):]


def store(root: Path | None, ds: Dataset, data: bytes | None = None) -> str:
    """Seal ``ds`` (unless ``data`` holds its sealed bytes), write it at its UID path below
    ``root`` and return that path relative to ``root``; ``root`` None writes nothing."""
    data = seal(ds) if data is None else data
    if root is None:
        return str(dicom_path(Path(), ds))
    target = dicom_path(root, ds)
    if not (target.exists() and target.stat().st_size == len(data)
            and target.read_bytes() == data):
        write_atomic(target, data)
    return str(target.relative_to(root))


def supersede(root: Path, keep: Iterable[str], attic: Path) -> list[tuple[str, str | None]]:
    """Move every instance below ``root`` that is not in ``keep`` (paths relative to ``root``)
    to ``attic``, at the same relative path. Returns (moved path, the kept instance of the same
    series that replaces it, or None when nothing does) for each; leftovers of killed runs
    (``.partial`` files) and emptied folders are removed."""
    kept = set(keep)
    by_series: dict[str, str] = {}
    for rel in kept:
        parts = Path(rel).parts
        if len(parts) >= 2:
            by_series.setdefault(parts[-2], Path(rel).stem)
    moved: list[tuple[str, str | None]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = str(path.relative_to(root))
        if rel in kept:
            continue
        if path.name.startswith(".") and path.name.endswith(".partial"):
            path.unlink()
            continue
        target = attic / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moved.append((rel, by_series.get(path.parent.name)))
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return moved

