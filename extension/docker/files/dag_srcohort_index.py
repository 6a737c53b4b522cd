"""Kaapana workflow ``srcohort-index``: a dataset's series -> the project's srcohort indices.

Started from the Datasets view (no ``data_form``: Kaapana adds its dataset picker).
GetInputOperator fetches the series from the PACS into the run; the ``index`` step, in the
project's namespace with the project user's token, indexes them with their UIDs and PACS
address into ``<prefix><project>-series`` / ``-patients``.

(An Airflow DAG file: Airflow's DAG discovery looks for that word.)
"""

from __future__ import annotations

from kaapana.blueprints.kaapana_global_variables import SERVICES_NAMESPACE
from kaapana.operators.GetInputOperator import GetInputOperator

from srcohort_workflow.forms import cleaner, srcohort_dag, study_field
from srcohort_workflow.SrcohortOperator import SrcohortOperator

dag = srcohort_dag("srcohort-index", {
    "workflow_form": {"type": "object", "properties": {"study": study_field()}},
})

scope = SrcohortOperator(dag=dag, step="project-scope", namespace=SERVICES_NAMESPACE)
get_input = GetInputOperator(dag=dag)
index = SrcohortOperator(dag=dag, step="index", input_operator=get_input)
scope >> get_input >> index >> cleaner(dag)
