"""The per-site mapping file (docs/site-exports.md) as typed, validated objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TABLE_COLUMNS: dict[str, tuple[set[str], set[str]]] = {
    # table -> (required canonical columns, optional canonical columns)
    "registry": ({"patient_id"}, {"tavi_date", "prosthesis", "prosthesis_size", "diabetes",
                                  "smoking", "lbbb", "sex", "birth_date"}),
    "procedures": ({"patient_id", "code", "date"}, set()),
    "landmarks": ({"patient_id", "landmark", "x", "y", "z"}, set()),
    "measurements": ({"patient_id", "measurement", "value", "unit"}, set()),
    "segmentations": ({"patient_id", "file"}, set()),
}


class MappingError(ValueError):
    """The mapping file itself is wrong: nothing of the site can be trusted, so stop early."""


@dataclass(frozen=True)
class TableSpec:
    """Where one table is and how the site spells it."""

    name: str
    file: Path
    columns: dict[str, str]
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
    images: Path
    tables: dict[str, TableSpec]
    institution: str = ""
    ecg: Path | None = None            # folder of ECG files
    label_table: Path | None = None    # label value -> structure, for the segmentations


def load_mapping(site_dir: Path) -> SiteMapping:
    """Read ``<site_dir>/mapping.yaml`` and check it against the canonical table columns."""
    path = site_dir / "mapping.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc}") from exc
    if not isinstance(raw, dict) or not raw.get("site"):
        raise MappingError(f"{path}: mapping must be a mapping with a 'site' key")
    tables = {name: _table(path, site_dir, name, spec)
              for name, spec in (raw.get("tables") or {}).items()}
    optional = {key: site_dir / str(raw[key]) if raw.get(key) else None
                for key in ("ecg", "label_table")}
    if "segmentations" in tables and optional["label_table"] is None:
        raise MappingError(f"{path}: a segmentations table needs a 'label_table'")
    return SiteMapping(site=str(raw["site"]), root=site_dir,
                       images=site_dir / str(raw.get("images", "images")), tables=tables,
                       institution=str(raw.get("institution", "")), **optional)


def _table(path: Path, site_dir: Path, name: str, spec: Any) -> TableSpec:
    if name not in TABLE_COLUMNS:
        raise MappingError(f"{path}: unknown table '{name}' (known: {sorted(TABLE_COLUMNS)})")
    if not isinstance(spec, dict) or "file" not in spec or "columns" not in spec:
        raise MappingError(f"{path}: table '{name}' needs 'file' and 'columns'")
    required, optional = TABLE_COLUMNS[name]
    columns = {str(k): str(v) for k, v in spec["columns"].items()}
    missing = required - columns.keys()
    unknown = columns.keys() - required - optional
    if missing or unknown:
        raise MappingError(f"{path}: table '{name}': missing columns {sorted(missing)}, "
                           f"unknown columns {sorted(unknown)}")
    values = {str(col): {str(k): str(v) for k, v in table.items()}
              for col, table in (spec.get("values") or {}).items()}
    return TableSpec(name=name, file=site_dir / str(spec["file"]), columns=columns,
                     delimiter=str(spec.get("delimiter", ",")),
                     encoding=str(spec.get("encoding", "utf-8")),
                     date_format=str(spec.get("date_format", "%Y-%m-%d")),
                     decimal=str(spec.get("decimal", ".")), values=values)
