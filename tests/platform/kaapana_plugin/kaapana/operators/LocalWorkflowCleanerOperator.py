"""Stand-in for KP/operators/LocalWorkflowCleanerOperator.py (Kaapana 0.6.0): with
``clean_workflow_dir`` the run's folder on Airflow's side is removed."""

import shutil
from pathlib import Path

from kaapana.operators.KaapanaPythonBaseOperator import KaapanaPythonBaseOperator


class LocalWorkflowCleanerOperator(KaapanaPythonBaseOperator):
    def __init__(self, dag, run_dir=None, clean_workflow_dir=True, **kwargs):
        self.clean_workflow_dir = clean_workflow_dir
        super().__init__(dag=dag, name="workflow-cleaner", python_callable=self.start, **kwargs)

    def start(self, **kwargs):
        if self.clean_workflow_dir:
            shutil.rmtree(Path(self.airflow_workflow_dir, kwargs["dag_run"].run_id),
                          ignore_errors=True)
