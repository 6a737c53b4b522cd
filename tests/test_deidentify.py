"""PS3.15 Basic Profile de-identification on every object kind the converter writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from srcohort.export.deidentify import (MAX_SHIFT_DAYS, MIN_SHIFT_DAYS, Deidentifier,
                                        is_clean_descriptor, shift_da, shift_dt)
from srcohort.export.pseudonym import pseudonym
from tests.dicom_validators import dciodvfy, dsrdump, require_tool

SECRET = b"test-secret"


def deidentify_all(converted: Path, out: Path) -> dict[Path, Path]:
    """Every converted object de-identified as the exporter does it: source -> written file,
    filed below its patient's pseudonym as the export files it."""
    written: dict[Path, Path] = {}
    for n, source in enumerate(sorted(converted.glob("*/dicom/**/*.dcm"))):
        site = source.relative_to(converted).parts[0]
        deidentifier = Deidentifier(SECRET, site)
        ds = pydicom.dcmread(source)
        alias = deidentifier.pseudonym(str(ds.PatientID).strip())
        ds = deidentifier.dataset(ds)
        target = out / site / alias / f"{n:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        written[source] = target
    return written


@pytest.fixture(scope="module")
def pairs(converted: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    return deidentify_all(converted, tmp_path_factory.mktemp("deidentified"))


def _read(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def _kind(ds: Dataset) -> str:
    return f"{ds.Modality}/{ds.get('SeriesDescription', '')}"


def _content_dates(items) -> list[str]:
    dates: list[str] = []
    for item in items:
        if item.get("ValueType") == "DATE":
            dates.append(item.Date)
        dates += _content_dates(item.get("ContentSequence", []))
    return dates


@pytest.mark.validators
def test_every_kind_stays_a_valid_iod(pairs: dict[Path, Path]) -> None:
    require_tool("dciodvfy")
    require_tool("dsrdump")
    kinds = set()
    for target in pairs.values():
        ds = _read(target)
        kinds.add(_kind(ds) if ds.Modality == "SR" else ds.Modality)
        assert dciodvfy(target) == [], target
        if ds.Modality == "SR":
            assert dsrdump(target) == [], target
    assert {"CT", "SEG", "ECG"} <= kinds
    assert sum(kind.startswith("SR/") for kind in kinds) >= 4     # history, outcome, 1500, ECG


def test_patient_identity_is_the_pseudonym(pairs: dict[Path, Path], converted: Path) -> None:
    for source, target in pairs.items():
        before, after = _read(source), _read(target)
        alias = pseudonym(SECRET, source.relative_to(converted).parts[0], before.PatientID)
        assert after.PatientID == alias and str(after.PatientName) == alias
        assert after.PatientIdentityRemoved == "YES"
        assert after.LongitudinalTemporalInformationModified == "MODIFIED"
        assert {c.CodeValue for c in after.DeidentificationMethodCodeSequence} >= \
            {"113100", "113107", "113105"}
        assert not after.get("PatientBirthDate") and "InstitutionAddress" not in after
        assert after.InstitutionName != before.InstitutionName
        assert not any(elem.tag.is_private for elem in after.iterall())


def test_dates_move_by_one_offset_per_patient(pairs: dict[Path, Path], converted: Path) -> None:
    offsets: dict[str, int] = {}
    content_dates = 0
    for source, target in pairs.items():
        before, after = _read(source), _read(target)
        days = (dt.datetime.strptime(after.StudyDate, "%Y%m%d")
                - dt.datetime.strptime(before.StudyDate, "%Y%m%d")).days
        key = f"{source.relative_to(converted).parts[0]}/{before.PatientID}"
        assert offsets.setdefault(key, days) == days, key          # same shift in every object
        assert -MAX_SHIFT_DAYS <= days <= -MIN_SHIFT_DAYS
        assert after.get("StudyTime") == before.get("StudyTime")  # times are kept
        old, new = (_content_dates(ds.get("ContentSequence", [])) for ds in (before, after))
        assert new == [shift_da(d, days) for d in old]
        content_dates += len(old)
    assert content_dates > 0                                        # SR DATE items were seen
    assert len(set(offsets.values())) > len(offsets) // 2          # patients differ


def test_references_between_objects_survive(pairs: dict[Path, Path]) -> None:
    images: dict[str, Dataset] = {}
    for target in pairs.values():
        ds = _read(target)
        if ds.Modality == "CT":
            images[ds.SOPInstanceUID] = ds
    checked = 0
    for target in pairs.values():
        ds = _read(target)
        if ds.Modality == "SEG":
            for series in ds.ReferencedSeriesSequence:
                for ref in series.ReferencedInstanceSequence:
                    image = images[ref.ReferencedSOPInstanceUID]
                    assert image.SeriesInstanceUID == series.SeriesInstanceUID
                    assert image.FrameOfReferenceUID == ds.FrameOfReferenceUID
                    checked += 1
        if ds.Modality == "SR":
            for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
                for series in study.ReferencedSeriesSequence:
                    for ref in series.ReferencedSOPSequence:
                        if ref.ReferencedSOPInstanceUID in images:
                            image = images[ref.ReferencedSOPInstanceUID]
                            assert image.StudyInstanceUID == study.StudyInstanceUID
                            checked += 1
    assert checked > 0


def test_well_known_uids_are_kept(pairs: dict[Path, Path]) -> None:
    for source, target in pairs.items():
        before, after = _read(source), _read(target)
        assert after.SOPClassUID == before.SOPClassUID
        assert after.SOPInstanceUID != before.SOPInstanceUID
        assert after.SOPInstanceUID.startswith("2.25.")
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        for old, new in zip(before.get("CodingSchemeIdentificationSequence", []),
                            after.get("CodingSchemeIdentificationSequence", [])):
            assert new.get("CodingSchemeUID") == old.get("CodingSchemeUID")


def test_rerun_writes_identical_bytes(pairs: dict[Path, Path], converted: Path,
                                      tmp_path: Path) -> None:
    again = deidentify_all(converted, tmp_path)
    assert {s: t.read_bytes() for s, t in again.items()} == \
        {s: t.read_bytes() for s, t in pairs.items()}


def test_api_contract() -> None:
    deid = Deidentifier(SECRET, "site-01")
    assert deid.pseudonym("X1") == pseudonym(SECRET, "site-01", "X1")
    assert deid.date_offset("X1") == deid.date_offset("X1") < 0
    assert deid.shift_date("X1", dt.date(2020, 1, 1)) == \
        dt.date(2020, 1, 1) + dt.timedelta(days=deid.date_offset("X1"))
    assert deid.uid("1.2.3.4") == deid.uid("1.2.3.4") != Deidentifier(b"other", "site-01").uid(
        "1.2.3.4")
    assert deid.uid("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"
    with pytest.raises(ValueError):
        Deidentifier(b"", "site-01")


def test_date_and_descriptor_rules() -> None:
    assert shift_da("20200301", -1) == "20200229"
    assert shift_dt("20200301101500.5+0100", -1) == "20200229101500.5+0100"
    assert shift_dt("202003", -1) == "202002"
    assert is_clean_descriptor("TAVI CTA 0.9 XCB")
    assert not is_clean_descriptor("CT Mueller")            # unknown word: a name, perhaps
    assert not is_clean_descriptor("CT 2018-07-14")         # dates never pass
    assert not is_clean_descriptor("CT 15906720")           # nor long numbers (ids)


def test_free_text_is_replaced_unless_clean() -> None:
    ds = Dataset()
    ds.PatientID = "X1"
    ds.StudyDescription = "CT TAVI planning"
    ds.SeriesDescription = "Mueller CT"
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = "seen by Dr. Mueller on 2018-07-14"
    ds.ContentSequence = [item]
    Deidentifier(SECRET, "site-01").dataset(ds)
    assert ds.StudyDescription == "CT TAVI planning"
    assert "SeriesDescription" not in ds
    assert "Mueller" not in ds.ContentSequence[0].TextValue
