"""Kaapana workflows ``srcohort-export`` (a dataset) and ``srcohort-export-cohort`` (a cohort).

Both de-identify the selection with the project's pseudonym secret, verify the export for PHI
and put it zipped into the project bucket (``srcohort/exports/<run id>/``). From a dataset
(the Datasets view), GetInputOperator fetches its series and the export takes the patients who
have them; from a cohort (saved or YAML), the step fetches what it needs by WADO-RS. Both run
in the project's namespace with the project user's token.

(An Airflow DAG file: Airflow's DAG discovery looks for that word.)
"""

from __future__ import annotations

from kaapana.blueprints.kaapana_global_variables import SERVICES_NAMESPACE
from kaapana.operators.GetInputOperator import GetInputOperator

from srcohort_workflow.forms import cleaner, cohort_field, field, srcohort_dag, study_field
from srcohort_workflow.SrcohortOperator import SrcohortOperator

EXPORT_FIELDS = {
    "output_format": field("Output format", "unified (NIfTI, ECG arrays, Parquet, Croissant "
                           "card), dicom (de-identified DICOM) or both.", default="unified",
                           choices=("unified", "dicom", "both")),
    "split": field("Train/val/test split", "Fractions, e.g. 70/15/15; each patient's split "
                   "is stable across re-exports.", default="70/15/15"),
    "study": study_field(),
}

dag = srcohort_dag("srcohort-export", {
    "workflow_form": {"type": "object", "properties": EXPORT_FIELDS},
})
scope = SrcohortOperator(dag=dag, step="project-scope", namespace=SERVICES_NAMESPACE)
get_input = GetInputOperator(dag=dag)
export = SrcohortOperator(dag=dag, step="export", input_operator=get_input, pseudonym_secret=True)
scope >> get_input >> export >> cleaner(dag)

cohort_dag = srcohort_dag("srcohort-export-cohort", {
    "data_form": {},
    "workflow_form": {"type": "object", "properties": {
        "cohort": cohort_field(),
        **EXPORT_FIELDS,
    }},
})
cohort_scope = SrcohortOperator(dag=cohort_dag, step="project-scope", namespace=SERVICES_NAMESPACE)
cohort_export = SrcohortOperator(dag=cohort_dag, step="export", pseudonym_secret=True)
cohort_scope >> cohort_export >> cleaner(cohort_dag)
