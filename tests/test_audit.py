"""The audit log: hash chain, filters, who, and every CLI path writing its entry against the
real OpenSearch (index, count, list, export with its card, federated release and approval)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.audit.chain import chained, verify
from srcohort.audit.log import audit_log, digest, record, select
from srcohort.canonical import canonical_json
from srcohort.federated.aggregate import summary

COHORT = "tavi-self-expanding"
FIXED = dt.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)


# --- pure parts -------------------------------------------------------------------------------

def _chain(n: int) -> list[dict]:
    entries: list[dict] = []
    for i in range(n):
        entries.append(chained({"action": "count", "n": i}, entries[-1] if entries else None))
    return entries


def test_an_intact_chain_verifies_and_every_kind_of_damage_is_named() -> None:
    entries = _chain(5)
    assert verify(entries) == [] and [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    edited = [dict(e) for e in entries]
    edited[2]["n"] = 99
    assert verify(edited) == ["entry 3: altered after it was written (digest mismatch)"]
    rehashed = [dict(e) for e in edited]       # the editor recomputes the entry's own digest
    rehashed[2] = chained({"action": "count", "n": 99}, rehashed[1])
    assert verify(rehashed) == ["entry 4: does not follow the entry before it (prev mismatch)"]
    removed = entries[:2] + entries[3:]
    assert any("expected entry 3" in p for p in verify(removed))
    assert verify(list(reversed(entries)))
    with pytest.raises(ValueError):
        chained({"seq": 7}, None)


def test_select_filters_by_action_user_cohort_and_time() -> None:
    def entry(seq: int, action: str, user: str, day: int, name: str | None) -> dict:
        return {"seq": seq, "action": action, "user": user,
                "time": f"2031-05-{day:02d}T10:00:00.000Z",
                "cohort": {"name": name, "sha256": f"{seq}abc"} if name else None}
    log = [entry(1, "index", "ann", 1, None), entry(2, "count", "ann", 2, "c1"),
           entry(3, "export", "bob", 3, "c2"), entry(4, "release", "bob", 4, "c1")]
    assert [e["seq"] for e in select(log, actions=["count", "release"])] == [2, 4]
    assert [e["seq"] for e in select(log, user="bob")] == [3, 4]
    assert [e["seq"] for e in select(log, cohort="c1")] == [2, 4]
    assert [e["seq"] for e in select(log, cohort="3ab")] == [3]          # digest prefix
    since = dt.datetime(2031, 5, 2, tzinfo=dt.timezone.utc)
    until = dt.datetime(2031, 5, 4, 10, tzinfo=dt.timezone.utc)
    assert [e["seq"] for e in select(log, since=since, until=until)] == [2, 3]


def test_the_actor_is_the_kaapana_run_user_or_the_os_user() -> None:
    kaapana = Actor.current({"DAG_ID": "srcohort-federated-export", "RUN_ID": "manual__1",
                             "USERNAME": "dr.weber"})
    assert kaapana == Actor("dr.weber", "srcohort-federated-export/manual__1")
    assert Actor.current({}).user and Actor.current({}).run is None
    form = Actor.of_run({"username": "dr.weber"}, "d", "r")
    assert form.to_json() == {"user": "dr.weber", "run": "d/r"}


def test_an_sd_is_withheld_below_2k_values_and_when_it_is_zero() -> None:
    k = 5
    assert "sd" not in summary([float(v) for v in range(2 * k - 1)], k)
    assert "sd" in summary([float(v) for v in range(2 * k)], k)
    assert "sd" not in summary([60.0] * (3 * k), k)                     # everyone alike
    assert summary([60.0] * (3 * k), k)["mean"] == 60.0


# --- against OpenSearch -----------------------------------------------------------------------

@pytest.mark.opensearch
def test_record_takes_its_time_from_the_clock_and_its_snapshot_from_the_index(
        opensearch_client: OpenSearch, index_prefix: str) -> None:
    entry = record(opensearch_client, prefix=index_prefix, action="count", actor=Actor("ann"),
                   result={"total": 3}, clock=lambda: FIXED)
    assert entry["time"] == "2031-05-06T07:08:09.123Z"
    assert entry["snapshot"] == {"series": 0, "patients": 0, "last_index_run": None}
    assert entry["result_sha256"] == hashlib.sha256(
        canonical_json({"total": 3}).encode()).hexdigest()
    again = record(opensearch_client, prefix=index_prefix, action="count", actor=Actor("ann"),
                   clock=lambda: FIXED)
    assert again["prev"] == entry["sha256"] and again["seq"] == 2


def _cli(args: list[str], *, user: str, url: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DAG_ID", "RUN_ID", "USERNAME")}
    return subprocess.run([sys.executable, "-m", "srcohort", *args, "--url", url],
                          env={**clean, "LOGNAME": user, "USER": user, **(env or {})},
                          capture_output=True, text=True, timeout=600)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.opensearch
def test_every_cli_path_writes_its_audit_entry(opensearch_url: str, opensearch_client: OpenSearch,
                                               index_prefix: str, converted: Path,
                                               tmp_path: Path) -> None:
    site = sorted(p.name for p in converted.iterdir())[0]
    common = ["--prefix", index_prefix]
    _ok(_cli(["index", str(converted / site / "dicom"), "--site", site, *common],
             user="carol", url=opensearch_url))
    counts = json.loads(_ok(_cli(["cohort", "count", COHORT, "--json", *common], user="dave",
                                 url=opensearch_url)))
    listed = _ok(_cli(["cohort", "list", COHORT, *common], user="dave", url=opensearch_url))
    export = json.loads(_ok(_cli(["export", COHORT, "--out", str(tmp_path / "export"), "--json",
                                  *common], user="dave", url=opensearch_url,
                                 env={"SRCOHORT_SECRET": "audit-test-secret"})))
    _ok(_cli(["federated", "site", COHORT, "--site", site, "--k", "2", "--out",
              str(tmp_path / "site.json"), *common], user="dave", url=opensearch_url))

    log = audit_log(opensearch_client, index_prefix).verified()
    assert [(e["action"], e["user"]) for e in log] == [
        ("index", "carol"), ("count", "dave"), ("list", "dave"), ("export", "dave"),
        ("release", "dave")]
    index_run, count, listing, exported, released = log
    assert index_run["details"]["series"] > 0 and index_run["cohort"] is None
    series, patients = (opensearch_client.count(index=f"{index_prefix}{kind}")["count"]
                        for kind in ("series", "patients"))
    for entry in log[1:]:
        assert entry["snapshot"]["series"] == series and entry["snapshot"]["patients"] == patients
        assert entry["snapshot"]["last_index_run"]["seq"] == index_run["seq"]
        assert entry["snapshot"]["last_index_run"]["sha256"] == index_run["sha256"]
        assert entry["cohort"]["name"] == COHORT and len(entry["cohort"]["sha256"]) == 64
    assert count["result_sha256"] == digest(counts) and count["output"] is None
    keys = [line.split("\t")[1] for line in listed.splitlines()]
    assert listing["details"]["patients"] == len(keys) == counts["total"]
    manifest = tmp_path / "export" / "unified" / "manifest.json"
    assert exported["details"]["manifest_sha256"]["unified"] == hashlib.sha256(
        manifest.read_bytes()).hexdigest()
    assert exported["output"] == str((tmp_path / "export").resolve())
    assert export["audit"] == {k: exported[k] for k in ("seq", "sha256", "action", "time")}
    assert released["result_sha256"] == hashlib.sha256(
        (tmp_path / "site.json").read_bytes()).hexdigest()
    assert released["details"]["state"] == "released" and released["details"]["release"] == 1

    # The card cites the export's entry and the indexing run it read, and still loads.
    import mlcroissant as mlc
    card_path = tmp_path / "export" / "unified" / "croissant.json"
    card = json.loads(card_path.read_text("utf-8"))
    cited = card["srcohort:audit"]
    assert cited["srcohort:log"] == f"{index_prefix}audit"
    assert [(e["seq"], e["sha256"]) for e in cited["srcohort:entries"]] == [
        (exported["seq"], exported["sha256"]), (index_run["seq"], index_run["sha256"])]
    issues = mlc.Dataset(jsonld=str(card_path)).metadata.ctx.issues
    assert not issues.errors and not issues.warnings, (issues.errors, issues.warnings)

    # srcohort audit prints and filters the same entries.
    shown = json.loads(_ok(_cli(["audit", "--json", "--action", "count", "--action", "list",
                                 *common], user="erin", url=opensearch_url)))
    assert [e["seq"] for e in shown] == [count["seq"], listing["seq"]]
    shown = json.loads(_ok(_cli(["audit", "--json", "--user", "carol", *common], user="erin",
                                url=opensearch_url)))
    assert [e["action"] for e in shown] == ["index"]
    # Times from the log itself, so the filter is tested on any day: --until is exclusive.
    before = json.loads(_ok(_cli(["audit", "--json", "--until", count["time"], *common],
                                 user="erin", url=opensearch_url)))
    assert [e["action"] for e in before] == ["index"]
    later = json.loads(_ok(_cli(["audit", "--json", "--since", released["time"], "--last", "1",
                                *common], user="erin", url=opensearch_url)))
    assert [e["seq"] for e in later] == [released["seq"]]
    text = _ok(_cli(["audit", *common], user="erin", url=opensearch_url))
    assert "release/released" in text and "hash chain intact" in text and "dave" in text


@pytest.mark.opensearch
def test_cli_approval_and_a_damaged_audit_log(opensearch_url: str,
                                              opensearch_client: OpenSearch, index_prefix: str,
                                              converted: Path, tmp_path: Path) -> None:
    site = sorted(p.name for p in converted.iterdir())[0]
    common = ["--prefix", index_prefix]
    _ok(_cli(["index", str(converted / site / "dicom"), "--site", site, *common], user="carol",
             url=opensearch_url))
    _ok(_cli(["federated", "policy", "--require-approval", "yes", *common], user="erin",
             url=opensearch_url))
    out = tmp_path / "site.json"
    pending: dict[str, Any] = json.loads(_ok(_cli(
        ["federated", "site", COHORT, "--site", site, "--k", "2", "--out", str(out), "--json",
         *common], user="dave", url=opensearch_url)))
    assert pending["state"] == "pending" and not out.exists()
    refused = _cli(["federated", "approve", str(pending["release"]), "--out", str(out), *common],
                   user="dave", url=opensearch_url)
    assert refused.returncode == 2 and "another person" in refused.stderr and not out.exists()
    _ok(_cli(["federated", "approve", str(pending["release"]), "--out", str(out), *common],
             user="erin", url=opensearch_url))
    assert json.loads(out.read_text("utf-8"))["site"] == site
    ledger = json.loads(_ok(_cli(["federated", "ledger", "--json", *common], user="erin",
                                 url=opensearch_url)))
    [row] = ledger["releases"]
    assert (row["state"], row["requested_by"], row["decided_by"]) == ("released", "dave", "erin")
    assert len(ledger["head"]) == 64

    # An audit entry edited in place: srcohort audit says so and fails.
    index = f"{index_prefix}audit"
    doc = opensearch_client.get(index=index, id=str(2).zfill(12))["_source"]
    doc["user"] = "mallory"
    opensearch_client.index(index=index, id=str(2).zfill(12), body=doc, refresh=True)
    damaged = _cli(["audit", *common], user="erin", url=opensearch_url)
    assert damaged.returncode == 1 and "entry 2: altered" in damaged.stderr


@pytest.mark.parametrize("args", [["audit"], ["federated", "approve"], ["federated", "reject"],
                                  ["federated", "ledger"], ["federated", "policy"]])
def test_help(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "srcohort", *args, "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and f"usage: srcohort {' '.join(args)}" in result.stdout
