"""Resumable exports: what is already written, and the rule that a partial export never looks
complete.

Each patient's files are written first (each atomically: a temporary name, then ``os.replace``)
and its progress record last, so a record always describes files that exist. A rerun with the
same identity (cohort, settings, secret) skips patients whose record and files still agree;
anything else is redone. ``COMPLETE`` is removed when a run starts and written only after the
manifest and the verification (``status.tracked``), so a reader never takes an interrupted
export for a finished one.
A folder holding a different export is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from srcohort import files
from srcohort.canonical import canonical_json
from srcohort.files import file_sha256

IDENTITY = "export-identity.json"
PROGRESS = "progress"
COMPLETE = "COMPLETE"


class ExportConflict(RuntimeError):
    """The output folder holds an export of another cohort, settings or secret."""


def write_atomic(path: Path, data: bytes) -> dict[str, Any]:
    """Write ``data`` to ``path`` (never half-written) and return its manifest entry."""
    files.write_atomic(path, data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def secret_digest(secret: bytes) -> str:
    """What an export's identity records of its secret: enough to tell two secrets apart,
    nothing to recover it."""
    return hashlib.sha256(b"srcohort-export-identity\x1f" + secret).hexdigest()[:16]


def json_bytes(value: Any) -> bytes:
    return canonical_json(value).encode("utf-8")


class ExportState:
    """Progress records of one export folder."""

    def __init__(self, root: Path, identity: dict[str, Any]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        identity_path = root / IDENTITY
        if identity_path.exists():
            previous = json.loads(identity_path.read_text("utf-8"))
            if previous != identity:
                changed = sorted(k for k in set(previous) | set(identity)
                                 if previous.get(k) != identity.get(k))
                raise ExportConflict(f"{root} holds another export (differs in: "
                                     f"{', '.join(changed)}); use an empty folder")
        elif any(root.iterdir()):
            raise ExportConflict(f"{root} is not empty and holds no srcohort export")
        write_atomic(identity_path, json_bytes(identity))

    def _record_path(self, pseudonym: str) -> Path:
        return self.root / PROGRESS / f"{pseudonym}.json"

    def done(self, pseudonym: str) -> dict[str, Any] | None:
        """The patient's record if every file it lists is still there, unchanged."""
        path = self._record_path(pseudonym)
        if not path.exists():
            return None
        record = json.loads(path.read_text("utf-8"))
        for entry in record["files"]:
            target = self.root / entry["path"]
            if not target.exists() or target.stat().st_size != entry["bytes"] \
                    or file_sha256(target) != entry["sha256"]:
                return None
        return record

    def record(self, pseudonym: str, record: dict[str, Any]) -> None:
        write_atomic(self._record_path(pseudonym), json_bytes(record))

    def forget_except(self, keep: set[str], folders: tuple[str, ...]) -> int:
        """Delete records and files of patients no longer in the cohort; return how many."""
        stale = [p for p in sorted((self.root / PROGRESS).glob("*.json")) if p.stem not in keep]
        for path in stale:
            for entry in json.loads(path.read_text("utf-8"))["files"]:
                (self.root / entry["path"]).unlink(missing_ok=True)
            for folder in folders:
                shutil.rmtree(self.root / folder / path.stem, ignore_errors=True)
            path.unlink()
        for leftover in self.root.rglob(".*.partial"):      # an interrupted write
            leftover.unlink()
        return len(stale)

def is_complete(root: Path) -> bool:
    return (root / COMPLETE).exists()
