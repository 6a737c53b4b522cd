"""Stand-in for KP/operators/LocalVolumeMountOperator.py (Kaapana 0.6.0), actions ``get`` and
``remove`` on the uploads volume (``/kaapana/app/uploads``: the harness' uploads folder): the
files named in ``data_form.action_files`` with a whitelisted ending are copied to
``<airflow workflow dir>/<run id>/<operator_out_dir>/`` or removed; nothing processed fails."""

import os
import shutil
from pathlib import Path

from kaapana.harness import config
from kaapana.operators.KaapanaPythonBaseOperator import KaapanaPythonBaseOperator

UPLOADS = "/kaapana/app/uploads"


class LocalVolumeMountOperator(KaapanaPythonBaseOperator):
    def __init__(self, dag, mount_path, action, whitelisted_file_endings, name=None,
                 keep_directory_structure=False, action_files=None, **kwargs):
        assert action in ("get", "remove")
        assert mount_path == UPLOADS
        self.action = action
        self.whitelisted = whitelisted_file_endings or ()
        self.action_files = action_files or []
        super().__init__(dag=dag, name=name or f"{action}-mounted-files",
                         python_callable=self.start, **kwargs)

    def start(self, **kwargs):
        conf = kwargs["dag_run"].conf
        files = self.action_files or conf.get("data_form", {}).get("action_files", [])
        source = Path(config()["uploads"])
        processed = []
        for name in os.listdir(source):
            if name not in files or not name.lower().endswith(self.whitelisted):
                continue
            if self.action == "get":
                target = Path(self.airflow_workflow_dir, kwargs["dag_run"].run_id,
                              self.operator_out_dir, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / name, target)
            else:
                (source / name).unlink()
            processed.append(name)
        if not processed:
            raise AssertionError("No files have been processed!")
