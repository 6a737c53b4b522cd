"""The whole data flow on a small synthetic consortium against the real OpenSearch.

Expected numbers come from the generator's ground truth, which the pipeline never reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.run import count_patients, list_patients
from srcohort.export.exporter import export_cohort
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names
from tests.dicom_validators import dciodvfy, dsrdump, require_tool


def _truth(consortium: Path) -> dict:
    return json.loads((consortium / "ground_truth.json").read_text("utf-8"))


def _reports(converted: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text("utf-8"))
            for p in sorted(converted.glob("*/conversion-report.json"))}


def _index_all(client, converted: Path, prefix: str) -> None:
    for site_dir in sorted(converted.iterdir()):
        index_directory(client, site_dir / "dicom", site=site_dir.name, prefix=prefix)


def test_every_injected_fault_is_quarantined_with_its_reason(small_consortium: Path,
                                                             converted: Path) -> None:
    truth = _truth(small_consortium)
    reports = _reports(converted)
    for site, data in truth["sites"].items():
        quarantined = {(o["input"], o["line"]) for o in reports[site]["outcomes"]
                       if o["outcome"] == "quarantined"}
        for fault in data["faults"]:
            assert (fault["file"], fault["line"]) in quarantined, (site, fault)
        for rel, line in quarantined:
            target = converted / site / "quarantine" / (rel if line is None else f"{rel}.line{line}")
            assert target.exists()
            assert target.with_name(target.name + ".reason.txt").read_text().strip()


def test_report_lists_every_input(small_consortium: Path, converted: Path) -> None:
    for site, report in _reports(converted).items():
        inputs = {o["input"] for o in report["outcomes"]}
        images = {str(p.relative_to(small_consortium / site))
                  for p in (small_consortium / site / "images").rglob("*") if p.is_file()}
        assert images <= inputs
        assert report["counts"]["converted"] > 0


@pytest.mark.validators
def test_every_written_object_passes_the_validators(converted: Path) -> None:
    require_tool("dciodvfy")
    require_tool("dsrdump")
    files = sorted(converted.glob("*/dicom/**/*.dcm"))
    assert files
    srs = 0
    for path in files:
        assert dciodvfy(path) == [], path
        if pydicom.dcmread(path, stop_before_pixels=True).Modality == "SR":
            srs += 1
            assert dsrdump(path) == [], path
    assert srs > 0


@pytest.mark.opensearch
@pytest.mark.parametrize("cohort, truth_key", [("tavi-self-expanding", "example_cohort"),
                                               ("tavi-lbbb-ecg-calcification",
                                                "multimodal_cohort")])
def test_cohort_counts_equal_the_ground_truth(opensearch_client, index_prefix: str,
                                              small_consortium: Path, converted: Path,
                                              cohort: str, truth_key: str) -> None:
    _index_all(opensearch_client, converted, index_prefix)
    counts = count_patients(opensearch_client, resolve_cohort(cohort), prefix=index_prefix)
    expected = _truth(small_consortium)[truth_key]
    assert expected["total"] > 0                 # the consortium exercises the cohort
    assert counts["total"] == expected["total"]
    assert {k: v for k, v in counts.items() if k != "total"} == \
        {k: v for k, v in expected["per_site"].items() if v}


@pytest.mark.opensearch
def test_reindexing_changes_nothing(opensearch_client, index_prefix: str,
                                    converted: Path) -> None:
    def snapshot() -> tuple[int, int]:
        return tuple(opensearch_client.count(index=name)["count"]
                     for name in index_names(index_prefix))
    _index_all(opensearch_client, converted, index_prefix)
    first = snapshot()
    _index_all(opensearch_client, converted, index_prefix)
    assert snapshot() == first and first[0] > first[1] > 0


@pytest.mark.opensearch
def test_export_is_pseudonymised(opensearch_client, index_prefix: str, small_consortium: Path,
                                 converted: Path, tmp_path: Path) -> None:
    require_tool("dciodvfy")
    _index_all(opensearch_client, converted, index_prefix)
    cohort = resolve_cohort("tavi-self-expanding")
    members = list(list_patients(opensearch_client, cohort, prefix=index_prefix))
    result = export_cohort(opensearch_client, cohort, tmp_path, prefix=index_prefix,
                           secret=b"test-secret")
    assert result.patients == len(members) > 0
    patients = pd.read_parquet(tmp_path / "manifest" / "patients.parquet")
    assert len(patients) == len(members) and patients["pseudonym"].is_unique
    identifiers = {m["patient_id"] for m in members}
    for path in sorted(tmp_path.glob("data/**/*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientID in set(patients["pseudonym"]) and ds.PatientID not in identifiers
        assert not ds.get("PatientBirthDate") and ds.PatientIdentityRemoved == "YES"
        assert dciodvfy(path) == [], path           # de-identified objects stay valid
    text = "\n".join(p.read_text("utf-8") for p in sorted((tmp_path / "manifest").glob("*.csv")))
    text += (tmp_path / "manifest" / "export.json").read_text("utf-8")
    leaked = [pid for pid in identifiers if re.search(rf"(?<![0-9A-Za-z]){re.escape(pid)}(?![0-9A-Za-z])", text)]
    assert leaked == []
