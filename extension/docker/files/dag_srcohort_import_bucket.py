"""Kaapana workflow ``srcohort-import-from-bucket``: a site-export zip from the project bucket.

The same ``import`` step as srcohort-import, for zips a project member put into the project's
bucket (Kaapana's Store view, MinIO): ``bucket_object`` names them (keys, comma-separated).

(An Airflow DAG file: Airflow's DAG discovery looks for that word.)
"""

from __future__ import annotations

from kaapana.blueprints.kaapana_global_variables import SERVICES_NAMESPACE

from srcohort_workflow.forms import cleaner, field, srcohort_dag, study_field
from srcohort_workflow.SrcohortOperator import SrcohortOperator

dag = srcohort_dag("srcohort-import-from-bucket", {
    "data_form": {},
    "workflow_form": {"type": "object", "properties": {
        "bucket_object": field("Zip in the project bucket", "Key of the site-export zip in "
                               "the project bucket, e.g. uploads/site-01.zip (several: "
                               "separate them by commas).", required=True),
        "dataset": field("Dataset name", "Kaapana dataset the converted objects are filed "
                         "under (at most 13 characters).", default="srcohort", required=True),
        "study": study_field(),
    }},
})

scope = SrcohortOperator(dag=dag, step="project-scope", namespace=SERVICES_NAMESPACE)
convert_and_send = SrcohortOperator(dag=dag, step="import", namespace=SERVICES_NAMESPACE,
                                    labels={"network-access-ctp": "true"})
scope >> convert_and_send >> cleaner(dag)
