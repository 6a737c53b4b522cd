"""Uploaded zips are unpacked without trusting them (srcohort.kaapana.archive), and the AE
titles that file objects in Kaapana follow dcmtk-dcmsend's rule."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from srcohort.kaapana.archive import Limits, UnsafeArchive, site_folder, unpack
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pacs import ae_titles


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_hostile_members_are_refused_and_the_rest_unpacked(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {
        "site/mapping.yaml": b"site: s\n", "site/tables/a.csv": b"x\n",
        "../escape.txt": b"out", "/etc/absolute": b"abs", "site/../../up.txt": b"up",
        "C:/windows.txt": b"w", "site\\back.txt": b"b"},
        links={"site/link": "/etc/passwd"})
    result = unpack(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*") if p.is_file()) == [
        "site/mapping.yaml", "site/tables/a.csv"]
    reasons = {r["member"]: r["reason"] for r in result.refused}
    assert set(reasons) == {"../escape.txt", "/etc/absolute", "site/../../up.txt",
                            "C:/windows.txt", "site\\back.txt", "site/link"}
    assert reasons["site/link"] == "symbolic link, not a regular file"
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "up.txt").exists()
    assert site_folder(tmp_path / "out") == tmp_path / "out" / "site"


def test_zip_bomb_and_size_limit_stop_the_archive_and_leave_nothing(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"mapping.yaml": b"site: s\n",
                                        "zeros.bin": bytes(50 * 1024 * 1024)})
    with pytest.raises(UnsafeArchive, match="expands more than 1000-fold"):
        unpack(bomb, tmp_path / "bomb")
    assert not (tmp_path / "bomb").exists()
    big = _zip(tmp_path / "big.zip", {"a.bin": b"\x01" * 3000, "b.bin": b"\x02" * 3000})
    with pytest.raises(UnsafeArchive, match="more than 4000 bytes"):
        unpack(big, tmp_path / "big", Limits(max_bytes=4000))
    with pytest.raises(UnsafeArchive, match="3 members, more than 2"):
        unpack(_zip(tmp_path / "many.zip", {"1": b"", "2": b"", "3": b""}),
               tmp_path / "many", Limits(max_members=2))


def test_not_a_zip_and_no_site_export_are_named(tmp_path: Path) -> None:
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    with pytest.raises(UnsafeArchive, match="fake.zip: not a readable zip"):
        unpack(tmp_path / "fake.zip", tmp_path / "fake")
    unpack(_zip(tmp_path / "none.zip", {"readme.txt": b"hi"}), tmp_path / "none")
    with pytest.raises(KaapanaError, match="no mapping.yaml"):
        site_folder(tmp_path / "none")


def test_ae_titles_follow_dcmsend_containers_rule() -> None:
    """dcmtk-dcmsend/files/start.py: calling AE kp-<dataset>, called AE kp-<project>, the
    prefix not doubled; DICOM allows 16 characters."""
    assert ae_titles("cardio", "tavi") == ("kp-tavi", "kp-cardio")
    assert ae_titles("kp-cardio", "kp-tavi") == ("kp-tavi", "kp-cardio")
    with pytest.raises(KaapanaError, match="at most 16 characters"):
        ae_titles("cardio", "a-dataset-name-too-long")
