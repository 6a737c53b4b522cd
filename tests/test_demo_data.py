"""The synthetic consortium: reproducible, standard-conformant, documented format, honest truth.

Everything the pipeline tests conclude is measured against ground_truth.json, so the truth is
checked here against the written files themselves, with a reader written from
docs/site-exports.md alone (not the converter's). Format and truth checks run on a small
consortium (sites 1-3 already carry every fault kind) and on the default 8 x 20 one, which
covers every site profile.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
import yaml
from pydicom.data import get_testdata_file
from pydicom.errors import InvalidDicomError

from srcohort import units
from srcohort.demo.consortium import generate_consortium
from srcohort.demo.profiles import FAULT_KINDS, PROFILES, site_profiles
from srcohort.sources.ecg.model import EcgFormatError
from srcohort.sources.ecg.read import read_ecg
from srcohort.sources.labelmaps import read_label_map
from srcohort.study.load import load_study
from tests.dicom_validators import dciodvfy, dsrdump, pixelmed_sr, require_tool

DOC_TABLE_KEYS = {"file", "delimiter", "encoding", "date_format", "decimal", "columns", "values"}
DOC_COLUMNS = {
    "registry": {"patient_id", "tavi_date", "prosthesis", "prosthesis_size", "diabetes",
                 "smoking", "lbbb"},
    "procedures": {"patient_id", "code", "date"},
    "landmarks": {"patient_id", "landmark", "x", "y", "z"},
    "measurements": {"patient_id", "measurement", "value", "unit"},
    "segmentations": {"patient_id", "file"},
}
TERMS = load_study("tavi").vocabularies
VOCABULARY = {"prosthesis": set(TERMS["valve_model"].terms), "diabetes": {"yes", "no"},
              "lbbb": {"yes", "no"}, "smoking": set(TERMS["smoking"].terms),
              "landmark": set(TERMS["landmark"].terms),
              "measurement": set(TERMS["measurement"].terms)}
MEASUREMENTS = TERMS["measurement"].terms
DATES = {"tavi_date", "date"}
NUMBERS = {"prosthesis_size", "x", "y", "z", "value"}
SMALL = {"sites": 3, "patients_per_site": 3, "seed": 5}


@dataclass(frozen=True)
class Demo:
    """A generated consortium, its parsed truth and how long generating it took."""

    root: Path
    truth: dict[str, Any]
    seconds: float


def _generate(out: Path, **kwargs: int) -> Demo:
    start = time.monotonic()
    path = generate_consortium(out, **kwargs)
    return Demo(out, json.loads(path.read_text("utf-8")), time.monotonic() - start)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return _generate(tmp_path_factory.mktemp("demo-small"), **SMALL)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return _generate(tmp_path_factory.mktemp("demo-full"), sites=8, patients_per_site=20,
                     seed=0)


@pytest.fixture(params=["small", "full"])
def demo(request: pytest.FixtureRequest) -> Demo:
    return request.getfixturevalue(request.param)


# --- a reader written from docs/site-exports.md ------------------------------------------------

def _mapping(site_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((site_dir / "mapping.yaml").read_text("utf-8"))


def _rows(site_dir: Path, spec: dict[str, Any]
          ) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line, {canonical: stripped cell})`` per data row of one mapped table."""
    with (site_dir / spec["file"]).open(newline="", encoding=spec.get("encoding", "utf-8")) as f:
        rows = list(csv.reader(f, delimiter=spec.get("delimiter", ",")))
    header = rows[0]
    index = {canonical: header.index(column) for canonical, column in spec["columns"].items()}
    return header, [(line, {c: row[i].strip() for c, i in index.items()})
                    for line, row in enumerate(rows[1:], start=2)]


def _value(spec: dict[str, Any], column: str, raw: str) -> Any:
    """A cell as the documented canonical value (date, float or vocabulary term)."""
    if not raw:
        return None
    raw = spec.get("values", {}).get(column, {}).get(raw, raw)
    if column in DATES:
        return dt.datetime.strptime(raw, spec["date_format"]).date()
    if column in NUMBERS:
        return float(raw.replace(spec.get("decimal", "."), "."))
    return raw


def _fault_lines(site_truth: dict[str, Any]) -> set[tuple[str, int]]:
    return {(f["file"], f["line"]) for f in site_truth["faults"] if f["line"] is not None}


def _records(site_dir: Path, table: str, site_truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Canonical records of ``table``, leaving out the rows the truth declares faulty."""
    spec = _mapping(site_dir)["tables"].get(table)
    if spec is None:
        return []
    _, rows = _rows(site_dir, spec)
    faulty = _fault_lines(site_truth)
    return [{c: _value(spec, c, raw) for c, raw in cells.items()}
            for line, cells in rows if (spec["file"], line) not in faulty]


def _ct_files(site_dir: Path, site_truth: dict[str, Any]) -> list[Path]:
    broken = {f["file"] for f in site_truth["faults"] if f["kind"] == "unreadable_dicom"}
    return sorted(p for p in (site_dir / "images").rglob("*")
                  if p.is_file() and str(p.relative_to(site_dir)) not in broken)


# --- determinism -------------------------------------------------------------------------------

def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _ct_uids(root: Path) -> set[str]:
    uids = set()
    for path in root.glob("site-*/images/**/*"):
        if path.is_dir():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        uids |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
                 ds.FrameOfReferenceUID}
    return uids


def test_same_seed_gives_identical_bytes(small: Demo, tmp_path: Path) -> None:
    _generate(tmp_path, **SMALL)
    first, again = _tree(small.root), _tree(tmp_path)
    assert first.keys() == again.keys()
    assert [name for name in first if first[name] != again[name]] == []
    assert _ct_uids(small.root) == _ct_uids(tmp_path)


def test_different_seed_gives_different_data(small: Demo, tmp_path: Path) -> None:
    _generate(tmp_path, **{**SMALL, "seed": SMALL["seed"] + 1})
    first, other = _tree(small.root), _tree(tmp_path)
    # every table of patient data differs; the label tables describe the site, not patients
    tables = [name for name in first if "/tables/" in name and "/tables/labels." not in name]
    assert tables and all(first[name] != other.get(name) for name in tables)
    assert _ct_uids(small.root).isdisjoint(_ct_uids(tmp_path))


def test_rerun_replaces_earlier_sites(tmp_path: Path) -> None:
    generate_consortium(tmp_path, sites=3, patients_per_site=1, seed=0)
    generate_consortium(tmp_path, sites=2, patients_per_site=1, seed=0)
    assert sorted(p.name for p in tmp_path.glob("site-*")) == ["site-01", "site-02"]


# --- DICOM -------------------------------------------------------------------------------------

@pytest.mark.validators
def test_every_ct_file_passes_dciodvfy(small: Demo, full: Demo) -> None:
    """All files of the small consortium, and one per site of the full one (every profile)."""
    require_tool("dciodvfy")
    files = [path for site, data in small.truth["sites"].items()
             for path in _ct_files(small.root / site, data)]
    files += [_ct_files(full.root / site, data)[0] for site, data in full.truth["sites"].items()]
    assert len(files) > len(full.truth["sites"])
    for path in files:
        assert dciodvfy(path) == [], path


def test_ct_series_are_consistent_volumes_holding_their_landmarks(demo: Demo) -> None:
    for site, site_truth in demo.truth["sites"].items():
        series: dict[str, list[pydicom.Dataset]] = {}
        for path in _ct_files(demo.root / site, site_truth):
            ds = pydicom.dcmread(path)
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            series.setdefault(ds.SeriesInstanceUID, []).append(ds)
        by_patient = {s[0].PatientID: s for s in series.values()}
        assert len(by_patient) == len(series)                   # one CT series per patient
        for pid, record in site_truth["patients"].items():
            assert (pid in by_patient) == record["has_ct"]
            if not record["has_ct"]:
                continue
            slices = sorted(by_patient[pid], key=lambda d: int(d.InstanceNumber))
            assert slices[0].SeriesInstanceUID == record["ct_series_uid"]
            assert {d.StudyInstanceUID for d in slices} == {record["study_instance_uid"]}
            assert len({d.FrameOfReferenceUID for d in slices}) == 1
            assert str(slices[0].PatientName) == record["patient_name"]
            assert slices[0].pixel_array.shape == (int(slices[0].Rows), int(slices[0].Columns))
            _assert_volume(slices, record["landmarks"])


def _assert_volume(slices: list[pydicom.Dataset], landmarks: dict[str, list[float]]) -> None:
    """Slices step along the normal of their orientation; landmarks lie within the volume."""
    orientation = [float(v) for v in slices[0].ImageOrientationPatient]
    assert orientation == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]        # axial: the normal is +z
    positions = [[float(v) for v in d.ImagePositionPatient] for d in slices]
    steps = {round(b[2] - a[2], 3) for a, b in zip(positions, positions[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() > 0
    assert all(p[:2] == positions[0][:2] for p in positions)
    spacing = float(slices[0].PixelSpacing[0])
    low = positions[0]
    high = [low[0] + (int(slices[0].Columns) - 1) * spacing,
            low[1] + (int(slices[0].Rows) - 1) * spacing, positions[-1][2]]
    for name, point in landmarks.items():
        assert all(lo <= v <= hi for lo, v, hi in zip(low, point, high, strict=True)), name


# --- mapping files -----------------------------------------------------------------------------

def test_mapping_files_follow_the_documented_format(demo: Demo) -> None:
    for site, site_truth in demo.truth["sites"].items():
        site_dir = demo.root / site
        mapping = _mapping(site_dir)
        assert set(mapping) <= {"site", "institution", "images", "ecg", "label_table", "tables"}
        assert mapping["site"] == site and (site_dir / mapping["images"]).is_dir()
        assert {"registry", "procedures"} <= set(mapping["tables"]) <= set(DOC_COLUMNS)
        faulty = _fault_lines(site_truth)
        for table, spec in mapping["tables"].items():
            assert set(spec) <= DOC_TABLE_KEYS and {"file", "columns"} <= set(spec)
            assert {"patient_id"} <= set(spec["columns"]) <= DOC_COLUMNS[table]
            assert set(spec.get("values", {})) <= set(spec["columns"]) & set(VOCABULARY)
            header, rows = _rows(site_dir, spec)
            assert set(spec["columns"].values()) <= {h.strip() for h in header}, spec["file"]
            for column, spellings in spec.get("values", {}).items():
                assert set(spellings.values()) <= VOCABULARY[column], (spec["file"], column)
            for line, cells in rows:
                if (spec["file"], line) in faulty:
                    continue
                record = {c: _value(spec, c, raw) for c, raw in cells.items()}   # must parse
                for column, value in record.items():
                    if column in VOCABULARY and value is not None:
                        assert value in VOCABULARY[column], (spec["file"], line, column)
                if table == "measurements":
                    unit = MEASUREMENTS[record["measurement"]].attributes["unit"]
                    assert units.factor(record["unit"], unit) is not None, (spec["file"], line)


# --- ground truth ------------------------------------------------------------------------------

def test_every_fault_kind_is_injected_where_the_truth_says(demo: Demo) -> None:
    sites = demo.truth["sites"]
    assert {f["kind"] for s in sites.values() for f in s["faults"]} == set(FAULT_KINDS)
    every_id = {pid for s in sites.values() for pid in s["patients"]}
    for site, site_truth in sites.items():
        site_dir = demo.root / site
        specs = {spec["file"]: spec for spec in _mapping(site_dir)["tables"].values()}
        for fault in site_truth["faults"]:
            path = site_dir / fault["file"]
            assert path.is_file(), fault
            if fault["kind"] == "unreadable_dicom":
                assert fault["line"] is None
                with pytest.raises(InvalidDicomError):
                    pydicom.dcmread(path)
                continue
            if fault["kind"] == "truncated_ecg":
                with pytest.raises(EcgFormatError):
                    read_ecg(path)
                continue
            spec = specs[fault["file"]]
            _, rows = _rows(site_dir, spec)
            (cells,) = [c for line, c in rows if line == fault["line"]]
            assert cells["patient_id"] == fault["patient_id"]
            if fault["kind"] == "labelmap_geometry":
                maps = [read_label_map(site_dir / c["file"]) for _, c in rows
                        if c["patient_id"] == fault["patient_id"]]
                bad = read_label_map(site_dir / cells["file"])
                assert all(abs(bad.affine[:3, 3] - m.affine[:3, 3]).max() > 1 for m in maps
                           if m.path != bad.path)
                continue
            column = {"bad_registry_date": "tavi_date", "bad_procedure_date": "date",
                      "non_numeric_measurement": "value",
                      "unknown_patient_landmark": "patient_id"}[fault["kind"]]
            if column == "patient_id":
                assert fault["patient_id"] not in every_id
            else:
                with pytest.raises(ValueError):
                    _value(spec, column, cells[column])


def test_truth_records_match_the_tables(demo: Demo) -> None:
    for site, site_truth in demo.truth["sites"].items():
        site_dir = demo.root / site
        patients = site_truth["patients"]
        registry = {r["patient_id"]: r for r in _records(site_dir, "registry", site_truth)}
        quarantined = {f["patient_id"] for f in site_truth["faults"]
                       if f["kind"] == "bad_registry_date"}
        assert {pid for pid, r in patients.items() if r["registry_quarantined"]} == quarantined
        assert set(registry) == set(patients) - quarantined
        for pid, row in registry.items():
            record = patients[pid]
            assert row["tavi_date"].isoformat() == record["tavi_date"]
            assert row["prosthesis"] == record["prosthesis"]
            assert TERMS["valve_model"].terms[row["prosthesis"]].attributes["family"] == (
                "SELF_EXPANDING" if record["family"] == "self-expanding"
                else "BALLOON_EXPANDABLE")
            assert row["prosthesis_size"] == record["prosthesis_size_mm"]
            assert row["diabetes"] == ("yes" if record["diabetes"] else "no")
            assert row["lbbb"] == ("yes" if record["lbbb"] else "no")
            assert row.get("smoking") == record["smoking"]
        _assert_outcomes(_records(site_dir, "procedures", site_truth), patients)
        _assert_landmarks(_records(site_dir, "landmarks", site_truth), patients)
        _assert_measurements(_records(site_dir, "measurements", site_truth), patients)


def _assert_outcomes(procedures: list[dict[str, Any]], patients: dict[str, Any]) -> None:
    """The 30-day rule of docs/site-exports.md, recomputed from the procedures table."""
    for pid, record in patients.items():
        rows = [(r["code"], r["date"]) for r in procedures if r["patient_id"] == pid]
        tavis = [day for code, day in rows if code.startswith("5-35a.0")]
        if not tavis:
            assert (record["pacemaker"], record["pacemaker_date"]) == ("unknown", None), pid
            continue
        hits = sorted(day for code, day in rows if code.startswith("5-377.")
                      and 0 <= (day - min(tavis)).days <= 30)
        expected = ("yes", hits[0].isoformat()) if hits else ("no", None)
        assert (record["pacemaker"], record["pacemaker_date"]) == expected, pid


def _assert_landmarks(rows: list[dict[str, Any]], patients: dict[str, Any]) -> None:
    found: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        found.setdefault(row["patient_id"], {})[row["landmark"]] = [row["x"], row["y"], row["z"]]
    assert found == {pid: r["landmarks"] for pid, r in patients.items() if r["landmarks"]}
    assert all(set(points) == VOCABULARY["landmark"] for points in found.values())


def _assert_measurements(rows: list[dict[str, Any]], patients: dict[str, Any]) -> None:
    found: dict[str, dict[str, list[Any]]] = {}
    for row in rows:
        unit = MEASUREMENTS[row["measurement"]].attributes["unit"]
        value = float(row["value"] * units.factor(row["unit"], unit))
        found.setdefault(row["patient_id"], {})[row["measurement"]] = [value, unit]
    expected = {pid: r["measurements"] for pid, r in patients.items() if r["measurements"]}
    assert found.keys() == expected.keys()
    for pid, measurements in expected.items():
        assert measurements.keys() == found[pid].keys(), pid
        for name, (value, unit) in measurements.items():
            assert found[pid][name][1] == unit
            assert found[pid][name][0] == pytest.approx(value, abs=1e-9), (pid, name)


def test_example_cohort_equals_a_recount_of_the_records(demo: Demo) -> None:
    cohort = demo.truth["example_cohort"]
    recount = {site: sum(1 for r in data["patients"].values()
                         if r["has_ct"] and r["pacemaker"] != "unknown"
                         and r["family"] == "self-expanding" and not r["registry_quarantined"])
               for site, data in demo.truth["sites"].items()}
    assert cohort["per_site"] == recount and cohort["total"] == sum(recount.values()) > 0
    assert "self-expanding" in cohort["definition"]


def test_truth_header_and_ids(small: Demo) -> None:
    truth = small.truth
    assert (truth["seed"], truth["sites_count"], truth["patients_per_site"]) == \
        (SMALL["seed"], SMALL["sites"], SMALL["patients_per_site"])
    for site_truth in truth["sites"].values():
        assert len(site_truth["patients"]) == SMALL["patients_per_site"]
        assert all(pid == pid.strip() for pid in site_truth["patients"])


# --- the full-size consortium ------------------------------------------------------------------

def test_default_consortium_is_fast_heterogeneous_and_plausible(full: Demo) -> None:
    assert full.seconds < 30
    records = [r for s in full.truth["sites"].values() for r in s["patients"].values()]
    assert len(records) == 160

    def share(test: Any) -> float:
        return sum(map(test, records)) / len(records)

    assert 0.75 <= share(lambda r: r["has_ct"]) <= 0.95
    assert 0.8 <= share(lambda r: r["pacemaker"] != "unknown") <= 0.97
    assert 0.10 <= share(lambda r: r["pacemaker"] == "yes") <= 0.30
    assert 0.05 <= share(lambda r: r["lbbb"]) <= 0.20
    assert {r["prosthesis"] for r in records} == VOCABULARY["prosthesis"]
    kinds = sorted(f["kind"] for s in full.truth["sites"].values() for f in s["faults"])
    assert kinds == sorted([*FAULT_KINDS, "bad_registry_date"])     # two bad registry dates
    mappings = [_mapping(full.root / site) for site in full.truth["sites"]]
    assert sum("landmarks" not in m["tables"] for m in mappings) == 1
    assert sum("measurements" not in m["tables"] for m in mappings) == 1
    assert sum("smoking" not in m["tables"]["registry"]["columns"] for m in mappings) == 1
    specs = [m["tables"]["registry"] for m in mappings]
    assert {s.get("delimiter", ",") for s in specs} == {",", ";", "\t"}
    assert {s.get("encoding", "utf-8") for s in specs} == {"utf-8", "latin-1", "utf-8-sig"}
    assert len({s["date_format"] for s in specs}) >= 5
    units = {r["unit"] for site, data in full.truth["sites"].items()
             for r in _records(full.root / site, "measurements", data)}
    assert {"cm", "cm2"} <= units


def test_profiles_cycle_beyond_eight_sites() -> None:
    plan = site_profiles(len(PROFILES) + 2)
    assert [site for site, _, _ in plan] == [f"site-{n:02d}" for n in range(1, len(PROFILES) + 3)]
    assert plan[len(PROFILES)][2].id_format == PROFILES[0].id_format
    assert len({profile.institution for _, _, profile in plan}) == len(plan)


# --- the validators themselves -----------------------------------------------------------------

@pytest.mark.validators
def test_validators_reject_broken_files(small: Demo, tmp_path: Path) -> None:
    """Zero errors means something only if a broken file does produce errors."""
    for tool in ("dciodvfy", "dsrdump", "pixelmed"):
        require_tool(tool)
    ct = pydicom.dcmread(_ct_files(small.root / "site-01", small.truth["sites"]["site-01"])[0])
    del ct.Rows
    ct.save_as(tmp_path / "no-rows.dcm")
    assert any("Rows" in line for line in dciodvfy(tmp_path / "no-rows.dcm"))
    good = Path(str(get_testdata_file("test-SR.dcm")))
    assert dsrdump(good) == []
    sr = pydicom.dcmread(good)
    sr.ContentSequence[1].RelationshipType = "SELECTED FROM"     # not allowed from a CONTAINER
    sr.save_as(tmp_path / "bad-relationship.dcm")
    assert dsrdump(tmp_path / "bad-relationship.dcm")
    assert any("illegal relationship" in line
               for line in pixelmed_sr(tmp_path / "bad-relationship.dcm"))
