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

from srcohort_workflow.settings import installed

INSTALLED = installed()


def cohort_field() -> dict[str, Any]:
    """The cohort to run: a saved cohort of the study, or a whole definition pasted as YAML.
    Offers the installed study's saved cohorts, the first as default."""
    saved = [str(name) for name in INSTALLED.get("cohorts") or []]
    return field("Cohort", "Name of a saved cohort of the study"
                 + (f" ({', '.join(saved)})" if saved else "")
                 + " or a whole cohort definition as YAML text (docs/cohorts.md).",
                 default=saved[0] if saved else None, required=True)


def study_field() -> dict[str, Any]:
    """The study the run uses; default: the one installed with the extension."""
    return field("Study", "The study whose declarations convert, index, count and export "
                 "(a study shipped in srcohort's image, docs/studies.md); empty: the installed "
                 "one.", default=str(INSTALLED.get("study") or "") or None)


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
