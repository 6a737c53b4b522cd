"""A synthetic TAVI consortium: per-site exports in each site's own habits, plus the truth.

The pipeline has to be tested end to end without patient data, so this module invents patients
(planning CT, registry row, OPS codes, landmarks, measurements), writes them the way each site
profile (``profiles.py``) exports, injects the faults real exports contain, and records in
``ground_truth.json`` what a correct converter and cohort query must conclude. The pipeline
never reads the truth; tests and ``srcohort demo`` compare against it.

Everything derives from the seed: one numpy Generator per site (seeded with ``[seed, site]``)
and UIDs from ``derived_uid`` over seed, site and patient, so a seed reproduces every byte.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from srcohort import units
from srcohort.demo.ct import CTStudy, Geometry, ct_series
from srcohort.demo.profiles import SiteProfile, Table, site_profiles
from srcohort.demo.signals import write_signals
from srcohort.logs import get_logger, progress
from srcohort.study.load import load_study

log = get_logger(__name__)

EXAMPLE_COHORT_DEFINITION = ("CT present AND pacemaker outcome known (yes or no) AND prosthesis "
                             "family self-expanding (registry row not quarantined)")
MULTIMODAL_COHORT_DEFINITION = ("CT with a SEG containing calcification AND an ECG showing LBBB "
                                "within 90 days before the TAVI AND pacemaker outcome known")
STUDY = load_study("tavi")
VOCABULARIES = STUDY.vocabularies
FAMILY = {model: term.attributes["family"].lower().replace("_", "-")
          for model, term in VOCABULARIES["valve_model"].terms.items()}
LANDMARKS = tuple(VOCABULARIES["landmark"].terms)
MEASUREMENTS = VOCABULARIES["measurement"].terms
VALVE_MIX = {"SAPIEN3": 0.35, "MYVAL": 0.12, "EVOLUT": 0.30, "ACURATE": 0.13, "PORTICO": 0.10}
VALVE_SIZES = {"SAPIEN3": (20, 23, 26, 29), "MYVAL": (20, 23, 26, 29, 32),
               "EVOLUT": (23, 26, 29, 34), "ACURATE": (23, 25, 27), "PORTICO": (23, 25, 27, 29)}
OVERSIZING_MM = {"balloon-expandable": 1.0, "self-expanding": 3.5}
SMOKING_MIX = {"current": 0.12, "former": 0.38, "never": 0.45, "": 0.05}   # "": not recorded
TAVI_FIRST, TAVI_LAST = dt.date(2018, 1, 1), dt.date(2024, 12, 31)
PACEMAKER_WINDOW_DAYS = 30          # docs/site-exports.md: the 30-day rule
OPS_TEXT = {
    "5-35a.00": "Endovaskuläre Implantation eines Aortenklappenersatzes",
    "5-35a.01": "Transapikale Implantation eines Aortenklappenersatzes",
    "5-377.1": "Implantation eines Schrittmachers, Einkammersystem",
    "5-377.30": "Implantation eines Schrittmachers, Zweikammersystem",
    "5-377.40": "Implantation eines Schrittmachers, CRT-System",
    "3-228": "Computertomographie der peripheren Gefäße mit Kontrastmittel",
    "8-837.00": "Perkutan-transluminale Gefäßintervention an Herz und Koronargefäßen",
    "1-275.0": "Transarterielle Linksherz-Katheteruntersuchung",
    "3-052": "Transösophageale Echokardiographie",
}
TAVI_CODES = ("5-35a.00", "5-35a.01")
PACEMAKER_CODES = ("5-377.30", "5-377.1", "5-377.40")
OTHER_CODES = ("3-228", "8-837.00", "1-275.0", "3-052")
NON_NUMBERS = ("n.a.", "k.A.", "--", "pending")
LAST_NAMES = ("Mustermann", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer",
              "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter",
              "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger",
              "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Jäger", "Kowalski",
              "Nowak", "Rossi", "Papadopoulos", "O'Brien", "Smith")
FIRST_NAMES = {"F": ("Erika", "Ursula", "Helga", "Ingrid", "Gisela", "Renate", "Monika",
                     "Brigitte", "Gertrud", "Karin", "Elisabeth", "Hannelore", "Margarete",
                     "Christa", "Jutta", "Irmgard", "Mary"),
               "M": ("Max", "Hans", "Klaus", "Jürgen", "Günter", "Peter", "Wolfgang", "Manfred",
                     "Dieter", "Horst", "Werner", "Helmut", "Gerhard", "Heinz", "Bernd", "Rolf",
                     "Karl-Heinz", "John")}
REFERRERS = ("Weber^Thomas^^Dr. med.", "Schulte^Anna^^Prof. Dr. med.", "Becker^Lukas^^Dr.",
             "Kaya^Elif^^Dr. med.", "Brown^Sarah^^Dr.")
CT_SIZE, CT_SLICES = 16, 4


@dataclass(frozen=True)
class SiteContext:
    """Who a site is inside the consortium: id, number, export habits, serial range."""

    site_id: str
    number: int
    profile: SiteProfile
    seed: int
    first_serial: int
    unknown_serial: int          # a consortium serial that no patient has


@dataclass
class Patient:
    """One synthetic patient as the hospital knows them (before any export quirk)."""

    patient_id: str
    name: str
    sex: str
    birth_date: dt.date
    tavi_date: dt.date
    prosthesis: str
    spelling: str
    size_mm: int
    diabetes: bool
    smoking: str | None
    lbbb: bool
    procedures: list[tuple[str, dt.date]]
    measurements: dict[str, float]
    ct: CTStudy | None = None
    landmarks: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return FAMILY[self.prosthesis]


def generate_consortium(out: Path, sites: int = 8, patients_per_site: int = 20,
                        seed: int = 0) -> Path:
    """Write ``<out>/site-NN/`` exports and ``<out>/ground_truth.json``; return the truth's path.

    Site folders of an earlier run in ``out`` (``site-*`` with a mapping.yaml) are replaced,
    so a smaller rerun leaves no stale site behind for the converter to pick up.
    """
    if sites < 1 or patients_per_site < 1 or seed < 0:
        raise ValueError("sites and patients_per_site must be >= 1 and seed >= 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in sorted(out.glob("site-*")):
        if (old / "mapping.yaml").is_file():
            shutil.rmtree(old)
    plan = site_profiles(sites)
    truth_sites: dict[str, Any] = {}
    for site_id, number, profile in progress(plan, total=len(plan), what="sites", logger=log):
        ctx = SiteContext(site_id, number, profile, seed,
                          first_serial=(number - 1) * patients_per_site + 1,
                          unknown_serial=sites * patients_per_site + number)
        truth_sites[site_id] = SiteWriter(out / site_id, ctx, patients_per_site).write()
    per_site = {site: sum(map(in_example_cohort, data["patients"].values()))
                for site, data in truth_sites.items()}
    total = sum(per_site.values())
    multimodal = {site: sum(map(in_multimodal_cohort, data["patients"].values()))
                  for site, data in truth_sites.items()}
    example = {"definition": EXAMPLE_COHORT_DEFINITION, "per_site": per_site, "total": total}
    multimodal_truth = {"definition": MULTIMODAL_COHORT_DEFINITION, "per_site": multimodal,
                        "total": sum(multimodal.values())}
    truth = {"study": STUDY.name, "seed": seed, "sites_count": sites,
             "patients_per_site": patients_per_site, "example_cohort": example,
             "multimodal_cohort": multimodal_truth,
             "cohorts": {"tavi-self-expanding": example,
                         "tavi-lbbb-ecg-calcification": multimodal_truth},
             "sites": truth_sites}
    path = out / "ground_truth.json"
    path.write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", "utf-8")
    log.info("consortium written", extra={"out": str(out), "sites": sites,
                                          "patients": sites * patients_per_site,
                                          "example_cohort": total})
    return path


def in_example_cohort(record: dict[str, Any]) -> bool:
    """The example cohort on one truth record: what ``tavi-self-expanding`` must select."""
    return (record["has_ct"] and record["pacemaker"] in ("yes", "no")
            and record["family"] == "self-expanding" and not record["registry_quarantined"])


def in_multimodal_cohort(record: dict[str, Any]) -> bool:
    """What ``tavi-lbbb-ecg-calcification`` must select, computed from one truth record."""
    ecg = record.get("ecg")
    days = (dt.date.fromisoformat(ecg["date"]) - dt.date.fromisoformat(record["tavi_date"])).days \
        if ecg else None
    return (record["has_ct"] and record["pacemaker"] in ("yes", "no")
            and any("CALCIFICATION" in structures for structures in record["segmentations"])
            and ecg is not None and ecg["lbbb"] and -90 <= days <= 0)


def pacemaker_outcome(procedures: list[tuple[str, dt.date]]) -> tuple[str, dt.date | None]:
    """The 30-day rule of docs/site-exports.md, applied to the rows the export contains."""
    tavis = [day for code, day in procedures if code.startswith("5-35a.0")]
    if not tavis:
        return "unknown", None
    first = min(tavis)
    hits = sorted(day for code, day in procedures if code.startswith("5-377.")
                  and 0 <= (day - first).days <= PACEMAKER_WINDOW_DAYS)
    return ("yes", hits[0]) if hits else ("no", None)


# --- drawing patients -------------------------------------------------------------------------

def draw_patient(rng: np.random.Generator, ctx: SiteContext, index: int) -> Patient:
    """One patient; the first of every site always has a CT so each site has images."""
    profile = ctx.profile
    sex = "F" if rng.random() < 0.48 else "M"
    tavi = TAVI_FIRST + dt.timedelta(days=int(rng.integers(0, (TAVI_LAST - TAVI_FIRST).days + 1)))
    age = int(rng.integers(68, 93))
    model = str(rng.choice(list(VALVE_MIX), p=list(VALVE_MIX.values())))
    measurements = _draw_measurements(rng)
    lbbb = bool(rng.random() < 0.12)
    patient = Patient(
        patient_id=profile.patient_id(ctx.number, ctx.first_serial + index),
        name=f"{rng.choice(LAST_NAMES)}^{rng.choice(FIRST_NAMES[sex])}",
        sex=sex,
        birth_date=dt.date(tavi.year - age, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365))),
        tavi_date=tavi,
        prosthesis=model,
        spelling=str(rng.choice(profile.prosthesis[model])),
        size_mm=_valve_size(model, measurements["ANNULUS_DIAMETER"]),
        diabetes=bool(rng.random() < 0.3),
        smoking=str(rng.choice(list(SMOKING_MIX), p=list(SMOKING_MIX.values()))) or None,
        lbbb=lbbb,
        procedures=_draw_procedures(rng, tavi, FAMILY[model] == "self-expanding", lbbb,
                                    measurements["MS_LENGTH"]),
        measurements=measurements,
    )
    if index == 0 or rng.random() < 0.85:
        _add_ct(rng, ctx, patient)
    return patient


def _draw_measurements(rng: np.random.Generator) -> dict[str, float]:
    """Plausible CT planning values in canonical units, rounded as a report would print them."""
    diameter = round(float(rng.uniform(21, 29)), 1)
    volume = round(float(np.clip(rng.lognormal(math.log(250), 0.8), 10, 3000)), 1)
    return {
        "ANNULUS_DIAMETER": diameter,
        "ANNULUS_PERIMETER": round(diameter * math.pi * float(rng.uniform(1.0, 1.04)), 1),
        "ANNULUS_AREA": round(math.pi * (diameter / 2) ** 2 * float(rng.uniform(0.95, 1.0)), 1),
        "MS_LENGTH": round(float(rng.uniform(2, 10)), 1),
        "CALCIUM_VOLUME": volume,
        "AGATSTON": float(round(volume * float(rng.uniform(2.0, 3.5)))),
    }


def _valve_size(model: str, annulus_mm: float) -> int:
    """The model's nominal size nearest to the oversized annulus, as a heart team would pick."""
    target = annulus_mm + OVERSIZING_MM[FAMILY[model]]
    return min(VALVE_SIZES[model], key=lambda size: abs(size - target))


def _draw_procedures(rng: np.random.Generator, tavi: dt.date, self_expanding: bool, lbbb: bool,
                     ms_length: float) -> list[tuple[str, dt.date]]:
    """OPS rows: the TAVI (coded for ~90%), maybe a pacemaker, and unrelated procedures.

    Pacemakers are likelier after self-expanding valves, with a pre-existing LBBB and with a
    short membranous septum, as in the literature, so cohort statistics look plausible. Days 30
    (still "yes") and 31 (already "no") are drawn more often than others, so the edge of the
    30-day rule occurs in every consortium of useful size.
    """
    rows: list[tuple[str, dt.date]] = []
    if rng.random() < 0.9:
        rows.append((str(rng.choice(TAVI_CODES, p=[0.9, 0.1])), tavi))
    risk = 0.07 + 0.10 * self_expanding + 0.22 * lbbb + 0.08 * (ms_length < 4)
    pacemaker = str(rng.choice(PACEMAKER_CODES))
    if rng.random() < risk:
        days = _edge_or(rng, PACEMAKER_WINDOW_DAYS, 1, PACEMAKER_WINDOW_DAYS)
        rows.append((pacemaker, tavi + dt.timedelta(days=days)))
    elif rng.random() < 0.07:        # too late to count as a TAVI complication
        days = _edge_or(rng, PACEMAKER_WINDOW_DAYS + 1, PACEMAKER_WINDOW_DAYS + 2, 180)
        rows.append((pacemaker, tavi + dt.timedelta(days=days)))
    if rng.random() < 0.03:          # an old pacemaker, before the TAVI
        rows.append((pacemaker, tavi - dt.timedelta(days=int(rng.integers(100, 2000)))))
    for _ in range(int(rng.integers(0, 3))):
        rows.append((str(rng.choice(OTHER_CODES)),
                     tavi + dt.timedelta(days=int(rng.integers(-60, 20)))))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def _edge_or(rng: np.random.Generator, edge: int, low: int, high: int) -> int:
    """``edge`` with probability 0.25, otherwise a day in ``[low, high)``."""
    return edge if rng.random() < 0.25 else int(rng.integers(low, high))


def _add_ct(rng: np.random.Generator, ctx: SiteContext, patient: Patient) -> None:
    """A planning CT some weeks before the TAVI, and the landmarks annotated on it."""
    spacing = float(rng.choice((10.0, 11.0, 12.5)))
    half = (CT_SIZE - 1) * spacing / 2
    geometry = Geometry(
        origin=(_half_mm(-half + rng.uniform(-10, 10)), _half_mm(-half - 20 + rng.uniform(-10, 10)),
                _half_mm(rng.uniform(-220, -120))),
        pixel_spacing=spacing, slice_spacing=float(rng.choice((8.0, 10.0))),
        size=CT_SIZE, slices=CT_SLICES)
    (x0, x1), (y0, y1), _ = geometry.bounds()
    center = ((x0 + x1) / 2 + float(rng.uniform(-10, 10)),
              (y0 + y1) / 2 + float(rng.uniform(-10, 10)))
    radius = patient.measurements["ANNULUS_DIAMETER"] / 2
    manufacturer, model, description = ctx.profile.scanner
    patient.ct = CTStudy(
        uid_parts=("srcohort-demo", str(ctx.seed), ctx.site_id, patient.patient_id),
        patient_id=patient.patient_id, patient_name=patient.name,
        birth_date=patient.birth_date, sex=patient.sex,
        study_date=patient.tavi_date - dt.timedelta(days=int(rng.integers(1, 90))),
        study_time=f"{int(rng.integers(7, 18)):02d}{int(rng.integers(0, 60)):02d}"
                   f"{int(rng.integers(0, 60)):02d}",
        accession_number=f"{ctx.number:02d}{int(rng.integers(10**6, 10**7))}",
        referring_physician=str(rng.choice(REFERRERS)), institution=ctx.profile.institution,
        manufacturer=manufacturer, model=model, series_description=description,
        geometry=geometry, lumen_center=center, lumen_radius=radius)
    patient.landmarks = _draw_landmarks(rng, geometry, center, radius)


def _draw_landmarks(rng: np.random.Generator, geometry: Geometry, center: tuple[float, float],
                    radius: float) -> dict[str, tuple[float, float, float]]:
    """Hinge points on a slightly tilted annulus circle, coronary ostia ~1 cm above it (LPS mm).

    The annulus plane sits near the bottom of the volume and the ostia stay below its top, so
    every point lies inside the CT the landmarks were annotated on.
    """
    _, _, (z_low, z_high) = geometry.bounds()
    plane_z = z_low + float(rng.uniform(4, 6))
    tilt = rng.uniform(-0.12, 0.12, size=2)
    start = float(rng.uniform(0, 2 * math.pi))
    angles = {"LCC_HINGE": start, "NCC_HINGE": start + 2 * math.pi / 3,
              "RCC_HINGE": start + 4 * math.pi / 3}
    points: dict[str, tuple[float, float, float]] = {}
    for name, angle in angles.items():
        dx, dy = radius * math.cos(angle), radius * math.sin(angle)
        points[name] = _point(center[0] + dx, center[1] + dy, plane_z + tilt[0] * dx + tilt[1] * dy)
    for name, hinge in (("LM_OSTIUM", "LCC_HINGE"), ("RCA_OSTIUM", "RCC_HINGE")):
        angle = angles[hinge]
        height = float(rng.uniform(9, min(13, z_high - plane_z - 1)))
        points[name] = _point(center[0] + 1.2 * radius * math.cos(angle),
                              center[1] + 1.2 * radius * math.sin(angle), plane_z + height)
    return {name: points[name] for name in LANDMARKS}


def _point(x: float, y: float, z: float) -> tuple[float, float, float]:
    return round(x, 1), round(y, 1), round(z, 1)


def _half_mm(value: float) -> float:
    """Round to 0.5 mm: scanner positions are short decimals, not float noise."""
    return round(float(value) * 2) / 2


# --- writing one site ------------------------------------------------------------------------

class SiteWriter:
    """Writes one site export (images, tables, mapping.yaml) and returns its truth."""

    def __init__(self, root: Path, ctx: SiteContext, patients_per_site: int) -> None:
        self.root, self.ctx, self.profile = root, ctx, ctx.profile
        self.rng = np.random.default_rng([ctx.seed, ctx.number])
        self.patients = [draw_patient(self.rng, ctx, i) for i in range(patients_per_site)]
        self.faults: list[dict[str, Any]] = []
        with_ct = [p for p in self.patients if p.ct is not None]
        self.targets = {kind: with_ct[int(self.rng.integers(len(with_ct)))]
                        for kind in self.profile.faults}
        self.lost_measurement = str(self.rng.choice(list(MEASUREMENTS)))

    def write(self) -> dict[str, Any]:
        self.root.mkdir(parents=True)
        self._images()
        self.signals = write_signals(
            self.root, self.ctx.number, self.ctx.seed, self.patients,
            truncated_ecg="truncated_ecg" in self.profile.faults,
            shifted_labelmap="labelmap_geometry" in self.profile.faults)
        self.faults += self.signals.faults
        self._registry()
        self._procedures()
        if self.profile.landmarks is not None:
            self._landmarks(self.profile.landmarks)
        if self.profile.measurements is not None:
            self._measurements(self.profile.measurements)
        self._mapping()
        log.info("site written", extra={"site": self.ctx.site_id, "patients": len(self.patients),
                                        "faults": [f["kind"] for f in self.faults]})
        return {"institution": self.profile.institution,
                "patients": {p.patient_id: self._truth(p) for p in self.patients},
                "faults": self.faults}

    def _fault(self, kind: str, file: str, line: int | None, patient_id: str | None) -> None:
        self.faults.append({"file": file, "line": line, "kind": kind, "patient_id": patient_id})

    # images

    def _images(self) -> None:
        series_index = 0
        for patient in self.patients:
            if patient.ct is None:
                continue
            series_index += 1
            for k, ds in enumerate(ct_series(patient.ct)):
                path = self.root / self._image_path(patient.ct, series_index, k)
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
            if self.targets.get("unreadable_dicom") is patient:
                self._unreadable_file(patient.ct, series_index)

    def _image_path(self, study: CTStudy, series_index: int, k: int) -> str:
        """Where this site's PACS export puts slice ``k``: nested by UID, flat or per series."""
        if self.profile.layout == "nested":
            return (f"images/{study.patient_id}/{study.study_uid}/{study.series_uid}/"
                    f"IM{k + 1:04d}.dcm")
        if self.profile.layout == "flat":
            digest = hashlib.sha256(f"{study.series_uid}/{k}".encode()).hexdigest()
            return f"images/{digest[:16].upper()}"
        return f"images/series{series_index:04d}/CT{k + 1:06d}.dcm"

    def _unreadable_file(self, study: CTStudy, series_index: int) -> None:
        """Random bytes where the export would put one more slice: looks like DICOM, is not."""
        rel = self._image_path(study, series_index, study.geometry.slices)
        (self.root / rel).write_bytes(self.rng.bytes(1024))
        self._fault("unreadable_dicom", rel, None, None)

    # tables

    def _registry(self) -> None:
        table, profile = self.profile.registry, self.profile
        target = self.targets.get("bad_registry_date")
        rows: list[list[str]] = []
        for line, patient in enumerate(self.patients, start=2):
            cells = {
                "patient_id": self._id(patient.patient_id),
                "tavi_date": patient.tavi_date.strftime(table.date_format),
                "prosthesis": patient.spelling,
                "prosthesis_size": self._number(f"{patient.size_mm:.{profile.size_decimals}f}"),
                "diabetes": self._flag(patient.diabetes),
                "smoking": (profile.smoking[patient.smoking]
                            if patient.smoking and "smoking" in table.columns else ""),
                "lbbb": self._flag(patient.lbbb),
            }
            if patient is target:
                cells["tavi_date"] = _impossible_date(table.date_format, patient.tavi_date)
                self._fault("bad_registry_date", table.file, line, patient.patient_id)
            rows.append([cells[column] for column in table.columns])
        self._write_csv(table, list(table.columns.values()), rows)

    def _procedures(self) -> None:
        table = self.profile.procedures
        target = self.targets.get("bad_procedure_date")
        rows: list[list[str]] = []

        def add(patient_id: str, code: str, day: str) -> None:
            cells = {"patient_id": self._id(patient_id), "code": code, "date": day}
            extra = [OPS_TEXT[code]] if self.profile.ops_text_column else []
            rows.append([cells[column] for column in table.columns] + extra)

        for patient in self.patients:
            for code, day in patient.procedures:
                add(patient.patient_id, code, day.strftime(table.date_format))
            if patient is target:
                add(patient.patient_id, OTHER_CODES[0],
                    _impossible_date(table.date_format, patient.tavi_date))
                self._fault("bad_procedure_date", table.file, len(rows) + 1, patient.patient_id)
        extra_header = [self.profile.ops_text_column] if self.profile.ops_text_column else []
        self._write_csv(table, list(table.columns.values()) + extra_header, rows)

    def _landmarks(self, table: Table) -> None:
        names = self.profile.landmark_names
        rows: list[list[str]] = []
        for patient in self.patients:
            for name, (x, y, z) in patient.landmarks.items():
                cells = {"patient_id": self._id(patient.patient_id), "landmark": names[name],
                         "x": self._number(f"{x:.1f}"), "y": self._number(f"{y:.1f}"),
                         "z": self._number(f"{z:.1f}")}
                rows.append([cells[column] for column in table.columns])
        if "unknown_patient_landmark" in self.profile.faults:
            stranger = self.profile.patient_id(self.ctx.number, self.ctx.unknown_serial)
            cells = {"patient_id": self._id(stranger), "landmark": names["LCC_HINGE"],
                     "x": self._number("1.0"), "y": self._number("2.0"),
                     "z": self._number("3.0")}
            rows.append([cells[column] for column in table.columns])
            self._fault("unknown_patient_landmark", table.file, len(rows) + 1, stranger)
        self._write_csv(table, list(table.columns.values()), rows)

    def _measurements(self, table: Table) -> None:
        names = self.profile.measurement_names
        target = self.targets.get("non_numeric_measurement")
        rows: list[list[str]] = []
        for patient in self.patients:
            if patient.ct is None:
                continue
            for name, value in patient.measurements.items():
                canonical_unit = str(MEASUREMENTS[name].attributes["unit"])
                unit = self.profile.units.get(canonical_unit, canonical_unit)
                text = self._number(_in_unit(value, canonical_unit, unit))
                if patient is target and name == self.lost_measurement:
                    text = str(self.rng.choice(NON_NUMBERS))
                    self._fault("non_numeric_measurement", table.file, len(rows) + 2,
                                patient.patient_id)
                cells = {"patient_id": self._id(patient.patient_id), "measurement": names[name],
                         "value": text, "unit": unit}
                rows.append([cells[column] for column in table.columns])
        self._write_csv(table, list(table.columns.values()), rows)

    def _write_csv(self, table: Table, header: list[str], rows: list[list[str]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.profile.delimiter,
                            lineterminator=self.profile.line_terminator,
                            quoting=csv.QUOTE_ALL if self.profile.quote_all else csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
        path = self.root / table.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue().encode(self.profile.encoding))

    def _id(self, patient_id: str) -> str:
        return patient_id.rjust(self.profile.pad_ids_to)

    def _flag(self, value: bool) -> str:
        return self.profile.yes_no[0 if value else 1]

    def _number(self, text: str) -> str:
        return text.replace(".", self.profile.decimal)

    # mapping.yaml

    def _mapping(self) -> None:
        profile = self.profile
        yes_no = {profile.yes_no[0]: "yes", profile.yes_no[1]: "no"}
        values: dict[str, dict[str, dict[str, str]]] = {
            "registry": {"prosthesis": {spelling: model for model, spellings
                                        in profile.prosthesis.items() for spelling in spellings},
                         "diabetes": dict(yes_no), "lbbb": dict(yes_no),
                         "smoking": {spelling: canonical
                                     for canonical, spelling in profile.smoking.items()}},
            "procedures": {},
            "landmarks": {"landmark": {v: k for k, v in profile.landmark_names.items()}},
            "measurements": {"measurement": {v: k for k, v in profile.measurement_names.items()}},
        }
        tables = {name: self._table_spec(name, table, values[name])
                  for name, table in (("registry", profile.registry),
                                      ("procedures", profile.procedures),
                                      ("landmarks", profile.landmarks),
                                      ("measurements", profile.measurements))
                  if table is not None}
        mapping = {"site": self.ctx.site_id, "institution": profile.institution,
                   "images": "images", **self.signals.mapping,
                   "tables": {**tables, **self.signals.tables}}
        text = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=100)
        (self.root / "mapping.yaml").write_text(
            f"# Synthetic export of {profile.institution} (srcohort demo-data); format: "
            f"docs/site-exports.md\n{text}", "utf-8")

    def _table_spec(self, name: str, table: Table, values: dict[str, dict[str, str]]
                    ) -> dict[str, Any]:
        """A ``tables`` entry; keys at their documented default are left out, as a site would."""
        profile = self.profile
        spec: dict[str, Any] = {"file": table.file}
        if profile.delimiter != ",":
            spec["delimiter"] = profile.delimiter
        if profile.encoding != "utf-8":
            spec["encoding"] = profile.encoding
        if table.date_format:
            spec["date_format"] = table.date_format
        if profile.decimal != "." and name != "procedures":
            spec["decimal"] = profile.decimal
        spec["columns"] = dict(table.columns)
        used = {column: spellings for column, spellings in values.items()
                if column in table.columns}
        if used:
            spec["values"] = used
        return spec

    # truth

    def _truth(self, patient: Patient) -> dict[str, Any]:
        outcome, pacemaker_day = pacemaker_outcome(patient.procedures)
        has_ct = patient.ct is not None
        lost = self.targets.get("non_numeric_measurement") is patient
        return {
            "has_ct": has_ct,
            "ct_series_uid": patient.ct.series_uid if patient.ct else None,
            "study_instance_uid": patient.ct.study_uid if patient.ct else None,
            "patient_name": patient.name if has_ct else None,
            "birth_date": patient.birth_date.isoformat() if has_ct else None,
            "sex": patient.sex if has_ct else None,
            "tavi_date": patient.tavi_date.isoformat(),
            "pacemaker": outcome,
            "pacemaker_date": pacemaker_day.isoformat() if pacemaker_day else None,
            "prosthesis": patient.prosthesis,
            "family": patient.family,
            "prosthesis_size_mm": patient.size_mm,
            "diabetes": patient.diabetes,
            "smoking": patient.smoking if "smoking" in self.profile.registry.columns else None,
            "lbbb": patient.lbbb,
            "registry_quarantined": self.targets.get("bad_registry_date") is patient,
            "ecg": self.signals.ecg.get(patient.patient_id),
            "segmentations": self.signals.segmentations.get(patient.patient_id, []),
            "landmarks": ({name: list(point) for name, point in patient.landmarks.items()}
                          if self.profile.landmarks is not None else {}),
            "measurements": ({name: [value, MEASUREMENTS[name].attributes["unit"]]
                              for name, value in patient.measurements.items()
                              if not (lost and name == self.lost_measurement)}
                             if self.profile.measurements is not None and has_ct else {}),
        }


def _impossible_date(date_format: str, day: dt.date) -> str:
    """``day``'s year written in the table's format as 31 February: a typo no parser accepts."""
    return (date_format.replace("%d", "31").replace("%m", "02")
            .replace("%Y", f"{day.year:04d}").replace("%y", f"{day.year % 100:02d}"))


def _in_unit(value: float, canonical_unit: str, site_unit: str) -> str:
    """``value`` (canonical unit) written in the site's unit, exactly, without float noise."""
    factor = units.factor(site_unit, canonical_unit)
    assert factor is not None, (site_unit, canonical_unit)
    exact = Decimal(repr(value)) * factor.denominator / factor.numerator
    return format(exact.normalize(), "f")
