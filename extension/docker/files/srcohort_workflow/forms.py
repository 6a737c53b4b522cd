"""What every srcohort DAG shares: Kaapana's form fields, default args and the closing cleaner.

Kaapana reads ``ui_forms`` and ``ui_visible`` from a DAG's default args to draw its forms
(kaapana-backend ``workflows/utils.py``). A DAG without ``data_form`` gets Kaapana's dataset
picker (``dataset_name``, ``dataset_limit``: kaapana_utils ``parse_ui_dict``) and is listed in
the Datasets view; ``"data_form": {}`` hides it. DAGs tagged ``import`` are listed by Data
Upload.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.models import DAG
from kaapana.operators.LocalWorkflowCleanerOperator import LocalWorkflowCleanerOperator

COHORT_DESCRIPTION = ("Name of a saved cohort (e.g. tavi-self-expanding) or a whole cohort "
                      "definition as YAML text (docs/cohorts.md).")


def field(title: str, description: str, *, default: Any = None, required: bool = False,
          kind: str = "string", choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """One ``workflow_form`` property as Kaapana's UI renders it (JSON schema)."""
    prop: dict[str, Any] = {"title": title, "description": description, "type": kind,
                            "required": required, "readOnly": False}
    if choices:
        prop["enum"] = list(choices)
    if default is not None:
        prop["default"] = default
    return prop


def srcohort_dag(dag_id: str, ui_forms: dict[str, Any], *, tags: tuple[str, ...] = (),
                 ui_visible: bool = True) -> DAG:
    args = {
        "ui_forms": ui_forms,
        "ui_visible": ui_visible,
        "owner": "kaapana",
        # A fixed date: days_ago() is deprecated in Airflow 2.11 and warns on every parse.
        "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),
        "retries": 0,
    }
    return DAG(dag_id=dag_id, default_args=args, schedule=None, catchup=False,
               max_active_runs=5, tags=["srcohort", *tags])


def cleaner(dag: DAG, **kwargs: Any) -> LocalWorkflowCleanerOperator:
    """Kaapana's cleaner, removing the run folder: it is scratch, since srcohort's index keeps
    UIDs and PACS addresses and the results are in the project bucket."""
    return LocalWorkflowCleanerOperator(dag=dag, clean_workflow_dir=True,
                                        trigger_rule="none_failed_min_one_success", **kwargs)
