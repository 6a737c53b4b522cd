"""Federated counts: per-site aggregates (counts only, k-suppressed), the coordinator, the CLI."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from srcohort.cohort.label import LabelSpec
from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.run import count_patients, list_patients
from srcohort.federated import FederatedError, combine, run_federated_count
from srcohort.federated.aggregate import (LABELS, Parameters, public_bounds,
                                          published_cells, relations, site_aggregate)
from srcohort.federated.combine import pooled
from srcohort.federated.plots import LABEL_BALANCE, UPSET
from srcohort.canonical import canonical_json as dumps
from srcohort.federated.site import release_site
from srcohort.federated.suppression import Relation, intervals, suppress
from srcohort.sr.profiles import default_profiles
from srcohort.study.load import load_study

COHORT = "tavi-self-expanding"
LABEL = LabelSpec.of_study(load_study("tavi"))
EVERYONE = "everyone.yaml"


@pytest.fixture(scope="module")
def everyone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cohort of every patient with a series, so the aggregates have something to count."""
    path = tmp_path_factory.mktemp("cohorts") / EVERYONE
    path.write_text("name: everyone\npatients: {series: {}}\n")
    return path


@pytest.fixture
def sites(opensearch_client: OpenSearch, index_prefix: str, converted: Path) -> list[str]:
    """The small consortium, each site a deployment of its own (``<prefix><site>-``)."""
    from srcohort.index.indexer import index_directory
    names = sorted(p.name for p in converted.iterdir())
    for site in names:
        index_directory(opensearch_client, converted / site / "dicom", site=site,
                        prefix=f"{index_prefix}{site}-")
    return names


def _docs(client: OpenSearch, cohort_name: str, prefix: str) -> list[dict]:
    return list(list_patients(client, resolve_cohort(cohort_name), prefix=prefix))


# --- against the indexed consortium -----------------------------------------------------------

def _brute_force(docs: list[dict]) -> dict[str, int]:
    """The cells counted straight from the documents, independently of the aggregate module."""
    sr = {"1500": "SR TID 1500", "2000": "SR TID 2000", "3700": "SR TID 3700",
          "3802": "SR TID 3802", "srcohort-tavi-outcome": "SR tavi-outcome"}
    cells: dict[str, int] = {"patients": len(docs)}
    for doc in docs:
        channels = {m for m in doc["modalities"] if m in ("CT", "ECG", "SEG")}
        channels |= {sr.get(a.get("profile"), "SR other") for a in doc["annotations"]
                     if a["kind"] == "SR"}
        for channel in channels:
            cells[f"channel/{channel}"] = cells.get(f"channel/{channel}", 0) + 1
        outcome = {a["fields"]["pacemaker"] for a in doc["annotations"]
                   if a.get("profile") == "srcohort-tavi-outcome"}
        label = {"SCT:373066001": "yes", "SCT:373067005": "no"}.get(
            outcome.pop() if len(outcome) == 1 else "", "unknown")
        cells[f"label/{label}"] = cells.get(f"label/{label}", 0) + 1
    return cells


@pytest.mark.opensearch
def test_site_aggregates_equal_counts_and_brute_force(opensearch_client: OpenSearch,
                                                     index_prefix: str, sites: list[str],
                                                     everyone: Path) -> None:
    for site, name in itertools.product(sites, [COHORT, str(everyone)]):
        prefix, cohort = f"{index_prefix}{site}-", resolve_cohort(name)
        docs = _docs(opensearch_client, name, prefix)
        total = count_patients(opensearch_client, cohort, prefix=prefix)["total"]
        for k in (2, 3, 5):
            published = published_cells(site_aggregate(
                docs, cohort=cohort, site=site, profiles=default_profiles(), label=LABEL, k=k))
            assert published["patients"] == (total if total >= k else None)
            for cell, value in _brute_force(docs).items():
                assert published[cell] in (value, None), (site, name, k, cell)
            assert all(published.get(cell, 0) in (0, None) for cell in published
                       if cell.startswith(("channel/", "label/")) and cell not in
                       _brute_force(docs))


@pytest.mark.opensearch
def test_pacemaker_labels_come_from_the_outcome_annotation(opensearch_client: OpenSearch,
                                                          index_prefix: str, sites: list[str],
                                                          everyone: Path) -> None:
    docs = [d for s in sites for d in _docs(opensearch_client, str(everyone), f"{index_prefix}{s}-")]
    labels = {LABEL.of(d) for d in docs}
    assert labels <= set(LABELS) and {"yes", "no"} & labels
    for doc in docs:
        outcome = {a["fields"]["pacemaker"] for a in doc["annotations"]
                   if "pacemaker" in (a.get("fields") or {})}
        assert LABEL.of(doc) == (
            {"SCT:373066001": "yes", "SCT:373067005": "no"}[outcome.pop()]
            if len(outcome) == 1 else "unknown")


@pytest.mark.opensearch
def test_aggregate_json_carries_no_identifier_date_text_or_uid(
        opensearch_client: OpenSearch, index_prefix: str, sites: list[str], everyone: Path) -> None:
    for site in sites:
        prefix = f"{index_prefix}{site}-"
        docs = _docs(opensearch_client, str(everyone), prefix)
        aggregate = release_site(opensearch_client, resolve_cohort(str(everyone)), site=site,
                                 prefix=prefix, k=2).aggregate
        text = dumps(aggregate)
        # Apart from the digest and the label's code values, no long digit run may appear.
        scrubbed = text.replace(aggregate["cohort"]["sha256"], "")
        for code in aggregate["parameters"]["label"]["values"].values():
            scrubbed = scrubbed.replace(code, "")
        assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{8}", scrubbed)        # dates
        assert not re.search(r"\d+(\.\d+){3,}", scrubbed)                   # UIDs
        secrets: set[str] = set()
        for doc in docs:
            secrets |= {doc["patient_id"], doc["patient_key"]}
            for series in doc["series"]:
                secrets |= {series["series_instance_uid"], series["study_instance_uid"],
                            str(series.get("series_description") or "")}
                secrets |= {str(v) for k, v in series.items() if k.endswith("_keyword")}
            for annotation in doc["annotations"]:
                secrets |= {annotation["sop_instance_uid"], annotation.get("title_meaning", "")}
                secrets |= {t["value"] for t in annotation.get("texts", [])}
                secrets |= {str(v) for v in (annotation.get("fields") or {}).values()
                            if isinstance(v, str)}
        public = dumps(aggregate["parameters"]) + aggregate["schema"]     # codes, "srcohort"
        secrets = {s for s in secrets if len(s) > 3 and s not in public}
        assert secrets and not [s for s in secrets if s in text]


@pytest.mark.opensearch
def test_run_federated_count_writes_json_and_plots(opensearch_client: OpenSearch,
                                                  index_prefix: str, sites: list[str],
                                                  everyone: Path, tmp_path: Path) -> None:
    cohort = resolve_cohort(str(everyone))
    combined = run_federated_count(opensearch_client, cohort, sites,
                                   prefix_template=f"{index_prefix}{{site}}-", k=5,
                                   out_dir=tmp_path)
    per_site = {s: count_patients(opensearch_client, cohort, prefix=f"{index_prefix}{s}-")["total"]
                for s in sites}
    for site, total in per_site.items():
        low, high = combined.cells["patients"][site]
        assert low <= total <= high and (low == high) == (total >= 5)
    low, high = combined.overall("patients")
    assert low <= sum(per_site.values()) <= high
    for name in (UPSET, LABEL_BALANCE):
        assert (tmp_path / name).stat().st_size > 1000
    first = (tmp_path / "federated.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "sites").iterdir()) == [f"{s}.json" for s in sites]
    run_federated_count(opensearch_client, cohort, sites,
                        prefix_template=f"{index_prefix}{{site}}-", k=5, out_dir=tmp_path)
    assert (tmp_path / "federated.json").read_bytes() == first          # deterministic
    assert "patients" in combined.table()


@pytest.mark.opensearch
def test_cli_federated_count_end_to_end(opensearch_url: str, index_prefix: str,
                                        sites: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "srcohort", "federated", "count", COHORT, "--sites", ",".join(sites),
         "--prefix-template", f"{index_prefix}{{site}}-", "--k", "3", "--url", opensearch_url,
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert all(site in result.stdout for site in sites) and "overall" in result.stdout
    combined = json.loads((tmp_path / "federated.json").read_text())
    assert combined["k"] == 3 and combined["sites"] == sites
    again = subprocess.run(
        [sys.executable, "-m", "srcohort", "federated", "combine",
         *map(str, sorted((tmp_path / "sites").iterdir())), "--out", str(tmp_path / "again")],
        capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "federated.json").read_text() == json.dumps(
        combined, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# --- pure parts -------------------------------------------------------------------------------

def _doc(pid: str, modalities: list[str], profiles: list[str], pacemaker: str | None = None,
         heart_rate: float | None = None) -> dict:
    annotations = [{"kind": "SR", "profile": p, "fields": {}} for p in profiles]
    for a in annotations:
        if a["profile"] == "srcohort-tavi-outcome" and pacemaker:
            a["fields"] = {"pacemaker": pacemaker, "tavi_date": "2020-01-02"}
        if a["profile"] == "3700" and heart_rate is not None:
            a["fields"] = {"heart_rate": heart_rate, "summary": "Sinus Rhythm"}
    return {"site": "s", "patient_id": pid, "patient_key": f"s/{pid}",
            "modalities": modalities, "annotations": annotations}


def _synthetic(n: int) -> list[dict]:
    docs = []
    for i in range(n):
        profiles = ["srcohort-tavi-outcome"] + (["3700"] if i % 3 else [])
        docs.append(_doc(f"P{i:04d}", ["CT", "SR"] + (["ECG"] if i % 3 else []), profiles,
                         ("SCT:373066001", "SCT:373067005")[i % 4 == 0] if i % 7 else None,
                         60.0 + i if i % 3 else None))
    return docs


def _aggregate(docs: list[dict], k: int = 5, site: str = "s") -> dict:
    return site_aggregate(docs, cohort=resolve_cohort(COHORT), site=site,
                          profiles=default_profiles(), label=LABEL, k=k)


def test_primary_suppression_hides_every_small_count() -> None:
    values = {"t": 20, "a": 12, "b": 4, "c": 4}
    hidden = suppress(values, [Relation(("t",), ("a", "b", "c"), equal=True)], 5,
                      floors={}, ceilings={})
    assert hidden == {"b", "c"}


def test_complementary_suppression_protects_a_lone_small_cell() -> None:
    values = {"t": 20, "a": 12, "b": 6, "c": 2}
    relation = Relation(("t",), ("a", "b", "c"), equal=True)
    hidden = suppress(values, [relation], 5, floors={}, ceilings={}, keep=frozenset({"t"}))
    assert hidden == {"b", "c"}                         # the smallest other cell joins c
    inferred = intervals({n: None if n in hidden else v for n, v in values.items()}, [relation],
                         {}, {})
    assert inferred["c"] == (0, 8) and inferred["a"] == (12, 12)


def test_no_partition_with_a_published_total_has_exactly_one_suppressed_cell() -> None:
    for n in range(1, 40):
        docs = _synthetic(n)
        for k in (2, 3, 5, 10):
            aggregate = _aggregate(docs, k)
            cells = published_cells(aggregate)
            params = Parameters.from_profiles(default_profiles(), LABEL)
            for relation in relations(cells, params):
                if relation.equal and cells[relation.lhs[0]] is not None:
                    assert sum(cells[c] is None for c in relation.rhs) != 1, (n, k, relation)


def test_no_small_count_can_be_recomputed_from_what_is_published() -> None:
    params = Parameters.from_profiles(default_profiles(), LABEL)
    for n in range(1, 40):
        docs = _synthetic(n)
        truth = published_cells(_aggregate(docs, k=2))  # k=2 hides only zeros and ones
        for k in (3, 5):
            aggregate = _aggregate(docs, k)
            if aggregate["withheld"]:
                continue
            cells = published_cells(aggregate)
            floors, ceilings = public_bounds(cells, k)
            inferred = intervals(cells, relations(cells, params), floors, ceilings)
            for name, value in cells.items():
                if value is None and name in truth and truth[name] and truth[name] < k:
                    assert inferred[name][0] < inferred[name][1], (n, k, name)


def test_aggregate_is_counts_and_field_names_only() -> None:
    text = dumps(_aggregate(_synthetic(30)))
    assert "P00" not in text and "2020" not in text and "Sinus" not in text
    assert json.loads(text)["cohort"]["sha256"] == _aggregate(_synthetic(30))["cohort"]["sha256"]
    assert dumps(_aggregate(_synthetic(30))) == text                    # deterministic


def test_small_feature_summaries_publish_only_that_they_are_small() -> None:
    aggregate = _aggregate(_synthetic(6), k=5)          # 4 patients have a heart rate
    assert aggregate["features"]["heart_rate"] == {"n": "suppressed"}
    big = _aggregate(_synthetic(30), k=5)["features"]["heart_rate"]
    values = [60.0 + i for i in range(30) if i % 3]
    assert big == {"n": len(values), "mean": round(statistics.fmean(values), 6),
                   "sd": round(statistics.stdev(values), 6),
                   "median": statistics.median(values)}


def test_pooled_mean_and_sd_are_exact() -> None:
    a, b = [1.0, 2.0, 4.0, 8.0, 9.0], [3.0, 5.0, 5.5, 10.0, 11.0, 12.0]
    parts = [{"n": len(x), "mean": statistics.fmean(x), "sd": statistics.stdev(x)} for x in (a, b)]
    result = pooled(parts)
    assert result["n"] == 11
    assert result["mean"] == pytest.approx(statistics.fmean(a + b), abs=1e-6)
    assert result["sd"] == pytest.approx(statistics.stdev(a + b), abs=1e-6)


def test_combine_shows_ranges_for_suppressed_cells() -> None:
    one, two = _aggregate(_synthetic(30), site="a"), _aggregate(_synthetic(8), site="b")
    combined = combine([two, one])
    assert combined.sites == ("a", "b")
    assert combined.overall("patients") == (38, 38)
    low, high = combined.overall("label/unknown")
    truth = sum(1 for d in _synthetic(30) + _synthetic(8)
                if not any(a.get("fields", {}).get("pacemaker") for a in d["annotations"]))
    assert low <= truth <= high
    assert "\u2013" in combined.table() or "<5" in combined.table()


def test_combine_refuses_mixed_cohorts_k_and_duplicate_sites() -> None:
    one = _aggregate(_synthetic(10), site="a")
    other_cohort = site_aggregate(_synthetic(10), cohort=resolve_cohort(
        "tavi-lbbb-ecg-calcification"), site="b", profiles=default_profiles(), label=LABEL)
    with pytest.raises(FederatedError, match="cohort"):
        combine([one, other_cohort])
    with pytest.raises(FederatedError, match="k"):
        combine([one, _aggregate(_synthetic(10), k=3, site="b")])
    with pytest.raises(FederatedError, match="twice"):
        combine([one, one])
    with pytest.raises(FederatedError, match="schema"):
        combine([{**one, "schema": "other/9"}])


def test_cli_combine_of_a_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "site.json"
    bad.write_text("[]")
    result = subprocess.run([sys.executable, "-m", "srcohort", "federated", "combine", str(bad),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("action", [[], ["site"], ["combine"], ["count"]])
def test_federated_help(action: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "srcohort", "federated", *action, "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage: srcohort federated" in result.stdout
