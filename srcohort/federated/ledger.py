"""The site's release ledger: every aggregate the site published, append-only, beside its index.

Kept as a hash chain in the index ``<prefix>release-ledger`` (``srcohort.audit.chain``), so the
stand-alone CLI and the Airflow steps write the same ledger and a deleted or edited entry is
detected before the next release relies on it. Four kinds of entry:

* ``release``: the aggregate exactly as it leaves (or will leave) the site, its digest, k, the
  cohort, who asked for it, ``state`` ``released`` or ``pending`` (the site requires approval),
  and, staying at the site, the patients behind each of its cells (patient document ids, the
  index's own opaque ids) so later releases can be audited against it (``linked``);
* ``approval`` / ``rejection`` of a pending release, with who decided;
* ``policy``: whether releases need a person's approval before they leave.

A release's number is its position in the ledger. Pending releases count as published when
later releases are audited (they may still be approved); rejected ones do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor, Clock, timestamp, utc_now
from srcohort.audit.chain import Chain, Entry
from srcohort.canonical import canonical_json
from srcohort.federated.aggregate import Aggregate, SiteRelease, public_bounds, published_cells
from srcohort.federated.combine import FederatedError
from srcohort.federated.linked import Published

LEDGER_INDEX = "release-ledger"
PENDING, RELEASED, REJECTED = "pending", "released", "rejected"
_KEYWORD = {"type": "keyword"}
PROPERTIES = {"kind": _KEYWORD, "user": _KEYWORD, "site": _KEYWORD, "state": _KEYWORD,
              "release": {"type": "long"},
              "cohort": {"properties": {"name": _KEYWORD, "sha256": _KEYWORD}}}


def aggregate_digest(aggregate: Aggregate) -> str:
    """sha256 of the aggregate file's bytes (canonical JSON, as ``write_json`` writes it)."""
    return hashlib.sha256(canonical_json(aggregate).encode("utf-8")).hexdigest()


def encode_members(members: Mapping[str, frozenset[str]]) -> dict[str, Any]:
    """Patient ids once, each cell as positions in that list: compact and deterministic."""
    patients = sorted(set().union(*members.values())) if members else []
    position = {p: i for i, p in enumerate(patients)}
    return {"patients": patients,
            "cells": {name: sorted(position[p] for p in ids) for name, ids in
                      sorted(members.items())}}


def decode_members(encoded: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    patients = encoded["patients"]
    return {name: frozenset(patients[i] for i in positions)
            for name, positions in encoded["cells"].items()}


def as_published(aggregate: Aggregate, members: Mapping[str, frozenset[str]], name: str
                 ) -> Published:
    """A release as the linked audit sees it: published cells, public bounds, patients."""
    cells = published_cells(aggregate)
    floors, ceilings = public_bounds(cells, aggregate["k"])
    return Published(name, aggregate["k"], cells, {n: members[n] for n in cells},
                     floors, ceilings)


@dataclass(frozen=True)
class ReleaseRecord:
    """A release and what became of it, read from the ledger."""

    number: int
    state: str
    aggregate: Aggregate
    requested: Mapping[str, Any]               # time, user, run
    decided: Mapping[str, Any] | None = None   # time, user, run (+ reason) of approval/rejection

    @property
    def site(self) -> str:
        return self.aggregate["site"]

    def summary(self) -> dict[str, Any]:
        """One line's worth for listings: no cell values."""
        return {"release": self.number, "state": self.state, "site": self.site,
                "cohort": self.aggregate["cohort"]["name"], "k": self.aggregate["k"],
                "time": self.requested["time"], "requested_by": self.requested["user"],
                **({"decided_by": self.decided["user"], "decided": self.decided["time"]}
                   if self.decided else {})}


def _who(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in ("time", "user", "run", "reason") if key in entry}


def releases(entries: Sequence[Mapping[str, Any]]) -> list[ReleaseRecord]:
    """Every release in the ledger with its current state, oldest first."""
    found: dict[int, ReleaseRecord] = {}
    for entry in entries:
        if entry["kind"] == "release":
            found[entry["seq"]] = ReleaseRecord(entry["seq"], entry["state"], entry["aggregate"],
                                                _who(entry))
        elif entry["kind"] in ("approval", "rejection") and entry["release"] in found:
            record = found[entry["release"]]
            found[entry["release"]] = ReleaseRecord(
                record.number, RELEASED if entry["kind"] == "approval" else REJECTED,
                record.aggregate, record.requested, _who(entry))
    return list(found.values())


def history(entries: Sequence[Mapping[str, Any]]) -> list[Published]:
    """What later releases are audited against: every release not rejected."""
    rejected = {r.number for r in releases(entries) if r.state == REJECTED}
    return [as_published(e["aggregate"], decode_members(e["members"]), f"release {e['seq']}")
            for e in entries if e["kind"] == "release" and e["seq"] not in rejected]


def approval_required(entries: Sequence[Mapping[str, Any]]) -> bool:
    """The latest policy entry decides; without one, releases leave without approval."""
    policies = [e for e in entries if e["kind"] == "policy"]
    return bool(policies[-1]["require_approval"]) if policies else False


@dataclass(frozen=True)
class Ledger:
    """The release ledger of the deployment whose indices start with ``prefix``."""

    client: OpenSearch
    prefix: str

    @property
    def chain(self) -> Chain:
        return Chain(self.client, f"{self.prefix}{LEDGER_INDEX}", PROPERTIES)

    def entries(self) -> list[Entry]:
        """Every entry, verified: a damaged ledger stops releases (ChainError)."""
        return self.chain.verified()

    def record_release(self, release: SiteRelease, *, state: str, actor: Actor,
                       after: int, clock: Clock = utc_now) -> Entry:
        """Append a release audited against the ledger up to entry ``after`` (ChainMoved if
        anything was added since: the audit must then be redone)."""
        aggregate = release.aggregate
        return self.chain.append({
            "kind": "release", "time": timestamp(clock), **actor.to_json(), "state": state,
            "site": aggregate["site"], "cohort": aggregate["cohort"], "k": aggregate["k"],
            "aggregate": aggregate, "aggregate_sha256": aggregate_digest(aggregate),
            "members": encode_members(release.members)}, after=after)

    def find(self, number: int) -> ReleaseRecord:
        for record in releases(self.entries()):
            if record.number == number:
                return record
        raise FederatedError(f"{self.chain.index}: no release {number}")

    def decide(self, number: int, *, approve: bool, actor: Actor, reason: str = "",
               clock: Clock = utc_now) -> ReleaseRecord:
        """Approve or reject a pending release. Approval needs a second person: whoever asked
        for the release cannot approve it (they may withdraw it by rejecting)."""
        record = self.find(number)
        if record.state != PENDING:
            raise FederatedError(f"release {number} is {record.state}, not pending")
        if approve and actor.user == record.requested["user"]:
            raise FederatedError(f"release {number} was requested by {actor.user}: another "
                                 f"person must approve it")
        self.chain.append({"kind": "approval" if approve else "rejection",
                           "time": timestamp(clock), **actor.to_json(), "release": number,
                           "aggregate_sha256": aggregate_digest(record.aggregate),
                           **({"reason": reason} if reason else {})})
        return self.find(number)

    def set_policy(self, *, require_approval: bool, actor: Actor, clock: Clock = utc_now
                   ) -> Entry:
        return self.chain.append({"kind": "policy", "time": timestamp(clock), **actor.to_json(),
                                  "require_approval": require_approval})
