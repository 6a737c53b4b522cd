"""Writing files so that a killed or failing run never leaves one half-written."""

from __future__ import annotations

import os
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
