"""Stand-in for KP/operators/KaapanaBaseOperator.py of Kaapana 0.6.0 (test-only).

Kept from Kaapana's class, as srcohort's operators and DAGs see it:

* constructor: ``name`` is the task id, ``operator_out_dir`` defaults to it, ``input_operator``
  gives ``operator_in_dir``; ``ram_mem_mb`` (500), ``ram_mem_mb_lmt`` (request + 100),
  ``cpu_millicores`` (limit + 100m) become the pod's resources; the pod environment starts
  with SERVICES_NAMESPACE, ADMIN_NAMESPACE, then KEYCLOAK_URL, KUBE_HELM_URL, OPENSEARCH_URL,
  DICOM_WEB_FILTER_URL, NOTIFICATION_URL, AII_URL, KAAPANA_BACKEND_URL, MINIO_URL from the
  Airflow process, OPERATOR_IN_DIR, then the operator's ``env_vars``;
* ``execute``: every ``workflow_form`` key upper-cased as ``str``, then RUN_ID, DAG_ID,
  TASK_ID, WORKFLOW_DIR (``/kaapana/mounted/data/<run_id>``), BATCH_NAME, OPERATOR_OUT_DIR,
  BATCHES_INPUT_DIR; the namespace from ``project_form.kubernetes_namespace`` (else
  ``project-admin``) unless given; the run conf as ``<WORKFLOW_DIR>/conf/conf.json``; the
  volumes of ``set_volumes_and_volume_mounts`` (the namespace's workflow-data claim at
  /kaapana/mounted/data); ``set_env_secrets`` (project-user-credentials, or the system user in
  the services namespace, and oidc-client-secret); ``delete_output_on_start``; a failed
  container fails the task.

The pod itself is run by tests/platform/pods.py instead of Kubernetes.
"""

import glob
import json
import os
import shutil
from datetime import timedelta

from airflow.exceptions import AirflowException
from airflow.models import BaseOperator
from kubernetes import client

from kaapana.blueprints.kaapana_global_variables import (ADMIN_NAMESPACE, AIRFLOW_WORKFLOW_DIR,
                                                         BATCH_NAME, PROCESSING_WORKFLOW_DIR,
                                                         SERVICES_NAMESPACE)
from kaapana.harness import volume
from tests.platform.pods import run_pod


class KaapanaBaseOperator(BaseOperator):
    def __init__(self, dag, name, image=None, input_operator=None, operator_in_dir=None,
                 operator_out_dir=None, task_id=None, ram_mem_mb=500, ram_mem_mb_lmt=None,
                 cpu_millicores=None, cpu_millicores_lmt=None, gpu_mem_mb=None,
                 retries=1, execution_timeout=timedelta(minutes=90),
                 allow_federated_learning=False, whitelist_federated_learning=None,
                 delete_output_on_start=True, batch_name=None, cmds=None, arguments=None,
                 env_vars=None, image_pull_secrets=None, namespace=None, labels=None,
                 secrets=None, trigger_rule="all_success", **kwargs):
        if input_operator is not None and operator_in_dir is not None:
            raise NameError("You need to define either input_operator or operator_in_dir!")
        self.name = name
        self.image = image
        self.operator_out_dir = operator_out_dir or task_id or name
        if input_operator is not None:
            self.operator_in_dir = input_operator.operator_out_dir
        elif operator_in_dir is not None:
            self.operator_in_dir = operator_in_dir
        self.ram_mem_mb, self.ram_mem_mb_lmt = ram_mem_mb, ram_mem_mb_lmt
        self.cpu_millicores, self.cpu_millicores_lmt = cpu_millicores, cpu_millicores_lmt
        self.allow_federated_learning = allow_federated_learning
        self.whitelist_federated_learning = whitelist_federated_learning
        self.delete_output_on_start = (delete_output_on_start
                                       and not allow_federated_learning)
        self.batch_name = batch_name or BATCH_NAME
        self.airflow_workflow_dir = AIRFLOW_WORKFLOW_DIR
        self.cmds = [cmds] if isinstance(cmds, str) else (cmds or [])
        self.arguments = [arguments] if isinstance(arguments, str) else (arguments or [])
        self.image_pull_secrets = image_pull_secrets or []
        self.namespace = namespace
        self.labels = {**(labels or {}), "kaapana.ai/type": "processing-container"}
        self.secrets = secrets or []
        self.volumes, self.volume_mounts = [], []
        self.pod_resources = {
            "limits": {"cpu": f"{cpu_millicores + 100}m" if cpu_millicores is not None
                       else None,
                       "memory": f"{ram_mem_mb_lmt if ram_mem_mb_lmt is not None else ram_mem_mb + 100}Mi"},
            "requests": {"cpu": f"{cpu_millicores}m" if cpu_millicores is not None else None,
                         "memory": f"{ram_mem_mb}Mi"}}
        envs = {"SERVICES_NAMESPACE": str(SERVICES_NAMESPACE),
                "ADMIN_NAMESPACE": str(ADMIN_NAMESPACE)}
        envs.update({key: os.environ[key] for key in (
            "KEYCLOAK_URL", "KUBE_HELM_URL", "OPENSEARCH_URL", "DICOM_WEB_FILTER_URL",
            "NOTIFICATION_URL", "AII_URL", "KAAPANA_BACKEND_URL", "MINIO_URL")})
        if hasattr(self, "operator_in_dir"):
            envs["OPERATOR_IN_DIR"] = str(self.operator_in_dir)
        envs.update(env_vars or {})
        self.env_vars = envs
        super().__init__(dag=dag, task_id=task_id or name, retries=retries,
                         execution_timeout=execution_timeout, trigger_rule=trigger_rule,
                         **kwargs)

    def set_volumes_and_volume_mounts(self):
        self.volumes.append(client.V1Volume(
            name="workflowdata", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                claim_name="workflow-data-pv-claim", read_only=False)))
        self.volume_mounts.append(client.V1VolumeMount(
            name="workflowdata", mount_path=PROCESSING_WORKFLOW_DIR, read_only=False))

    def set_env_secrets(self):
        password = client.V1EnvVar(name="KAAPANA_PROJECT_USER_PASSWORD",
                                   value_from=client.V1EnvVarSource(
                                       secret_key_ref=client.V1SecretKeySelector(
                                           name="project-user-credentials",
                                           key="project-user-password")))
        username = client.V1EnvVar(name="KAAPANA_PROJECT_USER_NAME",
                                   value_from=client.V1EnvVarSource(
                                       secret_key_ref=client.V1SecretKeySelector(
                                           name="project-user-credentials",
                                           key="project-user")))
        if self.namespace == SERVICES_NAMESPACE:
            username = client.V1EnvVar(name="KAAPANA_PROJECT_USER_NAME", value="system")
            password = client.V1EnvVar(name="KAAPANA_PROJECT_USER_PASSWORD",
                                       value_from=client.V1EnvVarSource(
                                           secret_key_ref=client.V1SecretKeySelector(
                                               name="system-user-password",
                                               key="system-user-password")))
        secret = client.V1EnvVar(name="KAAPANA_CLIENT_SECRET", value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name="oidc-client-secret",
                                                      key="oidc-client-secret")))
        self.secrets.extend([password, username, secret])

    def execute(self, context):
        conf = context["dag_run"].conf or {}
        for key, value in (conf.get("workflow_form") or {}).items():
            self.env_vars[key.upper()] = str(value)
        run_id = context["run_id"]
        self.env_vars.update({
            "RUN_ID": context["dag_run"].run_id, "DAG_ID": context["dag_run"].dag_id,
            "TASK_ID": context["task_instance"].task_id,
            "WORKFLOW_DIR": f"{PROCESSING_WORKFLOW_DIR}/{run_id}",
            "BATCH_NAME": str(self.batch_name), "OPERATOR_OUT_DIR": str(self.operator_out_dir),
            "BATCHES_INPUT_DIR": f"{PROCESSING_WORKFLOW_DIR}/{run_id}/{self.batch_name}"})
        project_form = context.get("params", {}).get("project_form")
        if self.namespace is None:
            self.namespace = (project_form.get("kubernetes_namespace")
                              if project_form and project_form.get("kubernetes_namespace")
                              else "project-admin")
        conf_file = volume(self.namespace) / run_id / "conf" / "conf.json"
        conf_file.parent.mkdir(parents=True, exist_ok=True)
        conf_file.write_text(json.dumps(conf, indent=4, sort_keys=True), "utf-8")
        self.set_volumes_and_volume_mounts()
        self.set_env_secrets()
        if self.delete_output_on_start:
            run_dir = os.path.join(self.airflow_workflow_dir, run_id)
            for element in glob.glob(os.path.join(run_dir, self.batch_name, "*")):
                shutil.rmtree(os.path.join(element, self.operator_out_dir), ignore_errors=True)
            shutil.rmtree(os.path.join(run_dir, self.operator_out_dir), ignore_errors=True)
        return self.run_pod(context)

    def run_pod(self, context):
        code = run_pod(task=f"{context['run_id']}-{self.task_id}", image=self.image,
                       namespace=self.namespace, env=self.env_vars, secrets=self.secrets,
                       volumes=self.volumes, mounts=self.volume_mounts, labels=self.labels,
                       resources=self.pod_resources)
        if code != 0:
            raise AirflowException(f"Processing container failed for task {self.task_id}!")
