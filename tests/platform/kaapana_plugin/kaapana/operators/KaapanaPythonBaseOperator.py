"""Stand-in for KP/operators/KaapanaPythonBaseOperator.py (Kaapana 0.6.0): a PythonOperator
whose task id is its ``name``, with the run folder of Airflow's side."""

from airflow.operators.python import PythonOperator

from kaapana.blueprints.kaapana_global_variables import AIRFLOW_WORKFLOW_DIR, BATCH_NAME


class KaapanaPythonBaseOperator(PythonOperator):
    def __init__(self, dag, name, python_callable, operator_out_dir=None, input_operator=None,
                 batch_name=None, **kwargs):
        self.name = name
        self.operator_out_dir = operator_out_dir or name
        if input_operator is not None:
            self.operator_in_dir = input_operator.operator_out_dir
        self.batch_name = batch_name or BATCH_NAME
        self.airflow_workflow_dir = AIRFLOW_WORKFLOW_DIR
        super().__init__(dag=dag, task_id=name, python_callable=python_callable, **kwargs)
