"""The training label of a cohort patient: pacemaker implantation after the TAVI.

Declared here once (which template profile and field carry it, which codes mean yes and no) so
the federated counts and the training export read the same label the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from srcohort.codes import NO, YES

LABELS = ("yes", "no", "unknown")


@dataclass(frozen=True)
class LabelSpec:
    """A coded field of one SR template profile, read as a binary label."""

    profile: str = "srcohort-tavi-outcome"
    field: str = "pacemaker"
    positive: str = f"{YES.scheme_designator}:{YES.value}"
    negative: str = f"{NO.scheme_designator}:{NO.value}"

    def of(self, patient: dict[str, Any]) -> str:
        """``yes``, ``no`` or ``unknown`` (no outcome SR, another answer, or SRs that disagree:
        a contradictory record is not a label to train on)."""
        answers: set[str] = set()
        for annotation in patient.get("annotations", []):
            if annotation.get("profile") != self.profile:
                continue
            value = annotation.get("fields", {}).get(self.field)
            for code in value if isinstance(value, list) else [value]:
                answers.add("yes" if code == self.positive else
                            "no" if code == self.negative else "unknown")
        return answers.pop() if len(answers) == 1 else "unknown"

    def as_int(self, label: str) -> int | None:
        return {"yes": 1, "no": 0}.get(label)


PACEMAKER = LabelSpec()
