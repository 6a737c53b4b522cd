"""Kaapana workflow ``srcohort-convert-index``: one site export -> DICOM + SR -> OpenSearch.

Run it once per site export (and again after fixing what the conversion report quarantined:
both steps overwrite their earlier results in place).
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
from srcohort_workflow.SrcohortConvertOperator import SrcohortConvertOperator  # noqa: E402
from srcohort_workflow.SrcohortIndexOperator import SrcohortIndexOperator  # noqa: E402

ui_forms = {
    # No Kaapana dataset: the input is a site export folder, not series already in the platform.
    "data_form": {},
    "workflow_form": {
        "type": "object",
        "properties": {
            "site_dir": {
                "title": "Site export folder",
                "description": "Folder of one site export (mapping.yaml, tables, images), as "
                               "the processing steps see it; in Kaapana below "
                               "/kaapana/mounted/data.",
                "type": "string",
                "required": True,
                "readOnly": False,
            },
            "site": {
                "title": "Site id",
                "description": "Site id stored with every indexed series; use the export's "
                               "mapping.yaml site.",
                "type": "string",
                "required": True,
                "readOnly": False,
            },
            "index_prefix": {
                "title": "Index prefix",
                "description": "Prefix of srcohort's own OpenSearch indices "
                               "(<prefix>srcohort-series, <prefix>srcohort-patients); "
                               "Kaapana's project indices are never changed.",
                "type": "string",
                "default": SrcohortIndexOperator.defaults["index_prefix"],
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

dag = DAG(dag_id="srcohort-convert-index", default_args=args, schedule=None, catchup=False,
          tags=["srcohort"])

convert = SrcohortConvertOperator(dag=dag)
index = SrcohortIndexOperator(dag=dag, input_operator=convert)
convert >> index

if LocalWorkflowCleanerOperator is not None:
    # Keep the run folder: the index refers to the converted files by their path in it.
    index >> LocalWorkflowCleanerOperator(dag=dag, clean_workflow_dir=False)
