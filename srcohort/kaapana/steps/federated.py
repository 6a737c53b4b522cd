"""Steps ``federated-site``, ``federated-central`` and ``federated-decide``: a cohort counted
across Kaapana instances, released by each site through its release ledger.

``federated-site`` runs at every site (the remote DAG srcohort-federated-site, started by the
central instance through Kaapana's federated framework, or by hand): the cohort's
k-suppressed aggregate of the project's srcohort indices, named by this instance
(``$INSTANCE_NAME``), released through ``srcohort.federated.release_site``: audited against
every earlier release of the project (its ledger), recorded in the ledger and in the audit log
as the run's user, and written as ``<instance>.json``, the only file of the step's folder. That
folder is what Kaapana's federated sharing packs (``.json`` only), encrypts and uploads to the
central instance; nothing else of the site leaves.

When the project requires a person's approval (``srcohort federated policy``), the release
is recorded as pending and the folder stays empty. ``federated-decide`` (DAG
srcohort-federated-decide, started at the site by whoever approves) approves or rejects it;
approval needs a second person. The next federated run of the same cohort and k then ships
the approved aggregate exactly as it was audited, instead of asking for a new release; while
it waits, runs request nothing new.

``federated-central`` (the central DAG srcohort-federated-count) starts that workflow at the
registered sites, collects their aggregates (srcohort.kaapana.federated) and combines them
with srcohort.federated into the consortium's table and plots, put into the project bucket
(``srcohort/federated/<run id>/``). A site that sent nothing has a release waiting for approval:
the combine then waits too, and the summary names those sites. An aggregate must carry the
name of the instance it came from: a site cannot publish under another's name.
"""

from __future__ import annotations

from typing import Any

from srcohort.audit.log import audit_log, record
from srcohort.cohort.definition import Cohort
from srcohort.federated import (FederatedError, Ledger, ReleaseRecord, combine_files,
                                decide_release, read_aggregates, release_site, releases,
                                write_json)
from srcohort.federated.aggregate import check_k
from srcohort.federated.ledger import PENDING, RELEASED
from srcohort.kaapana.bucket import FOLDER
from srcohort.kaapana.cohorts import cohort_setting
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.federated import FederatedRun, fetch_results, run_sites
from srcohort.kaapana.platform import Platform

SHIPPED = "shipped"          # audit state of an approved release sent by a later run


def k_setting(platform: Platform) -> int:
    """The form's k, never below the installed threshold (extension parameter)."""
    installed = int(platform.pod.get("SRCOHORT_K") or 5)
    try:
        asked = int(platform.pod.setting("k") or installed)
        return check_k(max(asked, installed))
    except ValueError as exc:
        raise KaapanaError(f"workflow_form.k: {exc}") from None


def site(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    client, prefix = platform.opensearch, platform.prefix(pod.project)
    cohort, k = cohort_setting(pod.setting("cohort")), k_setting(platform)
    out = pod.out_dir / f"{platform.site}.json"
    earlier = _open_request(platform, cohort, k)
    if earlier is None:
        release = release_site(client, cohort, site=platform.site, prefix=prefix, k=k, out=out,
                               actor=platform.actor)
        if release.out is None:
            return {"site": platform.site, "release": release.number, "state": release.state}
        return release.aggregate
    if earlier.state == PENDING:
        return {"site": platform.site, "release": earlier.number, "state": PENDING}
    write_json(earlier.aggregate, out)
    record(client, prefix=prefix, action="release", actor=platform.actor,
           cohort=earlier.aggregate["cohort"], result=earlier.aggregate, output=out,
           details={"site": platform.site, "k": k, "release": earlier.number,
                    "state": SHIPPED})
    return earlier.aggregate


def _open_request(platform: Platform, cohort: Cohort, k: int) -> ReleaseRecord | None:
    """This site's newest release of ``cohort`` at ``k`` if it is still open: pending, or
    approved by a person and not yet shipped. ``None``: a new release is due."""
    client, prefix = platform.opensearch, platform.prefix(platform.pod.project)
    mine = [r for r in releases(Ledger(client, prefix).entries())
            if r.site == platform.site and r.aggregate["k"] == k
            and r.aggregate["cohort"]["sha256"] == cohort.digest]
    if not mine or mine[-1].state not in (PENDING, RELEASED):
        return None
    newest = mine[-1]
    if newest.state == PENDING:
        return newest
    if newest.decided is None:            # released without approval: already shipped
        return None
    shipped = any(e["action"] == "release" and e["details"].get("state") == SHIPPED
                  and e["details"].get("release") == newest.number
                  for e in audit_log(client, prefix).entries())
    return None if shipped else newest


def decide(platform: Platform) -> dict[str, Any]:
    """Approve or reject release ``workflow_form.release`` of the project's ledger, as the
    user who started this workflow; without a release number, list the releases."""
    pod = platform.pod
    client, prefix = platform.opensearch, platform.prefix(pod.project)
    number = str(pod.setting("release") or "").strip()
    if not number:
        return {"releases": [r.summary() for r in releases(Ledger(client, prefix).entries())]}
    decision = str(pod.setting("decision") or "")
    if decision not in ("approve", "reject"):
        raise KaapanaError(f"workflow_form.decision must be approve or reject, got "
                           f"{decision!r}")
    try:
        release = int(number)
    except ValueError:
        raise KaapanaError(f"workflow_form.release must be a release number, got "
                           f"{number!r}") from None
    decided = decide_release(client, prefix, release, approve=decision == "approve",
                             reason=str(pod.setting("reason") or ""), actor=platform.actor)
    return decided.summary()


def central(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    run = FederatedRun.from_conf(pod.conf, pod.require("RUN_ID", "set by KaapanaBaseOperator"))
    keys = run_sites(pod, run)
    bucket = platform.bucket(pod.project)
    received = fetch_results(bucket, run, keys, pod.out_dir / "sites")
    paths, pending = {}, []
    for instance in sorted(keys):
        files = [p for p in received.get(instance, []) if p.name.endswith(".json")]
        if not files:                     # its release waits for approval at the site
            pending.append(instance)
        elif [p.name for p in files] != [f"{instance}.json"]:
            raise KaapanaError(f"{instance} sent {[p.name for p in files]}, not its one "
                               f"aggregate {instance}.json")
        else:
            paths[instance] = files[0]
    if pending:
        return {"sites": sorted(keys), "pending": pending, "combined": False,
                "reason": "releases wait for approval at these sites (workflow "
                          "srcohort-federated-decide there); run again once they are decided"}
    out = pod.out_dir / "combined"
    try:
        for aggregate, instance in zip(read_aggregates(list(paths.values())), paths):
            if aggregate["site"] != instance:
                raise KaapanaError(f"the aggregate from {instance} is named "
                                   f"{aggregate['site']!r}")
        combined = combine_files(list(paths.values()), out)
    except FederatedError as exc:
        raise KaapanaError(f"the sites' aggregates do not combine: {exc}") from None
    prefix = f"{FOLDER}/federated/{pod.require('RUN_ID', 'set by KaapanaBaseOperator')}"
    uploaded = bucket.put_tree(out, prefix)
    return {"sites": sorted(keys), "pending": [], "combined": True, "table": combined.table(),
            "bucket": bucket.bucket, "uploaded": uploaded}

