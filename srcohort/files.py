"""Writing files so that a killed or failing run never leaves one half-written."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` at ``target`` through a temporary name beside it, then rename: a reader
    sees the old file or the new one, never a torn one (also when the disk fills up)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_bytes(data)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` the way ``write_atomic`` writes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        shutil.copyfile(source, partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks (files may be far larger than memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
