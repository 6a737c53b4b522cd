"""Stand-in for KP/operators/LocalGetInputDataOperator.py (Kaapana 0.6.0) in a run started by
LocalAutoTriggerOperator with ``fetch_method: copy``: that trigger has copied each incoming
series to ``<airflow workflow dir>/<run id>/batch/<SeriesInstanceUID>/<this operator's dir>``,
and the operator finds no data_form and leaves the data as it is. The harness plays the trigger:
it copies the series staged in the ``incoming`` folder of its config into that place."""

import shutil
from pathlib import Path

from kaapana.harness import config
from kaapana.operators.KaapanaPythonBaseOperator import KaapanaPythonBaseOperator


class LocalGetInputDataOperator(KaapanaPythonBaseOperator):
    def __init__(self, dag, name="get-input-data", **kwargs):
        super().__init__(dag=dag, name=name, python_callable=self.start, **kwargs)

    def start(self, **kwargs):
        conf = kwargs["dag_run"].conf or {}
        assert "data_form" not in conf, "only the trigger's copy is played here"
        batch = Path(self.airflow_workflow_dir, kwargs["dag_run"].run_id, self.batch_name)
        for series in sorted(Path(config()["incoming"]).iterdir()):
            shutil.copytree(series, batch / series.name / self.operator_out_dir)
