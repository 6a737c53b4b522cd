"""Facts derived from coded procedures as the TAVI study declares them (study.yaml: derived):
the first TAVI, and a pacemaker within 30 days after it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from srcohort.sources.tables import TableRecord
from srcohort.study.load import load_study
from srcohort.study.record import PatientInputs, Record

D = dt.date
STUDY = load_study("tavi")


def _record(*procedures: tuple[str, dt.date]) -> Record:
    inputs = PatientInputs("site", "", "P1", tables={"procedures": [
        TableRecord(Path("ops.csv"), line, {"patient_id": "P1", "code": code, "date": day})
        for line, (code, day) in enumerate(procedures, start=2)]})
    return Record(STUDY, inputs)


def test_no_tavi_code_means_no_outcome() -> None:
    record = _record(("5-377.30", D(2020, 1, 5)), ("3-228", D(2020, 1, 1)))
    assert record.value("derived.tavi_procedure") is None
    assert record.value("derived.pacemaker") is None


def test_pacemaker_within_30_days_of_first_tavi() -> None:
    record = _record(("5-377.30", D(2020, 1, 31)), ("5-35a.00", D(2020, 1, 1)),
                     ("5-35a.01", D(2020, 1, 20)))
    assert record.value("derived.tavi_procedure.date") == D(2020, 1, 1)
    assert record.value("derived.pacemaker.exists") == "yes"
    assert record.value("derived.pacemaker.date") == D(2020, 1, 31)
    assert record.value("procedures.listing") == \
        "5-35a.00 2020-01-01; 5-35a.01 2020-01-20; 5-377.30 2020-01-31"


def test_pacemaker_after_the_window_or_before_tavi_does_not_count() -> None:
    late = _record(("5-35a.00", D(2020, 1, 1)), ("5-377.1", D(2020, 2, 1)))
    before = _record(("5-377.1", D(2019, 12, 31)), ("5-35a.01", D(2020, 1, 1)))
    for record in (late, before):
        assert record.value("derived.tavi_procedure") is not None
        assert record.value("derived.pacemaker.exists") == "no"
        assert record.value("derived.pacemaker.date") is None
