"""The training label of a cohort patient, as the study declares it (``label`` in study.yaml):
a coded field of one template, read as yes, no or unknown.

Declared once so the federated counts and the training export read the same label the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from srcohort.study.model import Study

LABELS = ("yes", "no", "unknown")


@dataclass(frozen=True)
class LabelSpec:
    """A coded field of one SR template profile, read as a binary label."""

    profile: str
    field: str
    positive: str
    negative: str
    name: str = ""

    @classmethod
    def of_study(cls, study: Study) -> LabelSpec:
        """The study's label; a study without one has no training label to export."""
        if study.label is None:
            raise ValueError(f"study {study.name!r} declares no label")
        label = study.label
        return cls(label.template, label.field, label.positive, label.negative,
                   label.name or label.field)

    def of(self, patient: dict[str, Any]) -> str:
        """``yes``, ``no`` or ``unknown`` (no labelled SR, another answer, or SRs that disagree:
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
