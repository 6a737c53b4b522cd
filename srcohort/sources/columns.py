"""The canonical input columns a site's tables map onto, with what a plausible value is.

Each column has a kind (how a cell is parsed) and the rules a parsed value must meet: allowed
values, a numeric range, a code syntax, dates neither in the future nor before the patient's
birth. A value that breaks a rule is refused with the rule, like one that does not parse: a
valve of -26 mm, a procedure in 2068 (a two-digit year read with ``%y``) or a spreadsheet
formula in a code column is not data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from srcohort import codes

EARLIEST = "1900-01-01"          # no date of care before this


@dataclass(frozen=True)
class Column:
    """One canonical column: its kind (id, date, number, code, text, path) and rules."""

    kind: str
    values: frozenset[str] = frozenset()   # code: the canonical values
    min: float | None = None               # number: inclusive range
    max: float | None = None
    pattern: str | None = None             # text/code: the syntax every value matches
    syntax: str = ""                       # the pattern's name, for messages

    def check_pattern(self, value: str) -> bool:
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None


YES_NO = frozenset({"yes", "no"})
# OPS (German procedure classification): chapter digit, dash, three characters, then up to
# two two-character levels after a dot, e.g. 5-35a.01, 8-837.00, 3-228
OPS = r"[1-9]-[0-9]{2}[0-9a-z](\.[0-9a-z]{1,2})?"

TABLES: dict[str, tuple[set[str], dict[str, Column]]] = {
    # table -> (required columns, every column)
    "registry": ({"patient_id"}, {
        "patient_id": Column("id"),
        "tavi_date": Column("date"),
        "prosthesis": Column("code", frozenset(codes.PROSTHESES)),
        "prosthesis_size": Column("number", min=14, max=40),     # mm, nominal valve sizes
        "diabetes": Column("code", YES_NO),
        "smoking": Column("code", frozenset(codes.SMOKING)),
        "lbbb": Column("code", YES_NO),
        "sex": Column("code", frozenset({"M", "F", "O"})),
        "birth_date": Column("date"),
    }),
    "procedures": ({"patient_id", "code", "date"}, {
        "patient_id": Column("id"),
        "code": Column("text", pattern=OPS, syntax="an OPS code (e.g. 5-35a.01)"),
        "date": Column("date"),
    }),
    "landmarks": ({"patient_id", "landmark", "x", "y", "z"}, {
        "patient_id": Column("id"),
        "landmark": Column("code", frozenset(codes.LANDMARKS)),
        **{axis: Column("number", min=-10000, max=10000) for axis in "xyz"},   # mm
    }),
    "measurements": ({"patient_id", "measurement", "value", "unit"}, {
        "patient_id": Column("id"),
        "measurement": Column("code", frozenset(codes.MEASUREMENTS)),
        "value": Column("number", min=0, max=1e7),
        "unit": Column("text"),
    }),
    "segmentations": ({"patient_id", "file"}, {
        "patient_id": Column("id"),
        "file": Column("path"),
    }),
}
TABLE_COLUMNS: dict[str, tuple[set[str], set[str]]] = {
    name: (required, set(columns) - required) for name, (required, columns) in TABLES.items()}
ENUMS: dict[str, frozenset[str]] = {
    name: column.values for _, columns in TABLES.values() for name, column in columns.items()
    if column.kind == "code"}
