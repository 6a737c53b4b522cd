"""Federated cohort counts: every site runs one cohort and publishes k-suppressed aggregates
only; a coordinator combines them into per-site and overall tables and plots.

``aggregate`` (patient documents -> site aggregate), ``suppression`` (primary and
complementary), ``combine`` (coordinator), ``table`` and ``plots`` (rendering) are pure;
``site`` runs a cohort against one site's index. docs/federated.md describes what leaves a site.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from opensearchpy import OpenSearch

from srcohort.cohort.definition import Cohort
from srcohort.federated.aggregate import DEFAULT_K, Aggregate, site_aggregate
from srcohort.federated.combine import Combined, FederatedError, combine
from srcohort.federated.site import run_site, write_json

DEFAULT_PREFIX_TEMPLATE = "srcohort-demo-{site}-"
FEDERATED_JSON = "federated.json"

__all__ = ["Combined", "DEFAULT_K", "DEFAULT_PREFIX_TEMPLATE", "FederatedError", "combine",
           "combine_files", "run_federated_count", "run_site", "site_aggregate"]


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
                        out_dir: Path) -> Combined:
    """Run ``cohort`` at every site (each under its own index prefix), write each aggregate to
    ``out_dir/sites/<site>.json``, then combine exactly as a coordinator would: from the files."""
    paths = [write_json(run_site(client, cohort, site=site,
                                 prefix=prefix_template.format(site=site), k=k),
                        Path(out_dir) / "sites" / f"{site}.json") for site in sites]
    return combine_files(paths, Path(out_dir))
