"""The pacemaker-after-TAVI label from coded procedures."""

from __future__ import annotations

import datetime as dt

from srcohort.sr.procedure.utils import derive_outcome

D = dt.date


def test_no_tavi_code_means_unknown() -> None:
    assert derive_outcome([("5-377.30", D(2020, 1, 5)), ("3-228", D(2020, 1, 1))]) is None


def test_pacemaker_within_30_days_of_first_tavi() -> None:
    outcome = derive_outcome([("5-377.30", D(2020, 1, 31)), ("5-35a.00", D(2020, 1, 1))])
    assert outcome and outcome.pacemaker and outcome.pacemaker_date == D(2020, 1, 31)
    assert outcome.tavi_date == D(2020, 1, 1)


def test_pacemaker_after_the_window_or_before_tavi_does_not_count() -> None:
    late = derive_outcome([("5-35a.00", D(2020, 1, 1)), ("5-377.1", D(2020, 2, 1))])
    before = derive_outcome([("5-377.1", D(2019, 12, 31)), ("5-35a.01", D(2020, 1, 1))])
    assert late and not late.pacemaker and late.pacemaker_date is None
    assert before and not before.pacemaker
