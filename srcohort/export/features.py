"""Tabular features of a cohort patient, with every column traced back to an SR template path.

The columns come from the installed template profiles (``sr_templates/``), not from the data:
every site writes the same schema, whether or not its patients have a value. Kinds:

* qualitative fields: the coded value (``SCHEME:VALUE``); repeated values sorted, ``|``-joined;
* quantitative fields: the number in the profile's unit; a repeated value takes its first;
* date fields: whole days from the patient's anchor event (the study's), never a date, so no
  calendar date leaves a site (and no date shift has to be trusted);
* text and geometric fields are not exported: free text may identify, and a graphic type
  is not a feature.

When a patient has several SRs of one template (two ECG reports), those belonging to the
selected sample (they reference a selected series) are preferred, and among them the sample's
own date rule decides: the latest on or before the anchor event, else the earliest after it,
else the latest (``choose_annotation``). Ages are top-coded at 90, as HIPAA's Safe Harbor and
the Retain Patient Characteristics option's guidance suggest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from srcohort.export.selection import sample_rank
from srcohort.sr.profiles import Profile

EXPORTED_KINDS = ("qualitative", "quantitative", "date")
AGE_FIELDS = {"age"}
AGE_TOP_CODE = 90.0


@dataclass(frozen=True)
class Column:
    """One feature column and where its values come from."""

    name: str
    profile: str
    profile_name: str
    field: str
    kind: str
    path: tuple[str, ...]
    unit: str | None

    @property
    def dtype(self) -> str:
        return {"qualitative": "string", "quantitative": "float64", "date": "Int32"}[self.kind]

    @property
    def description(self) -> str:
        where = f"SR template {self.profile} ({self.profile_name}), content path " \
                f"{' / '.join(self.path)}"
        if self.kind == "date":
            return f"days from the anchor event to the DATE at {where}"
        unit = f", unit {self.unit}" if self.unit else ""
        return f"{self.kind} value at {where}{unit}"


def profile_slug(template: str) -> str:
    """Column prefix of a profile: ``tid1500`` for DICOM templates, the id for custom ones."""
    return f"tid{template}" if template.isdigit() else template


def feature_columns(profiles: Iterable[Profile]) -> list[Column]:
    """The exported columns, in profile then content order (the same at every site)."""
    columns: list[Column] = []
    seen: set[str] = set()
    for profile in sorted(profiles, key=lambda p: p.template):
        for (path, _), node in profile.fields.items():
            if node.filter not in EXPORTED_KINDS or node.field is None:
                continue
            name = f"{profile_slug(profile.template)}.{node.field}"
            if name in seen:     # one field named at several paths: one column
                continue
            seen.add(name)
            columns.append(Column(name, profile.template, profile.name, node.field, node.filter,
                                  path, node.unit))
    return columns


def choose_annotation(annotations: Sequence[dict], *, selected_series: set[str],
                      anchor: str) -> dict | None:
    """The annotation that speaks for the patient's sample: one referencing a selected series
    if any, chosen by the sample's own date rule (``selection.sample_rank``)."""
    if not annotations:
        return None
    linked = [a for a in annotations if selected_series & set(a.get("referenced_series", []))]
    return min(linked or annotations,
               key=lambda a: sample_rank(a, anchor, uid_key="sop_instance_uid"))


def patient_features(patient: dict[str, Any], columns: Sequence[Column], *,
                     selected_series: set[str], anchor: str) -> dict[str, Any]:
    """One value (or None) per column for ``patient`` (a patient document of the index)."""
    event = patient.get("events", {}).get(anchor)
    by_profile: dict[str, list[dict]] = {}
    for annotation in patient.get("annotations", []):
        if annotation.get("profile"):
            by_profile.setdefault(annotation["profile"], []).append(annotation)
    chosen = {profile: choose_annotation(items, selected_series=selected_series, anchor=anchor)
              for profile, items in by_profile.items()}
    row: dict[str, Any] = {}
    for column in columns:
        annotation = chosen.get(column.profile)
        value = None if annotation is None else annotation.get("fields", {}).get(column.field)
        row[column.name] = _value(column, value, event)
    return row


def _value(column: Column, value: Any, event: str | None) -> Any:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if column.kind == "qualitative":
        return "|".join(sorted({str(v) for v in values}))
    if column.kind == "quantitative":
        number = float(values[0])
        return min(number, AGE_TOP_CODE) if column.field in AGE_FIELDS else number
    if event is None:
        return None
    return (dt.date.fromisoformat(str(values[0])) - dt.date.fromisoformat(event)).days
