"""Mapping files and CSV tables: canonical records, and bad rows named by file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from srcohort.sources.mapping import MappingError, load_mapping
from srcohort.sources.tables import read_table


TODAY = dt.date(2026, 1, 1)     # a fixed conversion day: the tests hold on any calendar day


def _site(tmp_path: Path, mapping: str, table: str, encoding: str = "utf-8") -> Path:
    (tmp_path / "tables").mkdir()
    (tmp_path / "mapping.yaml").write_text(mapping, "utf-8")
    (tmp_path / "tables" / "reg.csv").write_bytes(table.encode(encoding))
    return tmp_path


MAPPING = """
site: site-x
tables:
  registry:
    file: tables/reg.csv
    delimiter: ";"
    encoding: latin-1
    date_format: "%d.%m.%Y"
    decimal: ","
    columns: {patient_id: PatNr, tavi_date: Datum, prosthesis: Klappe, prosthesis_size: Gr,
              diabetes: DM, smoking: Rauchen}
    values:
      prosthesis: {"Evolut PRO+": EVOLUT, "Sapien 3": SAPIEN3}
      diabetes: {ja: "yes", nein: "no"}
      smoking: {aktiv: current, nie: never, früher: former}
"""


def test_registry_rows_become_canonical_records(tmp_path: Path) -> None:
    site = _site(tmp_path, MAPPING, "PatNr;Datum;Klappe;Gr;DM;Rauchen\n"
                                    " 17 ;03.02.2021;Evolut PRO+;26,5;ja;früher\n"
                                    "18;04.02.2021;Sapien 3;23;nein;\n", "latin-1")
    records, errors = read_table(load_mapping(site).tables["registry"], TODAY)
    assert errors == []
    assert records[0].values == {"patient_id": "17", "tavi_date": dt.date(2021, 2, 3),
                                 "prosthesis": "EVOLUT", "prosthesis_size": 26.5,
                                 "diabetes": "yes", "smoking": "former"}
    assert records[1].values["smoking"] is None and records[1].line == 3


@pytest.mark.parametrize("row, reason", [
    ("19;2021-02-03;Sapien 3;23;ja;nie", "'Datum': '2021-02-03' is not a date in format"),
    ("19;03.02.2021;Portico;23;ja;nie", "'Klappe': value 'Portico' is not in the site's value"),
    ("19;03.02.2021;Sapien 3;gross;ja;nie", "'Gr': 'gross' is not a number"),
    (";03.02.2021;Sapien 3;23;ja;nie", "patient id is empty"),
    ("19;03.02.2021", "row has 2 cells"),
])
def test_bad_row_is_reported_with_line_and_reason_and_the_rest_survives(
        tmp_path: Path, row: str, reason: str) -> None:
    site = _site(tmp_path, MAPPING, "PatNr;Datum;Klappe;Gr;DM;Rauchen\n"
                                    f"{row}\n18;04.02.2021;Sapien 3;23;nein;nie\n", "latin-1")
    records, errors = read_table(load_mapping(site).tables["registry"], TODAY)
    assert [r.values["patient_id"] for r in records] == ["18"]
    assert len(errors) == 1 and errors[0].line == 2 and reason in errors[0].reason
    assert errors[0].file.name == "reg.csv"


def test_missing_header_column_fails_the_table_not_the_site(tmp_path: Path) -> None:
    site = _site(tmp_path, MAPPING, "PatNr;Datum\n1;03.02.2021\n", "latin-1")
    records, errors = read_table(load_mapping(site).tables["registry"], TODAY)
    assert records == [] and "header lacks mapped columns" in errors[0].reason


@pytest.mark.parametrize("mapping, message", [
    ("tables: {}", "site: expected a short id"),
    ("site: a\ntables: {labs: {file: x.csv, columns: {}}}", "unknown key 'labs'"),
    ("site: a\ntables: {registry: {file: x.csv, columns: {pid: X}}}", "unknown key 'pid'"),
    ("site: a\ntables: {registry: {file: x.csv, columns: {tavi_date: X}}}",
     "missing columns"),
    ("site: [unclosed", "not valid YAML"),
])
def test_invalid_mapping_names_the_problem(tmp_path: Path, mapping: str, message: str) -> None:
    (tmp_path / "mapping.yaml").write_text(mapping, "utf-8")
    with pytest.raises(MappingError, match=message):
        load_mapping(tmp_path)
