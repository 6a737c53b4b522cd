"""Patient timelines: every series and annotation dated relative to the patient's events.

"An ECG with a finding within 90 days before a procedure" compares dates of two different objects of
one patient. OpenSearch cannot compare fields of different nested objects without scripts, so
the roll-up does it once: each event (a DATE item an SR template declares as ``anchor``) is
looked up per patient, and every series and annotation gets ``days_from.<event>`` = its study
date minus the event date. A time window is then a plain range query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from srcohort.sr.profiles import Profile


@dataclass(frozen=True)
class Anchor:
    """Event ``name`` is dated by DATE item ``concept`` of SRs matching ``profile``."""

    name: str
    concept: str
    profile: Profile

    def date_in(self, annotation: dict) -> dt.date | None:
        if not self.profile.matches_identity(annotation.get("template", ""),
                                             annotation.get("title", "")):
            return None
        dates = [dt.date.fromisoformat(d["value"]) for d in annotation.get("dates", [])
                 if d["name"] == self.concept]
        return min(dates, default=None)


def anchors_of(profiles: Iterable[Profile]) -> list[Anchor]:
    return [Anchor(name, concept, profile) for profile in profiles
            for name, concept in sorted(profile.anchors.items())]


def add_offsets(patient: dict, anchors: list[Anchor]) -> None:
    """Set ``events`` on the patient and ``days_from`` on its series and annotations.

    An event that happened more than once (two procedures) is dated by its first occurrence.
    """
    events: dict[str, dt.date] = {}
    for annotation in patient["annotations"]:
        for anchor in anchors:
            date = anchor.date_in(annotation)
            if date is not None and (anchor.name not in events or date < events[anchor.name]):
                events[anchor.name] = date
    patient["events"] = {name: date.isoformat() for name, date in sorted(events.items())}
    for item in patient["series"] + patient["annotations"]:
        if item.get("study_date") and events:
            own = dt.date.fromisoformat(item["study_date"])
            item["days_from"] = {name: (own - date).days for name, date in events.items()}
