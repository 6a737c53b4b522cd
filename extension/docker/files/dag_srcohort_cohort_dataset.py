"""Kaapana workflow ``srcohort-cohort-to-dataset``: a cohort becomes a Kaapana dataset.

The ``dataset`` step runs the cohort against the project's srcohort indices and writes the
series of its patients as a Kaapana dataset of the project, through the backend (which the
project namespaces cannot reach, hence the services namespace). The gallery shows the dataset
and every workflow, srcohort-export included, can start on it.

(An Airflow DAG file: Airflow's DAG discovery looks for that word.)
"""

from __future__ import annotations

from kaapana.blueprints.kaapana_global_variables import SERVICES_NAMESPACE

from srcohort_workflow.forms import cleaner, cohort_field, field, srcohort_dag, study_field
from srcohort_workflow.SrcohortOperator import SrcohortOperator

dag = srcohort_dag("srcohort-cohort-to-dataset", {
    "data_form": {},
    "workflow_form": {"type": "object", "properties": {
        "cohort": cohort_field(),
        "study": study_field(),
        "dataset": field("Dataset name", "Name of the Kaapana dataset to write (default: the "
                         "cohort's name); an existing dataset of that name is replaced."),
    }},
})

scope = SrcohortOperator(dag=dag, step="project-scope", namespace=SERVICES_NAMESPACE)
dataset = SrcohortOperator(dag=dag, step="dataset", namespace=SERVICES_NAMESPACE)
scope >> dataset >> cleaner(dag)
