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
    return root / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"


def encode(ds: Dataset) -> bytes:
    """The DICOM file (Part 10) bytes of ``ds``."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def seal(ds: Dataset) -> bytes:
    """Give ``ds`` the instance UID its identity and content name; return its file bytes.

    Call once per built object: its provisional UID is the identity the final one derives from.
    """
    digest = hashlib.sha256(encode(ds)).hexdigest()
    uid = UID(derived_uid(str(ds.SOPInstanceUID), digest))
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    return encode(ds)


def store(root: Path, ds: Dataset, data: bytes | None = None) -> str:
    """Seal ``ds`` (unless ``data`` holds its sealed bytes), write it at its UID path below
    ``root`` and return that path relative to ``root``."""
    data = seal(ds) if data is None else data
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

