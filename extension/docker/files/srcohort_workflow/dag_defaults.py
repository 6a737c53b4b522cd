"""What every srcohort DAG shares: Kaapana's form fields, default args, the closing cleaner.

Kaapana reads ``ui_forms`` and ``ui_visible`` from a DAG's default args to draw the workflow
form; keeping the shape here means both DAG files differ only in what they actually do.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.models import DAG, BaseOperator

from srcohort_workflow.kaapana_compat import INDEX_PREFIX, LocalWorkflowCleanerOperator


def form_field(title: str, description: str, *, default: str | None = None,
               required: bool = False, choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """One ``workflow_form`` property as Kaapana's UI renders it: a string input, or a
    drop-down when ``choices`` are given (JSON schema ``enum``)."""
    field: dict[str, Any] = {"title": title, "description": description, "type": "string",
                             "required": required, "readOnly": False}
    if choices:
        field["enum"] = list(choices)
    if default is not None:
        field["default"] = default
    return field


def index_prefix_field(description: str) -> dict[str, Any]:
    return form_field("Index prefix", f"{description} srcohort's indices are <prefix>series and "
                      "<prefix>patients; Kaapana's project indices are never changed.",
                      default=INDEX_PREFIX)


def srcohort_dag(dag_id: str, fields: dict[str, dict[str, Any]]) -> DAG:
    """A UI-triggered DAG with Kaapana's default args and no dataset picker."""
    ui_forms = {
        "data_form": {},      # no Kaapana dataset: srcohort selects its inputs itself
        "workflow_form": {"type": "object", "properties": fields},
    }
    args = {
        "ui_forms": ui_forms,
        "ui_visible": True,
        "owner": "kaapana",
        # A fixed date: days_ago() is deprecated in Airflow 2.11 and warns on every parse.
        "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),
        "retries": 0,
    }
    return DAG(dag_id=dag_id, default_args=args, schedule=None, catchup=False,
               tags=["srcohort"])


def end_with_cleaner(dag: DAG, last: BaseOperator) -> None:
    """In Kaapana, close with its cleaner, keeping the run folder.

    The run folder holds the converted files the index refers to by path, and the export.
    """
    if LocalWorkflowCleanerOperator is not None:
        last >> LocalWorkflowCleanerOperator(dag=dag, clean_workflow_dir=False)
