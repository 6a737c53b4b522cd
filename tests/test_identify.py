"""Indexing's first read: a file's series and instance from its first kilobytes, as pydicom
would read them.

The fast path walks Little Endian files with ``struct`` and hands everything else to pydicom;
the expectation here is pydicom's full header read with ``sources.images.read_header``'s rule,
on every file pydicom ships as test data (all its transfer syntaxes, broken files included)
and on what the converter writes.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from srcohort.index import identify
from srcohort.index.documents import series_document
from srcohort.index.identify import instance_of
from srcohort.index.indexer import _series_document
from srcohort.sources.images import read_header

PYDICOM_FILES = sorted(p for p in Path(get_testdata_file("CT_small.dcm")).parent.rglob("*")
                       if p.is_file())


def _expected(path: Path) -> tuple[str, str] | str:
    """The Series and SOP Instance UIDs, or the reason, as a full header read gives them."""
    try:
        ds = read_header(path)
        return str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
    except ValueError as exc:
        return str(exc)


def _found(path: Path) -> tuple[str, str] | str:
    result = instance_of(path)
    return str(result) if isinstance(result, ValueError) else result


def test_every_pydicom_test_file_is_identified_as_a_full_read_would() -> None:
    assert len(PYDICOM_FILES) > 150
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # pydicom's own remarks on its odd test files
        differing = {str(p): (_found(p), _expected(p)) for p in PYDICOM_FILES
                     if _found(p) != _expected(p)}
    assert differing == {}


def test_converted_files_are_identified_without_pydicom(converted: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """What srcohort writes (CT, SR, SEG, ECG) takes the fast path: pydicom is never asked."""
    files = sorted(converted.glob("*/dicom/**/*.dcm"))
    expected = {p: _expected(p) for p in files}

    def refuse(path: Path, head: bytes) -> str:
        raise AssertionError(f"{path} went to pydicom")
    monkeypatch.setattr(identify, "_with_pydicom", refuse)
    assert {p: instance_of(p) for p in files} == expected


def test_header_longer_than_the_bytes_read_goes_to_pydicom(tmp_path: Path) -> None:
    """A long private block before the identifiers: more than ``HEAD_BYTES`` to read."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    block = ds.private_block(0x0009, "SRCOHORT TEST", create=True)
    block.add_new(0x01, "OB", bytes(2 * identify.HEAD_BYTES))
    path = tmp_path / "long.dcm"
    ds.save_as(path)
    assert instance_of(path) == (str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))


def test_missing_and_unreadable_files_name_the_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    assert isinstance(instance_of(text), ValueError)
    assert str(instance_of(text)) == _expected(text)
    assert "not readable as DICOM" in str(instance_of(tmp_path / "absent.dcm"))


def test_series_documents_equal_those_of_full_header_reads(converted: Path) -> None:
    """The indexer reads each file as far as its document needs (one image header, SEGs up to
    their frames' functional groups, SRs whole): the documents of a full read of every file."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for path in sorted(converted.glob("*/dicom/**/*.dcm")):
        grouped[instance_of(path)[0]].append(str(path))
    modalities = set()
    for uid, files in grouped.items():
        full = [pydicom.dcmread(f) if read_header(Path(f)).Modality == "SR" else read_header(
            Path(f)) for f in files]
        modalities.add(full[0].Modality)
        assert _series_document(("s", files)) == (series_document("s", full, files), [])
    assert modalities == {"CT", "SR", "SEG", "ECG"}
