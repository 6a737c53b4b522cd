"""The per-site mapping file (docs/site-exports.md) as typed, validated objects.

A mapping maps a site's tables, columns and spellings onto the inputs its study declares
(``srcohort.study``). It is configuration, so a mistake in it stops the conversion before
anything is read, with the file, the line and the setting named, and for a value the template
node it would be written to: an unknown key (``delimeter``, ``tabels``) would otherwise be
ignored and surface later as a misleading error, and a path that leaves the site folder would
read the machine's files as patient data.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from srcohort.sources.confine import OutsideSite, inside
from srcohort.study.load import load_study, walk_nodes
from srcohort.study.model import Column, InputTable, Study
from srcohort.yaml_lines import KeyPath, line_of, load_with_lines

SITE_KEYS = {"site", "institution", "study", "images", "ecg", "label_table", "tables"}
# Label maps are a kind of input of every study (docs/segmentations.md), not of one study.
SEGMENTATIONS = InputTable("segmentations", {"patient_id": Column("patient_id", "id", True),
                                             "file": Column("file", "path", True)})
TABLE_KEYS = {"file", "columns", "delimiter", "encoding", "date_format", "decimal", "values"}
SITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class MappingError(ValueError):
    """The mapping file itself is wrong: nothing of the site can be trusted, so stop early."""


@dataclass(frozen=True)
class TableSpec:
    """Where one table is and how the site spells it."""

    name: str
    file: Path
    columns: dict[str, str]
    declared: InputTable                       # what the study says the table holds
    delimiter: str = ","
    encoding: str = "utf-8"
    date_format: str = "%Y-%m-%d"
    decimal: str = "."
    values: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SiteMapping:
    """A site's identity, image folder and tables."""

    site: str
    root: Path
    study: Study
    images: Path | None
    tables: dict[str, TableSpec]
    institution: str = ""
    ecg: Path | None = None            # folder of ECG files
    label_table: Path | None = None    # label value -> structure, for the segmentations


class _Reader:
    """Checks one mapping file; every error names the file and the line of the setting."""

    def __init__(self, path: Path, lines: dict[KeyPath, int]) -> None:
        self.path, self.lines = path, lines

    def error(self, where: KeyPath, reason: str) -> MappingError:
        line = line_of(self.lines, where)
        setting = ".".join(where)
        return MappingError(f"{self.path}{f':{line}' if line else ''}: "
                            f"{setting + ': ' if setting else ''}{reason}")

    def keys(self, raw: Any, where: KeyPath, known: set[str]) -> dict:
        if not isinstance(raw, dict):
            raise self.error(where, f"expected a mapping, got {type(raw).__name__}")
        for key in raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else \
                    f" (known: {', '.join(sorted(known))})"
                raise self.error(where + (str(key),), f"unknown key {str(key)!r}{hint}")
        return raw

    def text(self, raw: dict, where: KeyPath, key: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.error(where + (key,), f"expected text, got {value!r}")
        return str(value)

    def site_path(self, root: Path, raw: dict, where: KeyPath, key: str, *,
                  folder: bool | None = None) -> Path:
        try:
            path = inside(root, str(raw[key]), ".".join(where + (key,)))
        except OutsideSite as exc:
            raise self.error(where + (key,), str(exc).split(": ", 1)[1]) from None
        if folder is not None and path.exists() and path.is_dir() != folder:
            raise self.error(where + (key,), f"{raw[key]!r} is not a "
                                             f"{'folder' if folder else 'file'}")
        return path


def load_mapping(site_dir: Path, study: Study | None = None) -> SiteMapping:
    """Read ``<site_dir>/mapping.yaml`` and check it against the inputs of its study: ``study``,
    else the one the mapping names (``study:``), else the active one (``load_study``)."""
    path = site_dir / "mapping.yaml"
    try:
        raw, lines = load_with_lines(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc}") from exc
    except yaml.YAMLError as exc:         # the parser names line and column
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    reader = _Reader(path, lines)
    raw = reader.keys(raw, (), SITE_KEYS)
    site = reader.text(raw, (), "site", "")
    if not SITE_ID.fullmatch(site):
        raise reader.error(("site",), f"expected a short id of letters, digits, '.', '_' or "
                                      f"'-' (at most 64), got {site!r}")
    if study is None:
        study = load_study(reader.text(raw, (), "study", ""))
    elif raw.get("study") not in (None, study.name):
        raise reader.error(("study",), f"the mapping is for study {raw['study']!r}, the run "
                                       f"for {study.name!r}")
    declared = {**study.inputs, SEGMENTATIONS.name: SEGMENTATIONS}
    tables_raw = raw.get("tables") or {}
    reader.keys(tables_raw, ("tables",), set(declared))
    tables = {str(name): _table(reader, site_dir, declared[str(name)], spec, study)
              for name, spec in tables_raw.items()}
    optional: dict[str, Path | None] = {
        key: reader.site_path(site_dir, raw, (), key, folder=key == "ecg") if raw.get(key)
        else None for key in ("ecg", "label_table")}
    if "segmentations" in tables and optional["label_table"] is None:
        raise reader.error(("tables", "segmentations"), "a segmentations table needs a "
                                                        "'label_table'")
    images = reader.site_path(site_dir, {"images": raw.get("images", "images")}, (), "images",
                              folder=True)
    if "images" in raw and not images.is_dir():
        raise reader.error(("images",), f"folder {raw['images']!r} does not exist")
    return SiteMapping(site=site, root=site_dir, study=study,
                       images=images if images.is_dir() else None,
                       tables=tables, institution=reader.text(raw, (), "institution", ""),
                       **optional)


def _table(reader: _Reader, site_dir: Path, declared: InputTable, spec: Any, study: Study
           ) -> TableSpec:
    name = declared.name
    where = ("tables", name)
    spec = reader.keys(spec, where, TABLE_KEYS)
    for key in ("file", "columns"):
        if key not in spec:
            raise reader.error(where, f"table '{name}' needs '{key}'")
    columns_raw = reader.keys(spec["columns"], where + ("columns",), set(declared.columns))
    columns = {str(k): str(v) for k, v in columns_raw.items()}
    missing = declared.required - columns.keys()
    if missing:
        raise reader.error(where + ("columns",), f"missing columns {sorted(missing)}")
    values_raw = reader.keys(spec.get("values") or {}, where + ("values",), set(columns))
    values = {}
    for column, table in values_raw.items():
        here = where + ("values", str(column))
        if not isinstance(table, dict):
            raise reader.error(here, "expected a mapping of the site's spelling to a value")
        vocabulary = declared.columns[str(column)].vocabulary
        for spelling, value in table.items():
            if vocabulary is not None and str(value) not in vocabulary.terms:
                raise reader.error(here + (str(spelling),),
                                   f"{str(value)!r} is not a value of '{column}' (vocabulary "
                                   f"{vocabulary.name}: {', '.join(vocabulary.terms)}; "
                                   f"{_written_to(study, name, str(column))})")
        values[str(column)] = {str(k): str(v) for k, v in table.items()}
    delimiter = reader.text(spec, where, "delimiter", ",")
    if len(delimiter) != 1:
        raise reader.error(where + ("delimiter",), f"expected one character, got {delimiter!r}")
    encoding = reader.text(spec, where, "encoding", "utf-8")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise reader.error(where + ("encoding",), f"unknown encoding {encoding!r} (e.g. "
                                                  f"utf-8, latin-1, cp1252)") from None
    date_format = reader.text(spec, where, "date_format", "%Y-%m-%d")
    if not _round_trips(date_format):
        raise reader.error(where + ("date_format",), f"{date_format!r} is not a strptime "
                                                     f"date format (e.g. %d.%m.%Y)")
    decimal = reader.text(spec, where, "decimal", ".")
    if decimal not in (".", ","):
        raise reader.error(where + ("decimal",), f"expected '.' or ',', got {decimal!r}")
    return TableSpec(name=name, file=reader.site_path(site_dir, spec, where, "file",
                                                      folder=False),
                     columns=columns, declared=declared, delimiter=delimiter, encoding=encoding,
                     date_format=date_format, decimal=decimal, values=values)


def _written_to(study: Study, table: str, column: str) -> str:
    """Where a column's values end up: the template nodes written from it."""
    nodes = [f"template {t.template} node {node.concept} ({node.meaning or node.value_type})"
             for t in study.templates for node in walk_nodes(t)
             if node.source == f"{table}.{column}"]
    nodes += [f"template {t.template} groups" for t in study.templates
              if any(g.table == table for g in t.groups)]
    return "written to " + ", ".join(nodes) if nodes else "written to no template"


def _round_trips(date_format: str) -> bool:
    """Whether a date written in ``date_format`` reads back as the same day."""
    day = dt.date(2003, 11, 27)
    try:
        return dt.datetime.strptime(day.strftime(date_format), date_format).date() == day
    except ValueError:
        return False
