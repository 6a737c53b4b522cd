"""Stand-in for KP/operators/GetInputOperator.py and its container
(get-input/files/get_input.py, Kaapana 0.6.0): the series of ``data_form.identifiers`` (at
most ``dataset_limit``) downloaded into ``$WORKFLOW_DIR/batch/<SeriesInstanceUID>/
<operator_out_dir>/`` of the project's volume. Kaapana reads them through dicom-web-filter,
which serves a project only the series filed under it; here the PACS (Orthanc) is asked
directly and a series is served only if it was stored with the called AE ``kp-<project>``."""

import json
import urllib.request

from airflow.exceptions import AirflowException

from kaapana.harness import config, volume
from kaapana.operators.KaapanaBaseOperator import KaapanaBaseOperator


class GetInputOperator(KaapanaBaseOperator):
    def __init__(self, dag, name="get-input-data", data_type="dicom", **kwargs):
        super().__init__(dag=dag, name=name, image="get-input", **kwargs)

    def run_pod(self, context):
        conf = context["dag_run"].conf or {}
        project = conf["project_form"]
        data_form = conf.get("data_form") or {}
        identifiers = list(data_form.get("identifiers") or [])
        if data_form.get("dataset_limit"):
            identifiers = identifiers[:int(data_form["dataset_limit"])]
        if not identifiers:
            raise AirflowException("No metadata found for identifiers=[]")
        pacs = config()["pacs"]
        batch = volume(self.namespace) / context["run_id"] / self.batch_name
        for uid in identifiers:
            found = _post(f"{pacs}/tools/lookup", uid)
            series = [f for f in found if f["Type"] == "Series"]
            if not series:
                raise AirflowException(f"Some series could not be downloaded: {uid}")
            instances = _get(f"{pacs}/series/{series[0]['ID']}/instances")
            called = {_get(f"{pacs}/instances/{i['ID']}/metadata?expand").get("CalledAET")
                      for i in instances}
            if called != {f"kp-{project['name']}"}:
                raise AirflowException(f"Some series could not be downloaded: {uid}")
            target = batch / uid / self.operator_out_dir
            target.mkdir(parents=True, exist_ok=True)
            for instance in instances:
                with urllib.request.urlopen(f"{pacs}/instances/{instance['ID']}/file") as answer:
                    (target / f"{instance['ID']}.dcm").write_bytes(answer.read())


def _get(url):
    with urllib.request.urlopen(url) as answer:
        return json.loads(answer.read())


def _post(url, data):
    request = urllib.request.Request(url, data=data.encode(), method="POST")
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())
