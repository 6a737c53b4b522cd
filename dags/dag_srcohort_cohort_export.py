"""Kaapana workflow ``srcohort-cohort-export``: count a cohort per site and export it.

The cohort is a saved definition shipped with srcohort (by name) or a definition pasted as YAML
text; the export is de-identified with pseudonyms keyed by the site's secret.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pendulum
from airflow.models import DAG

try:  # In Kaapana the operator package sits next to this file, on Airflow's DAG path.
    import srcohort_workflow  # noqa: F401
except ImportError:  # In the repository it is in ../operators.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operators"))

from srcohort_workflow.kaapana_compat import LocalWorkflowCleanerOperator  # noqa: E402
from srcohort_workflow.SrcohortCohortExportOperator import (  # noqa: E402
    DEFAULT_COHORT,
    SrcohortCohortExportOperator,
)

ui_forms = {
    # No Kaapana dataset: the cohort definition selects the patients.
    "data_form": {},
    "workflow_form": {
        "type": "object",
        "properties": {
            "cohort": {
                "title": "Cohort",
                "description": "Name of a saved cohort (e.g. tavi-self-expanding) or a whole "
                               "cohort definition as YAML text (docs/cohorts.md).",
                "type": "string",
                "default": DEFAULT_COHORT,
                "required": True,
                "readOnly": False,
            },
            "index_prefix": {
                "title": "Index prefix",
                "description": "Prefix of the srcohort indices to query, as given to "
                               "srcohort-convert-index.",
                "type": "string",
                "default": SrcohortCohortExportOperator.defaults["index_prefix"],
                "required": False,
                "readOnly": False,
            },
            "secret_env": {
                "title": "Pseudonym secret variable",
                "description": "Name of the environment variable that holds the site's "
                               "pseudonymisation secret (never the secret itself).",
                "type": "string",
                "default": SrcohortCohortExportOperator.defaults["secret_env"],
                "required": False,
                "readOnly": False,
            },
        },
    },
}

args = {
    "ui_forms": ui_forms,
    "ui_visible": True,
    "owner": "kaapana",
    # A fixed date: days_ago() is deprecated in Airflow 2.11 and warns on every parse.
    "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),
    "retries": 0,
}

dag = DAG(dag_id="srcohort-cohort-export", default_args=args, schedule=None, catchup=False,
          tags=["srcohort"])

export = SrcohortCohortExportOperator(dag=dag)

if LocalWorkflowCleanerOperator is not None:
    # Keep the run folder: it holds the export, the result of this workflow.
    export >> LocalWorkflowCleanerOperator(dag=dag, clean_workflow_dir=False)
