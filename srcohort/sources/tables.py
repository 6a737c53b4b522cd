"""CSV tables -> canonical records, one bad row at a time.

Each hospital's table is read with its own delimiter, encoding, date format and decimal mark,
and every cell is turned into a typed canonical value that meets the rules its study declares
for the column (``study.model.Column``): a term of its vocabulary, a number in its range, a
text of its syntax, a date neither in the future nor before 1900 or the patient's birth. A row that does not parse or breaks a rule becomes a ``RowError`` naming file,
line and reason; the rows around it are unaffected. Spreadsheet habits are expected: a UTF-8
byte-order mark (Excel's "CSV UTF-8") is read as such, and a file that does not decode says
which encoding to set.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srcohort import units
from srcohort.sources import identifiers
from srcohort.sources.mapping import TableSpec
from srcohort.study.model import Column

Record = dict[str, Any]
BOM = b"\xef\xbb\xbf"
# A cell may be long (free text, an attacker's 300 000 characters): the row is then refused by
# its column's rules, not the whole table by the csv module's 128 KiB default.
csv.field_size_limit(64 * 1024 * 1024)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EARLIEST = dt.date(1900, 1, 1)          # no date of care before this


@dataclass(frozen=True)
class RowError:
    """Why one row (or a whole file, ``line`` None) could not be read."""

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


def read_table(spec: TableSpec, today: dt.date) -> tuple[list[TableRecord], list[RowError]]:
    """Parse every row of ``spec.file``; return the good records and one error per bad row.
    Dates after ``today`` are refused (no site exports what has not happened)."""
    try:
        rows = _rows(spec)
    except (OSError, csv.Error, ValueError) as exc:
        return [], [RowError(spec.file, None, f"cannot read table '{spec.name}': {exc}")]
    if not rows:
        return [], [RowError(spec.file, None, f"table '{spec.name}' is empty")]
    header = [cell.strip() for cell in rows[0][1]]
    doubled = sorted({h for h in header if header.count(h) > 1 and h})
    missing = [col for col in spec.columns.values() if col not in header]
    if missing or set(doubled) & set(spec.columns.values()):
        reason = (f"header lacks mapped columns {missing}" if missing else
                  f"header names columns {doubled} more than once")
        return [], [RowError(spec.file, 1, f"{reason} (header: {header[:12]})")]
    index = {canonical: header.index(site_col) for canonical, site_col in spec.columns.items()}
    records: list[TableRecord] = []
    errors: list[RowError] = []
    for line, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        try:
            records.append(TableRecord(spec.file, line, _parse_row(spec, index, row, today)))
        except ValueError as exc:
            pid = row[index["patient_id"]].strip() if len(row) > index["patient_id"] else None
            errors.append(RowError(spec.file, line, str(exc), pid or None))
    return records, errors


def _rows(spec: TableSpec) -> list[tuple[int, list[str]]]:
    """Every record with the line it starts on (a quoted cell may span lines)."""
    data = spec.file.read_bytes()
    utf8 = codecs.lookup(spec.encoding).name in ("utf-8", "utf-8-sig")
    if data.startswith(BOM):
        if not utf8:
            raise ValueError(f"the file starts with a UTF-8 byte-order mark but the mapping "
                             f"says encoding {spec.encoding!r}: set encoding: utf-8")
        data = data[len(BOM):]
    try:
        text = data.decode(spec.encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        hint = "latin-1 or cp1252" if utf8 else "utf-8"
        raise ValueError(f"line {line} is not {spec.encoding} (byte {exc.start}): set "
                         f"'encoding' in mapping.yaml to the file's encoding, e.g. "
                         f"{hint}") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter)
    rows: list[tuple[int, list[str]]] = []
    last = 0
    for row in reader:
        rows.append((last + 1, row))
        last = reader.line_num
    return rows


def _parse_row(spec: TableSpec, index: dict[str, int], row: list[str], today: dt.date
               ) -> Record:
    if len(row) <= max(index.values()):
        raise ValueError(f"row has {len(row)} cells, expected at least {max(index.values()) + 1}")
    record: Record = {}
    columns = spec.declared.columns
    for canonical, position in index.items():
        raw = row[position].strip()
        record[canonical] = _parse_cell(spec, canonical, columns[canonical], raw, today) \
            if raw else None
    if not record.get("patient_id"):
        raise ValueError("patient id is empty")
    birth = record.get("birth_date")
    for name, value in record.items():
        if birth and name != "birth_date" and isinstance(value, dt.date) and value < birth:
            raise ValueError(f"column '{spec.columns[name]}': {value.isoformat()} is before "
                             f"the birth date {birth.isoformat()}")
    return record


def _parse_cell(spec: TableSpec, name: str, column: Column, raw: str, today: dt.date) -> Any:
    site_column = spec.columns[name]
    if name in spec.values:
        if raw not in spec.values[name]:
            raise ValueError(f"column '{site_column}': value {raw!r} is not in the site's "
                             f"value table")
        raw = spec.values[name][raw]
    if column.kind == "id":
        return identifiers.patient_id(raw, f"column '{site_column}'")
    if column.kind == "date":
        return _date(spec, site_column, raw, today)
    if column.kind == "number":
        return _number(spec, site_column, column, raw)
    if raw.startswith(FORMULA_START):
        raise ValueError(f"column '{site_column}': {raw[:40]!r} looks like a spreadsheet "
                         f"formula, not a value")
    if column.kind == "code":
        terms = column.vocabulary.terms if column.vocabulary else {}
        if raw not in terms:
            raise ValueError(f"column '{site_column}': {raw!r} is not one of {sorted(terms)}")
    if column.kind == "unit":
        return units.canonical_unit(raw)
    if column.syntax is not None and not column.syntax.matches(raw):
        raise ValueError(f"column '{site_column}': {raw[:40]!r} is not "
                         f"{column.syntax.description}")
    return raw


def _date(spec: TableSpec, site_column: str, raw: str, today: dt.date) -> dt.date:
    try:
        value = dt.datetime.strptime(raw, spec.date_format).date()
    except ValueError:
        raise ValueError(f"column '{site_column}': {raw!r} is not a date in format "
                         f"{spec.date_format!r}") from None
    if value > today:
        raise ValueError(f"column '{site_column}': {raw!r} is {value.isoformat()}, after the "
                         f"conversion date {today.isoformat()}"
                         + (" (a two-digit year read with %y?)" if "%y" in spec.date_format
                            else ""))
    if value < EARLIEST:
        raise ValueError(f"column '{site_column}': {raw!r} is {value.isoformat()}, before "
                         f"{EARLIEST.isoformat()}")
    return value


def _number(spec: TableSpec, site_column: str, column: Column, raw: str) -> float:
    try:
        value = float(raw.replace(spec.decimal, "."))
    except ValueError:
        raise ValueError(f"column '{site_column}': {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"column '{site_column}': {raw!r} is not a finite number")
    low = -math.inf if column.min is None else column.min
    high = math.inf if column.max is None else column.max
    if not low <= value <= high:
        raise ValueError(f"column '{site_column}': {raw!r} is outside the plausible range "
                         f"{low:g}..{high:g}{f' {column.unit}' if column.unit else ''}")
    return value
