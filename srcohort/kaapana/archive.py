"""Unpack an uploaded site-export zip without trusting it.

A zip from Kaapana's Data Upload or the project bucket is whatever someone uploaded. Every
member is checked before a byte is written: names that are absolute, climb out (``..``), carry
a drive or NUL, or repeat an earlier name are refused; symbolic links, devices and other
non-regular members are refused (none is ever created, so nothing can point outside the folder);
the number of members, the bytes written (counted while writing, not taken from the header)
and each member's compression ratio are bounded. A refused member is listed with its reason and
skipped; a breached bound stops the archive and removes what was unpacked of it.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from srcohort.kaapana.errors import KaapanaError

COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds for one archive; the defaults fit a site export of some thousand patients."""

    max_members: int = 500_000
    max_bytes: int = 200 * 1024**3
    # Ratios of real DICOM and CSV stay far below this; a zip bomb is far above.
    max_ratio: float = 1000.0


@dataclass
class Unpacked:
    folder: Path
    files: int = 0
    bytes: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)


class UnsafeArchive(KaapanaError):
    """The archive breached a bound or is not a zip; nothing of it was kept."""


def unpack(archive: Path, folder: Path, limits: Limits = Limits()) -> Unpacked:
    """Unpack the regular files of ``archive`` below ``folder`` (which must not exist yet)."""
    result = Unpacked(folder)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > limits.max_members:
                raise UnsafeArchive(f"{archive.name}: {len(members)} members, more than "
                                    f"{limits.max_members}")
            folder.mkdir(parents=True)
            seen: set[str] = set()
            for member in members:
                target, reason = _target(member, folder, seen)
                if reason:
                    result.refused.append({"member": member.filename, "reason": reason})
                    continue
                if target is None:        # a directory entry: folders come with their files
                    continue
                result.bytes += _copy(zf, member, target, limits, result.bytes, archive)
                result.files += 1
    except zipfile.BadZipFile as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise UnsafeArchive(f"{archive.name}: not a readable zip ({exc})") from None
    except UnsafeArchive:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return result


def _target(member: zipfile.ZipInfo, folder: Path, seen: set[str]
            ) -> tuple[Path | None, str | None]:
    """Where ``member`` goes, or why it is refused."""
    name = member.filename
    if "\x00" in name or "\\" in name:
        return None, "name contains NUL or a backslash"
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        return None, "absolute name"
    if ".." in path.parts:
        return None, "name climbs out of the archive's folder"
    if member.is_dir():
        return None, None
    # Unix zips keep the file type in the upper bits; zips from elsewhere leave it 0 (regular).
    kind = stat.S_IFMT(member.external_attr >> 16)
    if kind and kind != stat.S_IFREG:
        what = "symbolic link" if kind == stat.S_IFLNK else "special file"
        return None, f"{what}, not a regular file"
    key = str(path)
    if key in seen:
        return None, "repeats an earlier member's name"
    seen.add(key)
    target = folder.joinpath(*path.parts)
    if not target.resolve().is_relative_to(folder.resolve()):
        return None, "name climbs out of the archive's folder"
    return target, None


def _copy(zf: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, limits: Limits,
          written_before: int, archive: Path) -> int:
    """Write one member, counting real bytes against the bounds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    allowed = int(max(member.compress_size, 1) * limits.max_ratio)
    written = 0
    with zf.open(member) as source, target.open("xb") as sink:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > allowed and written > COPY_CHUNK:
                raise UnsafeArchive(f"{archive.name}: member {member.filename} expands more "
                                    f"than {limits.max_ratio:.0f}-fold (a zip bomb?)")
            if written_before + written > limits.max_bytes:
                raise UnsafeArchive(f"{archive.name}: more than {limits.max_bytes} bytes "
                                    f"unpacked")
            sink.write(chunk)
    return written


def site_folder(folder: Path) -> Path:
    """The site export inside an unpacked upload: the folder holding ``mapping.yaml``, at the
    top or one level down (a zip of the export's folder)."""
    if (folder / "mapping.yaml").is_file():
        return folder
    candidates = sorted(p.parent for p in folder.glob("*/mapping.yaml") if p.is_file())
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise KaapanaError(f"{folder.name}: no mapping.yaml at the top of the upload or one "
                           f"folder down (docs/site-exports.md)")
    raise KaapanaError(f"{folder.name}: several site exports in one upload "
                       f"({', '.join(p.name for p in candidates)}): upload them one by one")
