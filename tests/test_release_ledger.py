"""Releases audited against the site's release ledger, against the real OpenSearch.

A synthetic site is indexed through the real index code (series documents -> patient roll-up),
cohorts run as real queries, and every release goes through ``release_site``: the ledger, the
linked audit, the audit log. The classic differencing attacks are then run the way a reader
would run them, on the published files only (the formulas below know nothing of the audit):
A vs A-and-not-x, A-or-x vs A, a chain of three releases, one cohort at two dates.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.audit.chain import ChainError
from srcohort.audit.log import audit_log
from srcohort.cohort.definition import Cohort, load_cohort
from srcohort.cohort.label import LabelSpec
from srcohort.federated import (FederatedError, Ledger, ReleaseRefused, decide_release,
                                release_site, releases, set_approval_policy)
from srcohort.cohort.run import list_patients
from srcohort.federated.aggregate import published_cells, site_aggregate
from srcohort.federated.ledger import aggregate_digest
from srcohort.index.indexer import rollup_patients
from srcohort.index.opensearch import bulk_index, ensure_indices
from srcohort.sr.profiles import default_profiles
from srcohort.study.load import load_study

pytestmark = pytest.mark.opensearch

K = 5
SITE = "site-t"
MANUFACTURER = "00080070 Manufacturer_keyword"
YES, NO = "SCT:373066001", "SCT:373067005"
ALICE, BOB = Actor("alice"), Actor("bob")


def clock_at(day: int) -> Callable[[], dt.datetime]:
    """A fixed clock (the tests never read the real one): 2031-05-<day> 07:08:09 UTC."""
    return lambda: dt.datetime(2031, 5, day, 7, 8, 9, tzinfo=dt.timezone.utc)


# --- a synthetic site ---------------------------------------------------------------------------
# group -> (patients, how many with an ECG, labels in patient order: y(es), n(o), u(nknown))
GROUPS = {
    "M-A": (30, 15, "ynu" * 10),        # the bulk of cohorts A and B
    "M-W": (2, 1, "yy"),                # two patients: any difference by W is below k
    "M-X": (6, 1, "yyynnn"),            # six: a total difference is fine, the ECG one is not
    "M-Y": (10, 4, "yyyyynnnnn"),
    "M-Z": (10, 5, "yyyynnuuuu"),
    "M-U": (20, 10, "yn" * 10),         # cohort U shares no patient with the others
}


def _series_docs(group: str, start: int, count: int, ecg: int, labels: str) -> list[dict]:
    docs = []
    for i in range(start, start + count):
        pid = f"{group}-{i:03d}"
        common = {"site": SITE, "patient_id": pid, "patient_key": f"{SITE}/{pid}",
                  "study_instance_uid": f"2.25.{abs(hash(pid)) % 10**12}.1",
                  "study_date": None, "series_description": "", "instances": 1, "files": []}
        docs.append({**common, "series_instance_uid": f"{pid}.ct", "modality": "CT",
                     MANUFACTURER: group, "annotations": []})
        if i - start < ecg:
            docs.append({**common, "series_instance_uid": f"{pid}.ecg", "modality": "ECG",
                         "annotations": []})
        label = labels[i - start]
        if label != "u":
            docs.append({**common, "series_instance_uid": f"{pid}.sr", "modality": "SR",
                         "annotations": [{"kind": "SR", "sop_instance_uid": f"{pid}.sr.1",
                                          "series_instance_uid": f"{pid}.sr", "template": "",
                                          "profile": "srcohort-tavi-outcome",
                                          "fields": {"pacemaker": YES if label == "y" else NO}}]})
    return docs


def add_patients(client: OpenSearch, prefix: str, group: str, start: int, count: int,
                 ecg: int, labels: str) -> None:
    """Index more patients of ``group`` through the real bulk writer and patient roll-up."""
    series_index, _ = ensure_indices(client, prefix)
    docs = _series_docs(group, start, count, ecg, labels)
    bulk_index(client, series_index, ((d["series_instance_uid"], d) for d in docs))
    client.indices.refresh(index=series_index)
    rollup_patients(client, prefix, {d["patient_key"] for d in docs})


@pytest.fixture
def site(opensearch_client: OpenSearch, index_prefix: str) -> str:
    for group, (count, ecg, labels) in GROUPS.items():
        add_patients(opensearch_client, index_prefix, group, 0, count, ecg, labels)
    return index_prefix


def makers(*groups: str) -> dict:
    return {"series": {"modality": "CT", "attributes": {MANUFACTURER: list(groups)}}}


EXPRESSIONS: dict[str, dict] = {}       # cohort name -> its patient expression


def cohort(name: str, expr: dict) -> Cohort:
    EXPRESSIONS[name] = expr
    return load_cohort({"name": name, "patients": expr})


A = cohort("a", makers("M-A", "M-W", "M-Y"))
B = cohort("b", makers("M-A"))
U = cohort("u", makers("M-U"))


def minus(base: Cohort, *groups: str) -> Cohort:
    return cohort(f"{base.name}-not-{'-'.join(groups)}",
                  {"all": [EXPRESSIONS[base.name], {"not": makers(*groups)}]})


def plus(base: Cohort, *groups: str) -> Cohort:
    return cohort(f"{base.name}-or-{'-'.join(groups)}",
                  {"any": [EXPRESSIONS[base.name], makers(*groups)]})


def release(client: OpenSearch, prefix: str, which: Cohort, out: Path, *, actor: Actor = ALICE,
            day: int = 1) -> Any:
    return release_site(client, which, site=SITE, prefix=prefix, k=K,
                        out=out / f"{which.name}.json", actor=actor, clock=clock_at(day))


def cells(aggregate: dict) -> dict[str, int | None]:
    return published_cells(aggregate)


def assert_difference_reveals_nothing(larger: dict, smaller: dict) -> None:
    """The classic attack when one cohort contains the other: subtract cell by cell. Each
    difference counts the patients in the larger cohort only; none may be 1..k-1."""
    big, small = cells(larger), cells(smaller)
    for name in sorted(set(big) & set(small)):
        if big[name] is not None and small[name] is not None:
            assert not 0 < big[name] - small[name] < K, (name, big[name], small[name])


# --- the attacks ------------------------------------------------------------------------------

def test_a_then_a_and_not_x(opensearch_client: OpenSearch, site: str, tmp_path: Path) -> None:
    first = release(opensearch_client, site, A, tmp_path)
    assert first.state == "released" and cells(first.aggregate)["patients"] == 42
    assert first.linked_suppressed == ()
    # Two patients of W: A minus A-and-not-W would be 2. Nothing can hide that but the total.
    with pytest.raises(ReleaseRefused, match="below k"):
        release(opensearch_client, site, minus(A, "M-W"), tmp_path)
    assert not (tmp_path / "a-not-M-W.json").exists()
    # Ten patients of Y, four of them with an ECG: the totals may differ, the ECGs may not.
    second = release(opensearch_client, site, minus(A, "M-Y"), tmp_path)
    assert second.state == "released" and cells(second.aggregate)["patients"] == 32
    assert "channel/ECG" in second.linked_suppressed
    written = json.loads((tmp_path / "a-not-M-Y.json").read_text("utf-8"))
    assert written == second.aggregate
    assert_difference_reveals_nothing(first.aggregate, written)
    # The attack is real: suppressed on its own, the same release gives Y's four ECGs away.
    alone = site_aggregate(list_patients(opensearch_client, minus(A, "M-Y"), prefix=site),
                           cohort=minus(A, "M-Y"), site=SITE, profiles=default_profiles(),
                           label=LabelSpec.of_study(load_study("tavi")), k=K)
    with pytest.raises(AssertionError, match="channel/ECG"):
        assert_difference_reveals_nothing(first.aggregate, alone)
    ledger = releases(Ledger(opensearch_client, site).entries())
    assert [(r.number, r.state) for r in ledger] == [(1, "released"), (2, "released")]
    refused = [e for e in audit_log(opensearch_client, site).verified()
               if e["action"] == "release" and e["details"]["state"] == "refused"]
    assert len(refused) == 1 and refused[0]["output"] is None


def test_b_then_b_or_x(opensearch_client: OpenSearch, site: str, tmp_path: Path) -> None:
    first = release(opensearch_client, site, B, tmp_path)
    with pytest.raises(ReleaseRefused):
        release(opensearch_client, site, plus(B, "M-W"), tmp_path)
    # X adds six patients (fine) with one ECG and three yes / three no (not fine).
    second = release(opensearch_client, site, plus(B, "M-X"), tmp_path)
    assert cells(second.aggregate)["patients"] == 36
    assert {"channel/ECG", "label/yes", "label/no"} & set(second.linked_suppressed)
    assert_difference_reveals_nothing(second.aggregate, first.aggregate)


def test_a_chain_of_three_releases(opensearch_client: OpenSearch, site: str,
                                   tmp_path: Path) -> None:
    """X+Y, Y+Z, X+Z: no two of them single X out, the three give X = (R1 + R3 - R2) / 2."""
    r1 = release(opensearch_client, site, cohort("xy", makers("M-X", "M-Y")), tmp_path)
    r2 = release(opensearch_client, site, cohort("yz", makers("M-Y", "M-Z")), tmp_path)
    r3 = release(opensearch_client, site, cohort("xz", makers("M-X", "M-Z")), tmp_path)
    assert cells(r3.aggregate)["patients"] == 16           # X itself is 6: may be derived
    assert r3.linked_suppressed                       # X's ECG (1) and yes (3) may not
    one, two, three = (cells(r.aggregate) for r in (r1, r2, r3))
    for name in sorted(set(one) & set(two) & set(three)):
        if None not in (one[name], two[name], three[name]):
            x = (one[name] + three[name] - two[name]) / 2
            assert not 0 < x < K, (name, one[name], two[name], three[name])
    # X is now known to be 6, so W+Y against X+Y would give W (2): refused.
    with pytest.raises(ReleaseRefused):
        release(opensearch_client, site, cohort("wy", makers("M-W", "M-Y")), tmp_path)


def test_a_chain_through_two_patients_is_refused(opensearch_client: OpenSearch, site: str,
                                                 tmp_path: Path) -> None:
    release(opensearch_client, site, cohort("wy", makers("M-W", "M-Y")), tmp_path)
    release(opensearch_client, site, cohort("yz", makers("M-Y", "M-Z")), tmp_path)
    with pytest.raises(ReleaseRefused):
        release(opensearch_client, site, cohort("wz", makers("M-W", "M-Z")), tmp_path)


def test_one_cohort_at_two_dates(opensearch_client: OpenSearch, site: str,
                                 tmp_path: Path) -> None:
    z = cohort("z", makers("M-Z"))
    before = release(opensearch_client, site, z, tmp_path, day=1)
    add_patients(opensearch_client, site, "M-Z", 100, 2, 1, "yn")       # two new patients
    with pytest.raises(ReleaseRefused):
        release(opensearch_client, site, z, tmp_path / "later", day=2)
    add_patients(opensearch_client, site, "M-Z", 200, 5, 1, "yyyyy")   # seven new in all
    after = release(opensearch_client, site, z, tmp_path / "later", day=3)
    assert cells(after.aggregate)["patients"] == 17
    assert after.linked_suppressed
    assert_difference_reveals_nothing(after.aggregate, before.aggregate)


def test_an_unrelated_cohort_loses_nothing(opensearch_client: OpenSearch, site: str,
                                           tmp_path: Path) -> None:
    """U shares no patient with the earlier releases: it is published exactly as it would be
    at a site that never published anything (a second deployment of the same data)."""
    release(opensearch_client, site, A, tmp_path)
    release(opensearch_client, site, minus(A, "M-Y"), tmp_path)
    after = release(opensearch_client, site, U, tmp_path / "after")
    fresh = f"{site}fresh-"
    for group, (count, ecg, labels) in GROUPS.items():
        add_patients(opensearch_client, fresh, group, 0, count, ecg, labels)
    alone = release(opensearch_client, fresh, U, tmp_path / "alone")
    assert after.linked_suppressed == ()
    assert after.aggregate == alone.aggregate
    assert ((tmp_path / "after" / "u.json").read_bytes()
            == (tmp_path / "alone" / "u.json").read_bytes())


def test_the_same_release_again_is_identical(opensearch_client: OpenSearch, site: str,
                                             tmp_path: Path) -> None:
    first = release(opensearch_client, site, minus(A, "M-Y"), tmp_path / "1")
    again = release(opensearch_client, site, minus(A, "M-Y"), tmp_path / "2", day=2)
    assert again.number == first.number + 1 and again.aggregate == first.aggregate


# --- approval ---------------------------------------------------------------------------------

def test_a_pending_release_leaves_only_when_another_person_approves(
        opensearch_client: OpenSearch, site: str, tmp_path: Path) -> None:
    set_approval_policy(opensearch_client, site, required=True, actor=BOB, clock=clock_at(1))
    pending = release(opensearch_client, site, A, tmp_path, day=2)
    assert pending.state == "pending" and pending.out is None
    assert not (tmp_path / "a.json").exists()
    with pytest.raises(FederatedError, match="another person"):
        decide_release(opensearch_client, site, pending.number, approve=True,
                       out=tmp_path / "a.json", actor=ALICE, clock=clock_at(3))
    # A pending release counts as published: the differencing release is still refused.
    with pytest.raises(ReleaseRefused):
        release(opensearch_client, site, minus(A, "M-W"), tmp_path, day=3)
    approved = decide_release(opensearch_client, site, pending.number, approve=True,
                              out=tmp_path / "a.json", actor=BOB, clock=clock_at(4))
    assert approved.state == "released"
    assert approved.decided == {"time": "2031-05-04T07:08:09.000Z", "user": "bob"}
    assert json.loads((tmp_path / "a.json").read_text("utf-8")) == pending.aggregate
    with pytest.raises(FederatedError, match="not pending"):
        decide_release(opensearch_client, site, pending.number, approve=False, actor=BOB)
    entries = Ledger(opensearch_client, site).entries()
    assert [e["kind"] for e in entries] == ["policy", "release", "approval"]
    assert entries[2]["aggregate_sha256"] == aggregate_digest(pending.aggregate)
    actions = [(e["action"], e["user"]) for e in audit_log(opensearch_client, site).verified()]
    assert actions == [("policy", "bob"), ("release", "alice"), ("release", "alice"),
                       ("approve", "bob")]


def test_a_rejected_release_no_longer_holds_others_back(opensearch_client: OpenSearch,
                                                        site: str, tmp_path: Path) -> None:
    set_approval_policy(opensearch_client, site, required=True, actor=BOB)
    pending = release(opensearch_client, site, A, tmp_path)
    rejected = decide_release(opensearch_client, site, pending.number, approve=False,
                              reason="asked by mistake", actor=ALICE)
    assert rejected.state == "rejected" and rejected.decided["reason"] == "asked by mistake"
    set_approval_policy(opensearch_client, site, required=False, actor=BOB)
    assert release(opensearch_client, site, minus(A, "M-W"), tmp_path).state == "released"


# --- the ledger is append-only and tamper-evident --------------------------------------------

def _doc_id(seq: int) -> str:
    return str(seq).zfill(12)


def test_a_removed_ledger_entry_stops_every_release(opensearch_client: OpenSearch, site: str,
                                                    tmp_path: Path) -> None:
    release(opensearch_client, site, A, tmp_path)
    release(opensearch_client, site, minus(A, "M-Y"), tmp_path)
    release(opensearch_client, site, U, tmp_path)
    ledger = Ledger(opensearch_client, site)
    # Removing release 1 would let A-and-not-W through; the gap is noticed first.
    opensearch_client.delete(index=ledger.chain.index, id=_doc_id(1), refresh=True)
    with pytest.raises(ChainError, match="entry 2"):
        release(opensearch_client, site, minus(A, "M-W"), tmp_path)


def test_an_edited_ledger_entry_is_detected(opensearch_client: OpenSearch, site: str,
                                            tmp_path: Path) -> None:
    release(opensearch_client, site, A, tmp_path)
    release(opensearch_client, site, B, tmp_path)
    ledger = Ledger(opensearch_client, site)
    doc = opensearch_client.get(index=ledger.chain.index, id=_doc_id(1))["_source"]
    doc["members"]["patients"] = doc["members"]["patients"][:3]        # forget patients
    opensearch_client.index(index=ledger.chain.index, id=_doc_id(1), body=doc, refresh=True)
    with pytest.raises(ChainError, match="altered"):
        ledger.entries()


def test_a_release_audited_on_an_outdated_ledger_is_audited_again(
        opensearch_client: OpenSearch, site: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two releases at once: the one that finds the ledger grown since it read it redoes its
    audit with the other's release in it (here: and is then refused)."""
    from srcohort.federated import site as site_module
    first = release(opensearch_client, site, A, tmp_path)
    audited = site_module.linked_hiding
    rounds: list[int] = []

    def meanwhile_another_release(candidate, history, **kwargs):      # type: ignore[no-untyped-def]
        rounds.append(len(history))
        if len(rounds) == 1:          # while this audit runs, A-and-not-Y is released
            monkeypatch.setattr(site_module, "linked_hiding", audited)
            release(opensearch_client, site, minus(A, "M-Y"), tmp_path)
            monkeypatch.setattr(site_module, "linked_hiding", meanwhile_another_release)
        return audited(candidate, history, **kwargs)

    monkeypatch.setattr(site_module, "linked_hiding", meanwhile_another_release)
    # A-and-not-Y-and-not-W against A alone is fine (12 patients less); against A-and-not-Y
    # as well it gives W (2 patients).
    with pytest.raises(ReleaseRefused):
        release(opensearch_client, site, minus(minus(A, "M-Y"), "M-W"), tmp_path)
    assert rounds == [1, 2] and first.number == 1
    assert [r.number for r in releases(Ledger(opensearch_client, site).entries())] == [1, 2]
