"""CSV tables -> canonical records, one bad row at a time.

Each hospital's table is read with its own delimiter, encoding, date format and decimal mark,
and every cell is turned into a typed canonical value. A row that does not parse becomes a
``RowError`` naming file, line and reason; the rows around it are unaffected.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from srcohort import codes
from srcohort.sources.mapping import TableSpec

Record = dict[str, Any]


@dataclass(frozen=True)
class RowError:
    """Why one row (or a whole table, ``line`` None) could not be read."""

    file: Path
    line: int | None
    reason: str
    patient_id: str | None = None


@dataclass(frozen=True)
class TableRecord:
    """A parsed row and where it came from, for provenance and error messages."""

    file: Path
    line: int
    values: Record


ENUMS: dict[str, set[str]] = {
    "prosthesis": set(codes.PROSTHESES),
    "diabetes": {"yes", "no"},
    "lbbb": {"yes", "no"},
    "smoking": set(codes.SMOKING),
    "sex": {"M", "F", "O"},
    "landmark": set(codes.LANDMARKS),
    "measurement": set(codes.MEASUREMENTS),
}
DATES = {"tavi_date", "date", "birth_date"}
NUMBERS = {"prosthesis_size", "x", "y", "z", "value"}


def read_table(spec: TableSpec) -> tuple[list[TableRecord], list[RowError]]:
    """Parse every row of ``spec.file``; return the good records and one error per bad row."""
    try:
        with spec.file.open(newline="", encoding=spec.encoding) as handle:
            rows = list(csv.reader(handle, delimiter=spec.delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], [RowError(spec.file, None, f"cannot read table '{spec.name}': {exc}")]
    if not rows:
        return [], [RowError(spec.file, None, f"table '{spec.name}' is empty")]
    header = [cell.strip() for cell in rows[0]]
    missing = [col for col in spec.columns.values() if col not in header]
    if missing:
        return [], [RowError(spec.file, 1, f"header lacks mapped columns {missing}")]
    index = {canonical: header.index(site_col) for canonical, site_col in spec.columns.items()}
    records: list[TableRecord] = []
    errors: list[RowError] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            records.append(TableRecord(spec.file, line, _parse_row(spec, index, row)))
        except ValueError as exc:
            pid = row[index["patient_id"]].strip() if len(row) > index["patient_id"] else None
            errors.append(RowError(spec.file, line, str(exc), pid or None))
    return records, errors


def _parse_row(spec: TableSpec, index: dict[str, int], row: list[str]) -> Record:
    if len(row) <= max(index.values()):
        raise ValueError(f"row has {len(row)} cells, expected at least {max(index.values()) + 1}")
    record: Record = {}
    for canonical, position in index.items():
        raw = row[position].strip()
        record[canonical] = _parse_cell(spec, canonical, raw) if raw else None
    if not record.get("patient_id"):
        raise ValueError("patient id is empty")
    return record


def _parse_cell(spec: TableSpec, column: str, raw: str) -> Any:
    if column in spec.values:
        if raw not in spec.values[column]:
            raise ValueError(f"column '{spec.columns[column]}': value {raw!r} is not in the "
                             f"site's value table")
        raw = spec.values[column][raw]
    parser: Callable[[str], Any] | None = None
    if column in DATES:
        parser = lambda text: dt.datetime.strptime(text, spec.date_format).date()  # noqa: E731
    elif column in NUMBERS:
        parser = lambda text: float(text.replace(spec.decimal, "."))  # noqa: E731
    if parser is not None:
        try:
            return parser(raw)
        except ValueError:
            kind = f"a date in format {spec.date_format!r}" if column in DATES else "a number"
            raise ValueError(f"column '{spec.columns[column]}': {raw!r} is not {kind}") from None
    if column in ENUMS and raw not in ENUMS[column]:
        raise ValueError(f"column '{spec.columns[column]}': {raw!r} is not one of "
                         f"{sorted(ENUMS[column])}")
    return raw
