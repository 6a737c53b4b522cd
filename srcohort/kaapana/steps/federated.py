"""Steps ``federated-site`` and ``federated-central``: a cohort counted across Kaapana instances.

``federated-site`` runs at every site (the remote DAG srcohort-federated-site, started by the
central instance through Kaapana's federated framework, or by hand): the cohort's
k-suppressed aggregate of the project's srcohort indices, named by this instance
(``$INSTANCE_NAME``), written as ``<instance>.json`` as the only file of the step's folder. That
folder is what Kaapana's federated sharing packs (``.json`` only), encrypts and uploads to the
central instance; nothing else of the site leaves.

``federated-central`` (the central DAG srcohort-federated-count) starts that workflow at the
registered sites, collects their aggregates (srcohort.kaapana.federated) and combines them
with srcohort.federated into the consortium's table and plots, put into the project bucket
(``srcohort/federated/<run id>/``). An aggregate must carry the name of the instance it came
from: a site cannot publish under another's name.
"""

from __future__ import annotations

from typing import Any

from srcohort.federated import (FederatedError, combine_files, read_aggregates, run_site,
                                write_json)
from srcohort.federated.aggregate import check_k
from srcohort.kaapana.bucket import FOLDER
from srcohort.kaapana.cohorts import cohort_setting
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.federated import FederatedRun, fetch_results, run_sites
from srcohort.kaapana.platform import Platform


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
    project = pod.project
    aggregate = run_site(platform.opensearch, cohort_setting(pod.setting("cohort")),
                         site=platform.site, prefix=platform.prefix(project),
                         k=k_setting(platform))
    write_json(aggregate, pod.out_dir / f"{platform.site}.json")
    return aggregate


def central(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    run = FederatedRun.from_conf(pod.conf, pod.require("RUN_ID", "set by KaapanaBaseOperator"))
    keys = run_sites(pod, run)
    bucket = platform.bucket(pod.project)
    received = fetch_results(bucket, run, keys, pod.out_dir / "sites")
    paths = []
    for instance in sorted(keys):
        files = [p for p in received.get(instance, []) if p.name.endswith(".json")]
        if [p.name for p in files] != [f"{instance}.json"]:
            raise KaapanaError(f"{instance} sent {[p.name for p in files]}, not its one "
                               f"aggregate {instance}.json")
        paths.append(files[0])
    out = pod.out_dir / "combined"
    try:
        for aggregate, instance in zip(read_aggregates(paths), sorted(keys)):
            if aggregate["site"] != instance:
                raise KaapanaError(f"the aggregate from {instance} is named "
                                   f"{aggregate['site']!r}")
        combined = combine_files(paths, out)
    except FederatedError as exc:
        raise KaapanaError(f"the sites' aggregates do not combine: {exc}") from None
    prefix = f"{FOLDER}/federated/{pod.require('RUN_ID', 'set by KaapanaBaseOperator')}"
    uploaded = bucket.put_tree(out, prefix)
    return {"sites": sorted(keys), "table": combined.table(), "bucket": bucket.bucket,
            "uploaded": uploaded}

