"""Tools to damage a copy of a site export the way real exports and attackers do."""

from __future__ import annotations

import gzip
import io
import os
import struct
from pathlib import Path
from typing import Callable

import pydicom
import yaml
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info

MARKER = b"OUTSIDE-THE-SITE-7f3a9c"      # in every file outside the site: must never leak


class Site:
    """A copy of a site export under test, with the folder beside it that is 'outside'."""

    def __init__(self, root: Path, outside: Path) -> None:
        self.root, self.outside = root, outside

    # -- mapping ----------------------------------------------------------------------------
    def mapping(self) -> dict:
        return yaml.safe_load((self.root / "mapping.yaml").read_text("utf-8"))

    def edit_mapping(self, change: Callable[[dict], None]) -> None:
        raw = self.mapping()
        change(raw)
        (self.root / "mapping.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True),
                                                "utf-8")

    def write_mapping_text(self, text: str) -> None:
        (self.root / "mapping.yaml").write_text(text, "utf-8")

    # -- tables -----------------------------------------------------------------------------
    def table_path(self, name: str) -> Path:
        return self.root / self.mapping()["tables"][name]["file"]

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def table_rel(self, name: str) -> str:
        return self.rel(self.table_path(name))

    def table_lines(self, name: str) -> list[str]:
        spec = self.mapping()["tables"][name]
        return self.table_path(name).read_bytes().decode(spec.get("encoding", "utf-8")) \
            .splitlines()

    def write_table_lines(self, name: str, lines: list[str], encoding: str | None = None,
                          prefix: bytes = b"") -> None:
        spec = self.mapping()["tables"][name]
        self.table_path(name).write_bytes(
            prefix + ("\n".join(lines) + "\n").encode(encoding or spec.get("encoding", "utf-8")))

    def set_cell(self, name: str, line: int, column: str, value: str) -> None:
        """Put ``value`` in the site's column named ``column`` (canonical name) of ``line``."""
        spec = self.mapping()["tables"][name]
        delimiter = spec.get("delimiter", ",")
        lines = self.table_lines(name)
        header = lines[0].split(delimiter)
        cells = lines[line - 1].split(delimiter)
        cells[header.index(spec["columns"][column])] = value
        lines[line - 1] = delimiter.join(cells)
        self.write_table_lines(name, lines)

    def add_row(self, name: str, values: dict[str, str]) -> int:
        """Append a row (canonical column -> text); return its line number."""
        spec = self.mapping()["tables"][name]
        delimiter = spec.get("delimiter", ",")
        lines = self.table_lines(name)
        header = lines[0].split(delimiter)
        by_site = {spec["columns"][k]: v for k, v in values.items()}
        lines.append(delimiter.join(by_site.get(h, "") for h in header))
        self.write_table_lines(name, lines)
        return len(lines)

    # -- images, ECGs, label maps -----------------------------------------------------------
    def slices(self) -> list[Path]:
        return sorted(p for p in (self.root / "images").rglob("*.dcm") if p.is_file())

    def good_slice(self) -> Path:
        """A slice the base conversion takes (the last of the first series is a fault)."""
        return next(p for p in self.slices() if _readable(p))

    def ecgs(self) -> list[Path]:
        return sorted(p for p in (self.root / "ecg").rglob("*") if p.is_file()
                      and "copy" not in p.name)

    def outside_file(self, name: str, data: bytes | None = None) -> Path:
        path = self.outside / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(MARKER + b"\n" if data is None else data)
        return path

    def outside_dicom(self) -> Path:
        """A valid DICOM file outside the site that carries the marker in a text element."""
        ds = pydicom.dcmread(self.good_slice())
        ds.StudyDescription = MARKER.decode()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
            f"{ds.SOPInstanceUID}.99"
        path = self.outside / "outside.dcm"
        ds.save_as(path, enforce_file_format=True)
        return path

    def link(self, target: Path, at: Path) -> Path:
        at.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, at)
        return at


def _readable(path: Path) -> bool:
    try:
        pydicom.dcmread(path)
        return True
    except Exception:
        return False


# -- DICOM surgery ---------------------------------------------------------------------------
def split_file(path: Path) -> tuple[bytes, pydicom.Dataset, bytes]:
    """Preamble+DICM, the file meta as a dataset, and the body bytes of a Part 10 file."""
    with open(path, "rb") as handle:
        preamble = read_preamble(handle, False)
        meta = _read_file_meta_info(handle)
        body = handle.read()
    return preamble + b"DICM", meta, body


def join_file(head: bytes, meta: pydicom.Dataset, body: bytes) -> bytes:
    buffer = io.BytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return head + buffer.getvalue() + body


def with_transfer_syntax(path: Path, syntax: str) -> None:
    """Claim ``syntax`` in the file meta, leaving the body as it is."""
    head, meta, body = split_file(path)
    meta.TransferSyntaxUID = syntax
    path.write_bytes(join_file(head, meta, body))


def pixel_length(path: Path, length: int) -> None:
    """Declare another Pixel Data length (explicit VR little endian, OW)."""
    data = bytearray(path.read_bytes())
    at = data.rfind(b"\xe0\x7f\x10\x00OW")
    data[at + 8:at + 12] = struct.pack("<I", length)
    path.write_bytes(bytes(data))


def set_element(path: Path, keyword: str, value: object, charset: str | None = None) -> None:
    ds = pydicom.dcmread(path)
    if charset:
        ds.SpecificCharacterSet = charset
    setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)


def raw_patient_id(path: Path, raw: bytes) -> None:
    """Write PatientID as these exact bytes (no encoding applied), declared UTF-8."""
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = "X" * len(raw)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    padded = len(raw) + len(raw) % 2
    old = b"\x10\x00\x20\x00LO" + struct.pack("<H", padded) + b"X" * len(raw)
    new = b"\x10\x00\x20\x00LO" + struct.pack("<H", padded) + raw
    path.write_bytes(data.replace(old, new, 1))


def drop_element(path: Path, keyword: str) -> None:
    ds = pydicom.dcmread(path)
    delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=True)


def gzip_truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)
