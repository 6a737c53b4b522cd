"""A synthetic consortium for any study, from its declarations alone.

The study's input tables say which columns exist and what a value of each is (a term of a
vocabulary, a number in a range, a date, an id); its ``demo`` section (study.yaml) says how
values are drawn (shares of terms, ranges, a date some days after another, rows per patient).
Each site writes its tables in habits of its own, derived from its number: delimiter, encoding,
date format, decimal mark, column names, spellings of terms and ids; one row per site has an
impossible date, which the converter must quarantine. Patients with images get a small CT.

The ground truth of the study's saved cohorts is computed here, on the generated values, by
a reading of the declarations that shares no code with the converter or the index: which SR
field each column fills, and whether a cohort's conditions hold on what an SR would carry.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from srcohort import units
from srcohort.demo.ct import CTStudy, Geometry, ct_series
from srcohort.logs import get_logger, progress
from srcohort.study.load import walk_nodes
from srcohort.study.model import Study, Template

log = get_logger(__name__)
DELIMITERS = (",", ";", "\t")
ENCODINGS = ("utf-8", "latin-1", "utf-8-sig")
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y")
NAMINGS = ("{name}", "{Name}", "{NAME}", "s{site}_{name}")
LAST_NAMES = ("Novak", "Jensen", "García", "Rossi", "Dubois", "Müller", "Kowalska", "Smith")
FIRST_NAMES = ("Ana", "Jan", "Lea", "Tom", "Eva", "Ole", "Mia", "Ben")


@dataclass
class GeneratedPatient:
    """One patient's canonical values (before any site habit) and whether it has a CT."""

    patient_id: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ct: CTStudy | None = None
    refused: set[str] = field(default_factory=set)        # tables whose row is a fault


@dataclass(frozen=True)
class SiteHabits:
    """How one site writes tables: derived from its number, so every site differs."""

    number: int

    @property
    def delimiter(self) -> str:
        return DELIMITERS[self.number % len(DELIMITERS)]

    @property
    def encoding(self) -> str:
        return ENCODINGS[self.number % len(ENCODINGS)]

    @property
    def date_format(self) -> str:
        return DATE_FORMATS[(self.number // 2) % len(DATE_FORMATS)]

    @property
    def decimal(self) -> str:
        return "," if self.delimiter == ";" else "."

    def column(self, name: str) -> str:
        naming = NAMINGS[(self.number // 3) % len(NAMINGS)]
        return naming.format(name=name, Name=name.title().replace("_", ""),
                             NAME=name.upper(), site=self.number)

    def spelling(self, term: str, meaning: str) -> str:
        return (term, term.lower(), meaning)[self.number % 3] or term


def generate_study_consortium(out: Path, study: Study, *, sites: int = 3,
                              patients_per_site: int = 20, seed: int = 0) -> Path:
    """Write ``<out>/site-NN/`` exports of ``study`` and ``<out>/ground_truth.json``."""
    if not study.demo:
        raise ValueError(f"study {study.name!r} has no 'demo' section to generate sites from")
    out.mkdir(parents=True, exist_ok=True)
    for old in sorted(out.glob("site-*")):
        if (old / "mapping.yaml").is_file():
            shutil.rmtree(old)
    truth_sites: dict[str, Any] = {}
    for number in progress(range(1, sites + 1), total=sites, what="sites", logger=log):
        site = f"site-{number:02d}"
        rng = np.random.default_rng([seed, number, 101])
        patients = [_patient(study, rng, number, seed, i) for i in range(patients_per_site)]
        faults = _write_site(out / site, study, SiteHabits(number), patients, rng)
        truth_sites[site] = {"patients": {p.patient_id: _fields(study, p) for p in patients},
                             "faults": faults}
    cohorts = {name: _cohort_truth(study, yaml.safe_load(entry.read_text("utf-8")), truth_sites)
               for name, entry in study.cohorts.items()}
    truth = {"study": study.name, "seed": seed, "sites_count": sites,
             "patients_per_site": patients_per_site, "cohorts": cohorts, "sites": truth_sites}
    path = out / "ground_truth.json"
    path.write_text(json.dumps(truth, indent=1, ensure_ascii=False, default=str) + "\n", "utf-8")
    log.info("consortium written", extra={"study": study.name, "out": str(out), "sites": sites})
    return path


# -- drawing -----------------------------------------------------------------------------------
def _patient(study: Study, rng: np.random.Generator, site: int, seed: int, index: int
             ) -> GeneratedPatient:
    demo = study.demo
    patient = GeneratedPatient(f"{demo.get('id_prefix', 'P')}{site:02d}-{index + 1:05d}")
    with_images = index == 0 or rng.random() < float(demo.get("images", 0.8))
    for name, spec in demo["tables"].items():
        if spec.get("needs_images") and not with_images:
            continue
        low, high = spec.get("rows", [1, 1])
        count = int(rng.integers(low, high + 1))
        patient.rows[name] = [_row(study, name, spec, rng, n + 1) for n in range(count)]
    if with_images:
        patient.ct = _ct(study, rng, site, seed, patient)
    return patient


def _row(study: Study, table: str, spec: dict[str, Any], rng: np.random.Generator, n: int
         ) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column, draw in spec["columns"].items():
        if rng.random() < float(draw.get("missing", 0.0)):
            row[column] = None
            continue
        condition = draw.get("when")
        if condition and any(row.get(k) != v for k, v in condition.items()):
            row[column] = None
            continue
        row[column] = _draw(study.inputs[table].columns[column].kind, draw, row, rng, n)
    return row


def _draw(kind: str, draw: dict[str, Any], row: dict[str, Any], rng: np.random.Generator,
          n: int) -> Any:
    if "choose" in draw:
        terms, weights = zip(*draw["choose"].items())
        return str(rng.choice(terms, p=np.array(weights, dtype=float) / sum(weights)))
    if "sequence" in draw:
        return str(draw["sequence"]).format(n=n)
    if "after" in draw:
        low, high = draw["days"]
        return row[draw["after"]] + dt.timedelta(days=int(rng.integers(low, high + 1)))
    if "sphere_of" in draw:
        radius = row[draw["sphere_of"]] / 2
        return round(4 / 3 * math.pi * radius ** 3, int(draw.get("round", 0)))
    low, high = draw["between"]
    if kind == "date":
        first, last = dt.date.fromisoformat(str(low)), dt.date.fromisoformat(str(high))
        return first + dt.timedelta(days=int(rng.integers(0, (last - first).days + 1)))
    return round(float(rng.uniform(low, high)), int(draw.get("round", 1)))


def _ct(study: Study, rng: np.random.Generator, site: int, seed: int,
        patient: GeneratedPatient) -> CTStudy:
    demo = study.demo
    listing = next(t for t in study.inputs.values() if t.lists_patients)
    row = patient.rows[listing.name][0]
    day = row.get(str(demo.get("ct_date", ""))) or dt.date(2020, 1, 1)
    spacing = float(rng.choice((10.0, 12.5)))
    geometry = Geometry(origin=(-80.0, -90.0, float(round(rng.uniform(-200, -100)))),
                        pixel_spacing=spacing, slice_spacing=10.0, size=16, slices=4)
    return CTStudy(
        uid_parts=("srcohort-demo", study.name, str(seed), str(site), patient.patient_id),
        patient_id=patient.patient_id,
        patient_name=f"{rng.choice(LAST_NAMES)}^{rng.choice(FIRST_NAMES)}",
        birth_date=row.get("birth_date") or dt.date(1950, 6, 1), sex=row.get("sex") or "O",
        study_date=day, study_time="101500",
        accession_number=f"{site:02d}{int(rng.integers(10**6, 10**7))}",
        referring_physician="Doe^Jane", institution=f"Demo Hospital {site}",
        manufacturer="ACME", model="Scanner 1", series_description=str(demo.get(
            "series_description", "CT")), geometry=geometry, lumen_center=(-10.0, -20.0),
        lumen_radius=20.0, study_description=str(demo.get("study_description", "CT")),
        body_part=str(demo.get("body_part", "CHEST")))


# -- writing a site ----------------------------------------------------------------------------
def _write_site(root: Path, study: Study, habits: SiteHabits, patients: list[GeneratedPatient],
                rng: np.random.Generator) -> list[dict[str, Any]]:
    root.mkdir(parents=True)
    for patient in patients:
        if patient.ct is not None:
            for k, ds in enumerate(ct_series(patient.ct)):
                path = root / "images" / patient.patient_id / f"IM{k + 1:04d}.dcm"
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
    faults: list[dict[str, Any]] = []
    tables: dict[str, Any] = {}
    listing = next(t for t in study.inputs.values() if t.lists_patients).name
    victim = patients[int(rng.integers(1, len(patients)))] if len(patients) > 1 else None
    for name in study.demo["tables"]:
        declared = study.inputs[name]
        columns = [c for c in declared.columns if c in study.demo["tables"][name]["columns"]
                   or c == "patient_id"]
        header = [habits.column(c) for c in columns]
        lines: list[list[str]] = []
        for patient in patients:
            for row in patient.rows.get(name, []):
                cells = [patient.patient_id if c == "patient_id" else
                         _cell(study, name, c, row.get(c), habits) for c in columns]
                if name == listing and patient is victim:
                    date_column = next(i for i, c in enumerate(columns)
                                       if declared.columns[c].kind == "date"
                                       and row.get(c) is not None)
                    cells[date_column] = _impossible(habits.date_format)
                    patient.refused.add(name)
                    faults.append({"file": f"tables/{name}.csv", "line": len(lines) + 2,
                                   "kind": "bad_date", "patient_id": patient.patient_id})
                lines.append(cells)
        _write_csv(root / "tables" / f"{name}.csv", header, lines, habits)
        tables[name] = _table_spec(study, name, columns, habits)
    mapping = {"site": root.name, "institution": f"Demo Hospital {habits.number}",
               "study": study.name, "images": "images", "tables": tables}
    (root / "mapping.yaml").write_text(
        f"# Synthetic export (srcohort demo-data --study {study.name}); format: "
        f"docs/site-exports.md\n" + yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True),
        "utf-8")
    return faults


def _cell(study: Study, table: str, column: str, value: Any, habits: SiteHabits) -> str:
    if value is None:
        return ""
    declared = study.inputs[table].columns[column]
    if declared.kind == "date":
        return value.strftime(habits.date_format)
    if declared.kind == "number":
        return format(value, "g").replace(".", habits.decimal)
    if declared.kind == "code" and declared.vocabulary is not None:
        term = declared.vocabulary.terms[str(value)]
        return habits.spelling(term.name, term.meaning)
    return str(value)


def _impossible(date_format: str) -> str:
    return dt.date(2019, 2, 28).strftime(date_format).replace("28", "31")


def _write_csv(path: Path, header: list[str], rows: list[list[str]], habits: SiteHabits) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=habits.delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode(habits.encoding))


def _table_spec(study: Study, name: str, columns: list[str], habits: SiteHabits
                ) -> dict[str, Any]:
    declared = study.inputs[name].columns
    spec: dict[str, Any] = {"file": f"tables/{name}.csv", "delimiter": habits.delimiter,
                            "encoding": habits.encoding, "date_format": habits.date_format,
                            "decimal": habits.decimal,
                            "columns": {c: habits.column(c) for c in columns}}
    values = {c: {habits.spelling(t.name, t.meaning): t.name
                  for t in declared[c].vocabulary.terms.values()}     # type: ignore[union-attr]
              for c in columns if declared[c].kind == "code"}
    if values:
        spec["values"] = values
    return spec


# -- the ground truth --------------------------------------------------------------------------
def _fields(study: Study, patient: GeneratedPatient) -> dict[str, Any]:
    """What each template's SR of the patient would carry, by field name (codes as
    ``SCHEME:VALUE``, numbers in the declared unit, dates ISO), and whether it has a CT."""
    annotations: dict[str, dict[str, list[Any]]] = {}
    for template in study.templates:
        values = _template_fields(study, template, patient)
        if values is not None:
            annotations[template.template] = values
    return {"has_ct": patient.ct is not None, "annotations": annotations}


def _template_fields(study: Study, template: Template, patient: GeneratedPatient
                     ) -> dict[str, list[Any]] | None:
    found: dict[str, list[Any]] = {}
    if template.kind == "measurement_report":
        if patient.ct is None:
            return None
        for group in template.groups:
            rows = patient.rows.get(group.table, [])
            columns = study.inputs[group.table].columns
            for row in rows:
                if group.finding_site and row.get(group.finding_site) is not None:
                    term = columns[group.finding_site].vocabulary.terms[  # type: ignore[union-attr]
                        row[group.finding_site]]
                    found.setdefault(group.finding_site, []).append(term.code)
                for column, ref in group.numbers:
                    vocabulary, _, name = ref.partition(".")
                    term = study.vocabularies[vocabulary].terms[name]
                    if row.get(column) is not None:
                        found.setdefault(str(term.attributes["field"]), []).append(
                            float(row[column]))
        return found or None
    for source in template.written_when:
        table, _, column = source.partition(".")
        rows = patient.rows.get(table, [])
        if not rows or table in patient.refused or (column and rows[0].get(column) is None):
            return None
    for node in walk_nodes(template):
        if not node.field or not node.source:
            continue
        table, _, column = node.source.partition(".")
        rows = patient.rows.get(table, [])
        if not rows or table in patient.refused or rows[0].get(column) is None:
            continue
        value = rows[0][column]
        if node.value_type == "CODE":
            value = study.vocabularies[str(node.vocabulary)].terms[str(value)].code
        elif node.value_type == "DATE":
            value = value.isoformat()
        else:
            value = float(value)
        found.setdefault(node.field, []).append(value)
    return found


def _cohort_truth(study: Study, definition: dict[str, Any], sites: dict[str, Any]
                  ) -> dict[str, Any]:
    per_site = {site: sum(_holds(study, definition["patients"], record)
                          for record in data["patients"].values())
                for site, data in sites.items()}
    return {"definition": " ".join(str(definition.get("description", "")).split()),
            "per_site": per_site, "total": sum(per_site.values())}


def _holds(study: Study, expr: dict[str, Any], record: dict[str, Any]) -> bool:
    (key, value), = expr.items()
    if key in ("all", "any"):
        results = [_holds(study, child, record) for child in value]
        return all(results) if key == "all" else any(results)
    if key == "not":
        return not _holds(study, value, record)
    if key == "series":
        return value.get("modality") == "CT" and record["has_ct"]
    template = value.get("template")
    return any(_annotation_holds(study, value.get("fields", {}), fields)
               for name, fields in record["annotations"].items()
               if template is None or str(template) == name)


def _annotation_holds(study: Study, conditions: dict[str, Any], fields: dict[str, list[Any]]
                      ) -> bool:
    for name, condition in conditions.items():
        values = fields.get(name, [])
        if isinstance(condition, dict):
            unit = condition.get("unit")
            scale = Fraction(1)
            if unit is not None:
                declared = next(str(n.unit) for t in study.templates for n in walk_nodes(t)
                                if n.field == name)
                scale = units.factor(str(unit), declared) or Fraction(1)
            low, high = condition.get("min"), condition.get("max")
            ok = any((low is None or v >= float(Fraction(repr(low)) * scale)) and
                     (high is None or v <= float(Fraction(repr(high)) * scale)) for v in values)
        else:
            wanted = condition if isinstance(condition, list) else [condition]
            codes = {code for t in study.templates for n in walk_nodes(t) if n.field == name
                     for term, code, _ in n.terms if term in wanted} | set(map(str, wanted))
            ok = any(v in codes for v in values)
        if not ok:
            return False
    return True
