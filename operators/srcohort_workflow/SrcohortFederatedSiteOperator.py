"""Step ``srcohort-federated-site``: this site's k-suppressed aggregate of the cohort.

The only output meant to leave the site: counts per modality subset, label balance and feature
summaries, with every count below k suppressed, audited against every earlier release of the
site and recorded in its release ledger and audit log (srcohort.federated, docs/federated.md).
When the site requires approval, nothing is written until a person approves the release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowException

from srcohort_workflow.cohort_settings import COHORT_SCRIPT, DEFAULT_COHORT, load_cohort_setting
from srcohort_workflow.kaapana_compat import (INDEX_PREFIX, SrcohortStep, opensearch_client,
                                              required, run_actor)

AGGREGATE_FILE = "{site}.json"


def k_setting(value: str) -> int:
    """The suppression threshold from the form, checked as the CLI checks it."""
    from srcohort.federated.aggregate import check_k
    try:
        return check_k(int(value))
    except ValueError as error:
        raise AirflowException(f"workflow_form.k: {error} (got {value!r})") from None


class SrcohortFederatedSiteOperator(SrcohortStep):
    """Write ``<run>/<operator_out_dir>/<site>.json``. XCom: the site's published cells, or
    the release number and ``pending`` while it waits for approval."""

    step_name = "srcohort-federated-site"
    defaults = {"cohort": DEFAULT_COHORT, "index_prefix": INDEX_PREFIX, "k": "5",
                "site": "local"}
    script = f"""\
out="$WORKFLOW_DIR/$OPERATOR_OUT_DIR"
mkdir -p "$out"
{COHORT_SCRIPT}
srcohort federated site "$cohort" --site "$SITE" --prefix "$INDEX_PREFIX" --k "$K" \\
  --out "$out/$SITE.json" --json"""

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.federated import release_site
        site = required(settings, "site")
        release = release_site(
            opensearch_client(), load_cohort_setting(required(settings, "cohort")), site=site,
            prefix=str(settings["index_prefix"]), k=k_setting(required(settings, "k")),
            out=out_dir / AGGREGATE_FILE.format(site=site),
            actor=run_actor(self, settings, out_dir))
        if release.out is None:
            return {"release": release.number, "state": release.state}
        return release.aggregate
