"""Kaapana service workflow ``srcohort-index-on-arrival``: index series as they arrive.

Triggered by Kaapana's incoming pipeline (LocalAutoTriggerOperator) through
``srcohort_trigger_rule.json`` beside this file, for SR, SEG, ECG and CT series; the trigger
copies each series into this run (``fetch_method: copy``) below the LocalGetInputDataOperator
folder. Such a run carries no project_form, so the ``index`` step runs in the services
namespace and files each series under the project CTP recorded in it (0012,0020).

(An Airflow DAG file: Airflow's DAG discovery looks for that word.)
"""

from __future__ import annotations

from kaapana.blueprints.kaapana_global_variables import SERVICES_NAMESPACE
from kaapana.operators.LocalGetInputDataOperator import LocalGetInputDataOperator

from srcohort_workflow.forms import cleaner, srcohort_dag
from srcohort_workflow.SrcohortOperator import SrcohortOperator

dag = srcohort_dag("srcohort-index-on-arrival", {"data_form": {}}, ui_visible=False)

get_input = LocalGetInputDataOperator(dag=dag)
index = SrcohortOperator(dag=dag, step="index", input_operator=get_input, namespace=SERVICES_NAMESPACE)
get_input >> index >> cleaner(dag)
