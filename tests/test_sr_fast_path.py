"""The fast SR path (copies of highdicom-built prototypes) against highdicom's constructors.

Every SR family of a synthetic consortium is built both ways with the clock frozen, and the
two must be the same dataset and the same bytes: no attribute is allowed to differ. The
prototypes are built under another clock than the comparison, so a creation time copied from a
prototype instead of set per instance would show. The fast path must also not depend on which
patient's data its prototypes came from (a fresh process, patients in reverse order), keep its
prototypes safe from changes to what it handed out, fail on bad input as highdicom fails, and
write what dciodvfy and dsrdump accept.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import io
import multiprocessing
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import highdicom.base
import highdicom.base_content
import highdicom.sr.sop
import pytest
from pydicom.dataset import Dataset

import srcohort.sr.sop
from srcohort.convert.patients import PatientInputs, build_patient, with_ct
from srcohort.convert.report import ConversionReport, Quarantine
from srcohort.convert.site import collect_patients
from srcohort.sources.images import scan_series
from srcohort.sources.mapping import load_mapping
from srcohort.sr import items
from srcohort.sr.ecg import EcgReport, EcgReportSR
from srcohort.study.load import load_study
from srcohort.study.model import code_of
from tests.dicom_validators import dciodvfy, dsrdump, require_tool
from tests.test_ecg_report import VARIANTS, _recording, _waveform

PROTOTYPE_TIME = dt.datetime(2023, 1, 2, 3, 4, 5, 678901)
COMPARISON_TIME = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
CLOCK_MODULES = (highdicom.base, highdicom.base_content, highdicom.sr.sop)
T = TypeVar("T")
STUDY = load_study("tavi")
FAMILIES = {"CardiovascularPatientHistoryReport", "TAVIProcedureOutcomeReport",
            "TAVIPlanningMeasurementsReport"}


def _frozen_datetime_module(at: dt.datetime) -> types.SimpleNamespace:
    """What highdicom and srcohort.sr.sop use of the ``datetime`` module, with ``now`` fixed."""
    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:
            return at
    return types.SimpleNamespace(datetime=Frozen, date=dt.date, time=dt.time)


def _freeze(monkeypatch: pytest.MonkeyPatch, at: dt.datetime) -> None:
    fake = _frozen_datetime_module(at)
    for module in CLOCK_MODULES:
        monkeypatch.setattr(module, "datetime", fake)
    monkeypatch.setattr(srcohort.sr.sop, "dt", fake)


def _patients(consortium: Path, scratch: Path) -> list[PatientInputs]:
    """Every patient of every site, assembled the way ``convert_site`` assembles them."""
    patients: list[PatientInputs] = []
    for site_dir in sorted(consortium.glob("site-*")):
        mapping = load_mapping(site_dir)
        report = ConversionReport(mapping.site)
        series, _, _ = scan_series(mapping.images, site_dir)
        found, _ = collect_patients(mapping, series,
                                     Quarantine(scratch / site_dir.name, site_dir, report),
            dt.date.today())
        patients += [with_ct(found[pid]) for pid in sorted(found)]
    return patients


def _bytes(sr: Dataset) -> bytes:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _reference(build: Callable[[], T]) -> T:
    """What ``build`` makes with highdicom's constructors alone."""
    with items.highdicom_only():
        return build()


def _srs(patients: list[PatientInputs]) -> Iterator[Dataset]:
    for inputs in patients:
        for sr, _ in build_patient(STUDY, inputs).reports:
            yield sr


@pytest.fixture(scope="module")
def patients(small_consortium: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> list[PatientInputs]:
    return _patients(small_consortium, tmp_path_factory.mktemp("quarantine"))


@pytest.fixture
def both_ways(patients: list[PatientInputs], monkeypatch: pytest.MonkeyPatch
              ) -> list[tuple[Dataset, Dataset]]:
    """(fast, highdicom) for every SR of the consortium, each built on another day: the
    prototypes and highdicom's reference under one clock, the copies under another."""
    _freeze(monkeypatch, PROTOTYPE_TIME)
    list(_srs(patients))                          # prototypes
    reference = _reference(lambda: list(_srs(patients)))
    _freeze(monkeypatch, COMPARISON_TIME)
    fast = list(_srs(patients))
    return list(zip(fast, reference, strict=True))


def test_fast_path_gives_the_same_datasets_and_bytes_as_highdicom(
        both_ways: list[tuple[Dataset, Dataset]]) -> None:
    families = {type(fast).__name__ for fast, _ in both_ways}
    assert families == FAMILIES
    assert any("CurrentRequestedProcedureEvidenceSequence" not in sr for sr, _ in both_ways)
    for fast, reference in both_ways:
        assert type(fast) is type(reference)
        differing = sorted({e.keyword for e in reference if fast.get(e.tag) != e} |
                           {e.keyword for e in fast if e.tag not in reference})
        assert differing == [], fast.SOPInstanceUID
        assert fast.file_meta == reference.file_meta
        assert fast.preamble == reference.preamble
        assert _bytes(fast) == _bytes(reference)
        assert "InstanceCreationDate" not in fast and "InstanceCreationTime" not in fast
        assert all("ContributionDateTime" not in item
                   for item in fast.ContributingEquipmentSequence
                   if item.ManufacturerModelName == "highdicom")
        assert str(fast.ContentDate) not in ("20230102", "20240506")


def test_a_family_with_its_own_constructor_gets_the_same_bytes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ECG report subclass prunes the tree highdicom parses and sets the whole one after."""
    _freeze(monkeypatch, COMPARISON_TIME)
    for variant in VARIANTS.values():
        recording = _recording(**variant)

        def report() -> EcgReportSR:
            waveform = _waveform()
            return EcgReportSR(waveform, EcgReport(recording, waveform), site="site-e")
        fast, fast_again, reference = report(), report(), _reference(report)
        assert _bytes(fast) == _bytes(fast_again) == _bytes(reference)


def test_fast_path_keeps_highdicoms_parsed_content(
        both_ways: list[tuple[Dataset, Dataset]]) -> None:
    for fast, reference in both_ways:
        assert list(fast.content) == list(reference.content)
        assert type(fast.content[0]) is type(reference.content[0])


def _digests(patients: list[PatientInputs]) -> dict[str, str]:
    """SHA-256 of every SR's bytes by SOP Instance UID, at the comparison time."""
    fake = _frozen_datetime_module(COMPARISON_TIME)
    for module in CLOCK_MODULES:
        setattr(module, "datetime", fake)
    srcohort.sr.sop.dt = fake  # type: ignore[assignment]
    return {sr.SOPInstanceUID: hashlib.sha256(_bytes(sr)).hexdigest() for sr in _srs(patients)}


def test_copies_do_not_depend_on_which_patient_made_the_prototypes(
        patients: list[PatientInputs], monkeypatch: pytest.MonkeyPatch) -> None:
    """In a fresh process, the last patients make the prototypes the others are copied from."""
    _freeze(monkeypatch, COMPARISON_TIME)
    with items.highdicom_only():
        expected = {sr.SOPInstanceUID: hashlib.sha256(_bytes(sr)).hexdigest()
                    for sr in _srs(patients)}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        assert fresh.submit(_digests, patients[::-1]).result() == expected


def test_changing_a_copy_changes_no_later_copy(patients: list[PatientInputs],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _freeze(monkeypatch, COMPARISON_TIME)
    with_ct = next(inputs for inputs in patients
                   if inputs.ct_headers and inputs.rows("landmarks"))
    first = build_patient(STUDY, with_ct).reports
    expected = [_bytes(sr) for sr, _ in first]
    for sr, _ in first:
        stack = [sr]
        while stack:
            item = stack.pop()
            for sequence in ("ConceptNameCodeSequence", "ConceptCodeSequence"):
                if sequence in item:
                    item[sequence].value[0].CodeValue = "CHANGED"
            stack.extend(item.get("ContentSequence", []))
        sr.SeriesDescription = "CHANGED"
        sr.CodingSchemeIdentificationSequence[0].CodingSchemeName = "CHANGED"
        sr.ContributingEquipmentSequence[-1].Manufacturer = "CHANGED"
    assert [_bytes(sr) for sr, _ in build_patient(STUDY, with_ct).reports] == expected


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
@pytest.mark.parametrize("spoil", ["sex", "birth date", "no evidence", "scoord3d"])
def test_bad_input_fails_as_highdicom_fails(patients: list[PatientInputs], spoil: str) -> None:
    list(_srs(patients[:3]))                      # the fast path has its prototypes
    headers = next(inputs.ct_headers for inputs in patients if inputs.ct_headers)
    evidence = [copy.deepcopy(header) for header in headers]
    outcome = next(sr for sr in _srs(patients) if "Outcome" in type(sr).__name__)
    content = outcome.content
    if spoil == "sex":
        evidence[0].PatientSex = "X"
    elif spoil == "birth date":
        evidence[0].PatientBirthDate = "19371332"
    elif spoil == "no evidence":
        evidence = []
    else:
        planning = next(sr for sr in _srs(patients) if "Planning" in type(sr).__name__)
        content = planning.content                # has SCOORD3D items

    def build() -> Exception:
        with pytest.raises(Exception) as raised:
            type(outcome)(evidence, content, series_instance_uid="1.2.3",
                          sop_instance_uid="1.2.3.4")
        return raised.value
    assert type(build()) is type(_reference(build))


def test_items_are_what_highdicom_builds() -> None:
    finding, date, size = (code_of("SCT:73211009", "Diabetes mellitus"),
                           code_of("99SRCOHORT:PROCEDURE_DATE", "Procedure date"),
                           code_of("99SRCOHORT:PROSTHESIS_SIZE", "Prosthesis nominal size"))
    yes, no = code_of("SCT:373066001", "Yes"), code_of("SCT:373067005", "No")
    source, section = (code_of("99SRCOHORT:SOURCE_DOCUMENT", "Source document"),
                       code_of("LN:11450-4", "Problem list"))

    def every_kind(day: int) -> list[Dataset | None]:
        return [items.code(finding, yes if day % 2 else no),
                items.date(date, dt.date(2021, 3, day)),
                items.num(size, day + 0.5, "mm"), items.num(size, day, "mm"),
                items.text(source, f"registry.csv line {day}"),
                items.section(section, [items.code(finding, no)]),
                items.num(size, None, "mm"), items.section(section, [])]
    every_kind(1)                                 # prototypes from other values
    fast, reference = every_kind(4), _reference(lambda: every_kind(4))
    assert [type(item) for item in fast] == [type(item) for item in reference]
    assert fast == reference


@pytest.mark.validators
def test_fast_srs_pass_dciodvfy_and_dsrdump(both_ways: list[tuple[Dataset, Dataset]],
                                            tmp_path: Path) -> None:
    require_tool("dciodvfy")
    require_tool("dsrdump")
    kinds: dict[tuple[str, bool], Dataset] = {}
    for fast, _ in both_ways:
        kinds.setdefault((type(fast).__name__,
                          "CurrentRequestedProcedureEvidenceSequence" in fast), fast)
    assert len(kinds) >= 5                        # three families, with and without images
    for sr in kinds.values():
        path = tmp_path / f"{sr.SOPInstanceUID}.dcm"
        sr.save_as(path, enforce_file_format=True)
        assert dciodvfy(path) == [], path
        assert dsrdump(path) == [], path
