"""Kaapana workflow ``srcohort-import``: a site-export zip from Data Upload into the PACS.

Listed by Data Upload (tag ``import``, ``schema_upload_form`` like Kaapana's
import-dicoms-from-data-upload). The zip is copied from the uploads volume into the run, then
the ``import`` step (services namespace, where that copy is visible) unpacks it safely,
converts it, sends every object it wrote to the platform's DICOM receiver filed under the
project and the dataset named in the form, and puts the conversion report and the quarantine
into the project bucket (``srcohort/imports/<run id>/``). Kaapana's incoming pipeline then adds
the objects to the project index, the dataset and the gallery, and srcohort-index-on-arrival
indexes them.
"""

from __future__ import annotations

from airflow.operators.python import BranchPythonOperator
from kaapana.blueprints.json_schema_templates import schema_upload_form
from kaapana.blueprints.kaapana_global_variables import SERVICES_NAMESPACE
from kaapana.operators.LocalVolumeMountOperator import LocalVolumeMountOperator

from srcohort_workflow.forms import cleaner, field, srcohort_dag, study_field
from srcohort_workflow.SrcohortOperator import SrcohortOperator

UPLOADS = "/kaapana/app/uploads"

dag = srcohort_dag("srcohort-import", {
    **schema_upload_form(whitelisted_file_formats=(".zip",)),
    "workflow_form": {"type": "object", "properties": {
        "dataset": field("Dataset name", "Kaapana dataset the converted objects are filed "
                         "under (at most 13 characters: the DICOM calling AE title is "
                         "kp-<dataset>).", default="srcohort", required=True),
        "delete_original_file": field("Delete the zip from Data Upload after the import?",
                                      "The converted objects stay in the PACS.",
                                      default=True, kind="boolean"),
        "study": study_field(),
    }},
}, tags=("import",))

scope = SrcohortOperator(dag=dag, step="project-scope", namespace=SERVICES_NAMESPACE)
get_upload = LocalVolumeMountOperator(dag=dag, mount_path=UPLOADS, action="get",
                                      keep_directory_structure=False, name="get-upload",
                                      whitelisted_file_endings=(".zip",),
                                      trigger_rule="none_failed", operator_out_dir="upload")
convert_and_send = SrcohortOperator(dag=dag, step="import", input_operator=get_upload,
                                    namespace=SERVICES_NAMESPACE,
                                    labels={"network-access-ctp": "true"})
remove_upload = LocalVolumeMountOperator(dag=dag, mount_path=UPLOADS, action="remove",
                                         name="remove-upload",
                                         whitelisted_file_endings=(".zip",),
                                         trigger_rule="none_failed")
clean = cleaner(dag)


def _after_import(**kwargs) -> list[str]:
    form = kwargs["dag_run"].conf.get("workflow_form") or {}
    return [remove_upload.task_id if form.get("delete_original_file", True) else clean.task_id]


branch = BranchPythonOperator(task_id="delete-upload-or-not", python_callable=_after_import,
                              dag=dag)

scope >> get_upload >> convert_and_send >> branch
branch >> remove_upload >> clean
branch >> clean
