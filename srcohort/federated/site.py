"""The OpenSearch edge of one site: run the cohort on its own index, return its aggregate.

The only module of the package that sees patient documents from a live index; they stay in
this process and only ``site_aggregate``'s counts come out.
"""

from __future__ import annotations

from pathlib import Path

from opensearchpy import OpenSearch

from srcohort.canonical import canonical_json
from srcohort.cohort.definition import Cohort
from srcohort.cohort.label import LabelSpec
from srcohort.cohort.run import list_patients
from srcohort.federated.aggregate import DEFAULT_K, Aggregate, site_aggregate
from srcohort.sr.profiles import default_profiles
from srcohort.study.load import load_study


def run_site(client: OpenSearch, cohort: Cohort, *, site: str, prefix: str,
             k: int = DEFAULT_K) -> Aggregate:
    """The aggregate of ``cohort`` over the patients indexed under ``prefix``."""
    return site_aggregate(list_patients(client, cohort, prefix=prefix), cohort=cohort, site=site,
                          profiles=default_profiles(), label=LabelSpec.of_study(load_study()),
                          k=k)


def write_json(data: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(canonical_json(data), "utf-8")
    return path
