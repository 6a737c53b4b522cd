"""Deriving the pacemaker-after-TAVI label from a patient's coded procedures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from srcohort.sr.procedure.enum import OpsFamily

PACEMAKER_WINDOW_DAYS = 30


@dataclass(frozen=True)
class ProcedureOutcome:
    """TAVI date, whether a pacemaker followed within the window, and when."""

    tavi_date: dt.date
    pacemaker: bool
    pacemaker_date: dt.date | None
    codes: tuple[tuple[str, dt.date], ...]


def derive_outcome(procedures: Iterable[tuple[str, dt.date]],
                   window_days: int = PACEMAKER_WINDOW_DAYS) -> ProcedureOutcome | None:
    """Outcome of the first TAVI, or None when the patient has no TAVI code (label unknown).

    A pacemaker counts when coded on the TAVI day or up to ``window_days`` after it; one coded
    before the TAVI or later than the window is a different clinical question.
    """
    ordered = tuple(sorted(procedures, key=lambda item: (item[1], item[0])))
    tavi = [date for code, date in ordered if OpsFamily.TAVI.matches(code)]
    if not tavi:
        return None
    first = tavi[0]
    after = [date for code, date in ordered if OpsFamily.PACEMAKER.matches(code)
             and 0 <= (date - first).days <= window_days]
    return ProcedureOutcome(first, bool(after), after[0] if after else None, ordered)
