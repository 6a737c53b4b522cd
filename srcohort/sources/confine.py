"""Keep every read inside the site folder.

A site export is untrusted input: its mapping may name absolute paths or climb out with
``..``, and its folders may hold symbolic links to anywhere on the machine. srcohort reads a
file only when its real path (links resolved) lies inside the site folder, and never follows a
link that leaves it; what it refuses is reported with the reason, and is never read or copied.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator


class OutsideSite(ValueError):
    """A path that leaves the site folder, or names something other than a file or folder."""


def inside(root: Path, relative: str | os.PathLike[str], what: str) -> Path:
    """``root / relative`` when it stays inside ``root`` with every link resolved.

    ``what`` names the setting for the message (``tables.registry.file``). Absolute paths and
    paths that climb out are refused even when they would lead back in: a mapping names files
    relative to its site folder.
    """
    text = str(relative)
    if not text.strip():
        raise OutsideSite(f"{what}: empty path")
    if Path(text).is_absolute():
        raise OutsideSite(f"{what}: {text!r} is an absolute path; paths are relative to the "
                          f"site folder")
    if ".." in Path(text).parts:
        raise OutsideSite(f"{what}: {text!r} climbs out of the site folder ('..')")
    path = root / text
    real, base = path.resolve(), root.resolve()
    if not real.is_relative_to(base):
        raise OutsideSite(f"{what}: {text!r} is a link that leaves the site folder")
    return path


def is_inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (links resolved) lies inside ``root``."""
    return path.resolve().is_relative_to(root.resolve())


def site_files(folder: Path, root: Path) -> Iterator[tuple[Path, str | None]]:
    """Every entry below ``folder`` that could be a file, sorted, with None when it may be read
    or the reason it may not: a link that leaves ``root``, a link to a folder (never followed,
    so a loop cannot hang the walk), a device, pipe or socket (reading one could block forever).
    Hidden files count: a site's ``.DS_Store`` is reported, not silently skipped."""
    entries: list[tuple[Path, str | None]] = []
    for current, folders, names in os.walk(folder, followlinks=False):
        here = Path(current)
        for name in folders:
            if (here / name).is_symlink():
                entries.append((here / name, "a link to a folder: links are not followed"))
        for name in names:
            path = here / name
            entries.append((path, refusal(path, root)))
    yield from sorted(entries)


def refusal(path: Path, root: Path) -> str | None:
    """Why the file at ``path`` may not be read as input of the site at ``root``, or None."""
    try:
        mode = path.stat().st_mode          # follows a link: what would be read
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if path.is_symlink() and not is_inside(root, path):
        return "a link that leaves the site folder"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None
