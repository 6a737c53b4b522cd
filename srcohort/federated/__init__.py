"""Federated cohort counts: every site runs one cohort and publishes k-suppressed aggregates
only; a coordinator combines them into per-site and overall tables and plots.

``aggregate`` (patient documents -> site aggregate), ``suppression`` (primary and
complementary), ``linked`` (a release audited with every earlier one), ``combine``
(coordinator), ``table`` and ``plots`` (rendering) are pure; ``ledger`` keeps what a site
published and ``site`` releases a cohort from one site's index through it. docs/federated.md
describes what leaves a site and what is protected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from opensearchpy import OpenSearch

from srcohort.cohort.definition import Cohort
from srcohort.audit.actor import Actor, Clock, utc_now
from srcohort.federated.aggregate import DEFAULT_K, Aggregate, site_aggregate
from srcohort.federated.combine import Combined, FederatedError, combine
from srcohort.federated.ledger import Ledger, ReleaseRecord, releases
from srcohort.federated.linked import ReleaseRefused
from srcohort.federated.site import (Release, decide_release, release_site, set_approval_policy,
                                     write_json)

DEFAULT_PREFIX_TEMPLATE = "srcohort-demo-{site}-"
FEDERATED_JSON = "federated.json"

__all__ = ["Combined", "DEFAULT_K", "DEFAULT_PREFIX_TEMPLATE", "FederatedError", "Ledger",
           "Release", "ReleaseRecord", "ReleaseRefused", "combine", "combine_files",
           "decide_release", "release_site", "releases", "run_federated_count",
           "set_approval_policy", "site_aggregate"]


def read_aggregates(paths: Sequence[Path]) -> list[Aggregate]:
    """Site aggregate files; a file that is not one is refused by name."""
    aggregates = []
    for path in paths:
        try:
            aggregates.append(json.loads(Path(path).read_text("utf-8")))
        except (OSError, ValueError) as exc:
            raise FederatedError(f"{path}: not a readable aggregate ({exc})") from exc
        if not isinstance(aggregates[-1], dict) or "site" not in aggregates[-1]:
            raise FederatedError(f"{path}: not a site aggregate")
    return aggregates


def combine_files(paths: Sequence[Path], out_dir: Path) -> Combined:
    """The coordinator's whole job: aggregate files in, federated.json and the PNGs out."""
    from srcohort.federated.plots import write_plots
    combined = combine(read_aggregates(paths))
    write_json(combined.to_json(), out_dir / FEDERATED_JSON)
    write_plots(combined, out_dir)
    return combined


def run_federated_count(client: OpenSearch, cohort: Cohort, sites: Sequence[str], *,
                        prefix_template: str = DEFAULT_PREFIX_TEMPLATE, k: int = DEFAULT_K,
                        out_dir: Path, actor: Actor | None = None,
                        clock: Clock = utc_now) -> Combined:
    """Release ``cohort`` at every site (each under its own index prefix, ledger and audit
    log) to ``out_dir/sites/<site>.json``, then combine exactly as a coordinator would: from the
    files. A site whose release waits for approval stops the count (FederatedError)."""
    paths = []
    for site in sites:
        release = release_site(client, cohort, site=site, prefix=prefix_template.format(site=site),
                               k=k, out=Path(out_dir) / "sites" / f"{site}.json", actor=actor,
                               clock=clock)
        if release.out is None:
            raise FederatedError(f"{site}: release {release.number} waits for approval "
                                 f"(srcohort federated approve {release.number})")
        paths.append(release.out)
    return combine_files(paths, Path(out_dir))
