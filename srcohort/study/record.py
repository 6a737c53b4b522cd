"""One patient's inputs, and the values the study's template nodes are written from.

A node names its source (``study.model.Node.source``): ``registry.diabetes`` is a cell of the
patient's row of the registry, ``derived.<fact>.date`` a fact derived from rows by the
study's rules (the first matching row, optionally within days after another fact),
``procedures.listing`` the rows of a table as provenance text, ``registry.source`` the file and
line a row came from. Pure: no file is read, so records are built and resolved in worker
processes and tests alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from srcohort.sources.images import Series
from srcohort.sources.tables import TableRecord
from srcohort.study.model import Derived, Study


@dataclass(frozen=True)
class Fact:
    """A derived fact: the row that establishes it and its date."""

    date: dt.date
    row: TableRecord


@dataclass
class PatientInputs:
    """Everything a site has about one patient, after table parsing."""

    site: str
    institution: str
    patient_id: str
    ct_headers: list[Dataset] = field(default_factory=list)   # of ``ct``, once read
    tables: dict[str, list[TableRecord]] = field(default_factory=dict)
    # the first CT series, whose headers are read only when the patient is built
    # (``convert.patients.with_ct``): a site's headers together would not fit in memory
    ct: Series | None = None

    def rows(self, table: str) -> list[TableRecord]:
        return self.tables.get(table, [])

    @property
    def all_rows(self) -> list[TableRecord]:
        return [row for rows in self.tables.values() for row in rows]


class Record:
    """The values of one patient's sources for one study."""

    def __init__(self, study: Study, inputs: PatientInputs) -> None:
        self.study, self.inputs = study, inputs
        self.facts = derive(study.derived, inputs)

    def value(self, source: str) -> Any:
        """What ``source`` holds for this patient, or None when nothing was recorded."""
        parts = source.split(".")
        if parts[0] == "derived":
            fact = self.facts.get(parts[1])
            if len(parts) == 2:
                return fact
            if parts[2] == "exists":
                return "yes" if fact is not None else "no"
            return None if fact is None else fact.date
        rows = self.inputs.rows(parts[0])
        if len(parts) == 1:
            return rows or None
        if parts[1] == "listing":
            return listing(self.study, parts[0], rows)
        row = rows[0] if rows else None
        if row is None:
            return None
        if parts[1] == "source":
            return f"{row.file.name} line {row.line}"
        return row.values.get(parts[1])

    def present(self, sources: tuple[str, ...]) -> bool:
        """Whether any of ``sources`` has a value (no sources: always)."""
        return not sources or any(self.value(s) is not None for s in sources)


def derive(rules: dict[str, Derived], inputs: PatientInputs) -> dict[str, Fact | None]:
    """Each rule's fact: the earliest row (by date, then value) whose column starts with one
    of its prefixes, and for a rule ``after`` another, dated within its days after that fact
    (none without it)."""
    facts: dict[str, Fact | None] = {}
    for name, rule in rules.items():
        rows = sorted((row for row in inputs.rows(rule.table)
                       if str(row.values.get(rule.column) or "").startswith(rule.prefixes)),
                      key=lambda row: (_date(row), str(row.values.get(rule.column))))
        if rule.after is not None:
            anchor = facts.get(rule.after)
            low, high = rule.days or (0, 0)
            rows = [] if anchor is None else [
                row for row in rows if low <= (_date(row) - anchor.date).days <= high]
        facts[name] = Fact(_date(rows[0]), rows[0]) if rows else None
    return facts


def _date(row: TableRecord) -> dt.date:
    return next(v for v in row.values.values() if isinstance(v, dt.date))


def listing(study: Study, table: str, rows: list[TableRecord]) -> str | None:
    """A table's rows of one patient as provenance text, ``value date; value date``, in date
    order: every column but the patient id, as the table declares them."""
    columns = [c for c in study.inputs[table].columns if c != "patient_id"]
    ordered = sorted(rows, key=lambda row: tuple(str(row.values.get(c)) for c in reversed(columns)))
    text = "; ".join(" ".join(_text(row.values.get(c)) for c in columns) for row in ordered)
    return text or None


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)
