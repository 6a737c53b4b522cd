"""The OpenSearch edge of one site: release a cohort's aggregate, approve or reject one.

The only module of the package that sees patient documents from a live index; they stay in
this process and only counts come out. A release is audited against every earlier release in
the site's ledger (``linked``), recorded in the ledger, written out unless the site requires a
person's approval first, and entered in the site's audit log. The stand-alone CLI, the demo and
the Airflow steps all call these functions, so they share one ledger and one audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor, Clock, utc_now
from srcohort.audit.chain import ChainMoved
from srcohort.audit.log import record
from srcohort.canonical import canonical_json
from srcohort.cohort.definition import Cohort
from srcohort.cohort.label import LabelSpec
from srcohort.cohort.run import list_patients
from srcohort.federated.aggregate import DEFAULT_K, KEEP, Aggregate, site_release
from srcohort.federated.combine import FederatedError
from srcohort.federated.ledger import (PENDING, RELEASED, Ledger, ReleaseRecord,
                                       approval_required, as_published, history)
from srcohort.federated.linked import ReleaseRefused, linked_hiding
from srcohort.sr.profiles import default_profiles
from srcohort.study.load import load_study

MAX_CONCURRENT = 5        # audits redone because another release entered the ledger meanwhile


@dataclass(frozen=True)
class Release:
    """What ``release_site`` did: the ledger number, the state and the aggregate."""

    number: int
    state: str                       # released | pending
    aggregate: Aggregate
    out: Path | None                 # where the aggregate was written (None while pending)
    # Cells the linked audit hid on top of this release's own suppression: differences with
    # earlier releases, and complements (total minus a cell) and other combinations within it.
    linked_suppressed: tuple[str, ...]


def release_site(client: OpenSearch, cohort: Cohort, *, site: str, prefix: str,
                 k: int = DEFAULT_K, out: Path | None = None, actor: Actor | None = None,
                 clock: Clock = utc_now) -> Release:
    """Publish ``cohort``'s aggregate over the patients indexed under ``prefix``.

    Raises ReleaseRefused (nothing recorded in the ledger, the refusal in the audit log) when
    the release would make a count below k derivable together with earlier releases, and
    ChainError when the ledger is damaged.
    """
    actor = actor or Actor.current()
    ledger = Ledger(client, prefix)
    candidate = site_release(list_patients(client, cohort, prefix=prefix), cohort=cohort,
                             site=site, profiles=default_profiles(),
                             label=LabelSpec.of_study(load_study()), k=k)
    for _ in range(MAX_CONCURRENT):
        entries = ledger.entries()
        try:
            extra = linked_hiding(as_published(candidate.aggregate, candidate.members,
                                               "this release"), history(entries), keep=KEEP)
        except ReleaseRefused:
            record(client, prefix=prefix, action="release", actor=actor, cohort=cohort,
                   details={"site": site, "k": k, "state": "refused"}, clock=clock)
            raise
        release = candidate.hiding(extra)
        state = PENDING if approval_required(entries) else RELEASED
        try:      # recorded only if nothing entered the ledger while it was being audited
            entry = ledger.record_release(release, state=state, actor=actor, clock=clock,
                                          after=entries[-1]["seq"] if entries else 0)
            break
        except ChainMoved:
            continue
    else:
        raise FederatedError(f"{ledger.chain.index}: other releases kept arriving while this "
                             f"one was audited; try again")
    written = write_json(release.aggregate, out) if out is not None and state == RELEASED else None
    record(client, prefix=prefix, action="release", actor=actor, cohort=cohort,
           result=release.aggregate, output=written, clock=clock,
           details={"site": site, "k": k, "release": entry["seq"], "state": state,
                    "suppressed_by_linked_audit": len(extra)})
    return Release(entry["seq"], state, release.aggregate, written, tuple(sorted(extra)))


def decide_release(client: OpenSearch, prefix: str, number: int, *, approve: bool,
                   out: Path | None = None, reason: str = "", actor: Actor | None = None,
                   clock: Clock = utc_now) -> ReleaseRecord:
    """Approve (and write to ``out``) or reject a pending release, as ``actor``."""
    actor = actor or Actor.current()
    decided = Ledger(client, prefix).decide(number, approve=approve, actor=actor,
                                            reason=reason, clock=clock)
    written = write_json(decided.aggregate, out) if approve and out is not None else None
    record(client, prefix=prefix, action="approve" if approve else "reject", actor=actor,
           cohort=decided.aggregate["cohort"], result=decided.aggregate if approve else None,
           output=written, details={"site": decided.site, "release": number,
                                    **({"reason": reason} if reason else {})}, clock=clock)
    return decided


def set_approval_policy(client: OpenSearch, prefix: str, *, required: bool,
                        actor: Actor | None = None, clock: Clock = utc_now) -> None:
    """Whether this site's releases wait for a person's approval (ledger and audit log)."""
    actor = actor or Actor.current()
    Ledger(client, prefix).set_policy(require_approval=required, actor=actor, clock=clock)
    record(client, prefix=prefix, action="policy", actor=actor,
           details={"require_approval": required}, clock=clock)


def write_json(data: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(canonical_json(data), "utf-8")
    return path
