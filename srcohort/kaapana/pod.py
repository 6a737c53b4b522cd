"""What a Kaapana 0.6 processing pod is given, read in one place.

``KaapanaBaseOperator`` (Kaapana 0.6.0,
``data-processing/kaapana-plugin/extension/docker/files/plugin/kaapana/operators/
KaapanaBaseOperator.py``) starts every step as a pod and hands it

* from the Airflow process: ``SERVICES_NAMESPACE``, ``ADMIN_NAMESPACE``, ``KEYCLOAK_URL``,
  ``OPENSEARCH_URL`` (``host:port``, no scheme), ``DICOM_WEB_FILTER_URL``, ``AII_URL``,
  ``KAAPANA_BACKEND_URL``, ``MINIO_URL``, ...;
* the operator's ``env_vars``, then every ``workflow_form`` key upper-cased (as ``str``), then
  ``RUN_ID``, ``DAG_ID``, ``TASK_ID``, ``WORKFLOW_DIR``, ``BATCH_NAME``, ``OPERATOR_OUT_DIR``,
  ``BATCHES_INPUT_DIR`` (and ``OPERATOR_IN_DIR`` when the step has an input);
* from Secrets (``set_env_secrets``): ``KAAPANA_PROJECT_USER_NAME`` and ``_PASSWORD`` (the
  project's user, or ``system`` in the services namespace) and ``KAAPANA_CLIENT_SECRET``;
* the whole run conf as ``$WORKFLOW_DIR/conf/conf.json`` (ConfigMap ``<run_id>-config``).

Steps read settings from ``conf.json`` (typed, as the UI sent them) rather than from the
upper-cased strings, and never take a credential from it: the run conf is stored by Airflow
and shown in its UI.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from srcohort.kaapana.errors import KaapanaError

# Kaapana's access-information-interface accepts a project name only if ``project-<name>`` is a
# Kubernetes namespace and a bucket name (AII projects/schemas.py, CreateProject validator).
PROJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Project:
    """A Kaapana project as ``project_form`` (and the AII's ``/projects``) describe it."""

    id: str
    name: str
    opensearch_index: str
    s3_bucket: str
    kubernetes_namespace: str

    @classmethod
    def from_form(cls, form: Mapping[str, Any] | None) -> Project:
        """The project of a run conf's ``project_form``; every field is required."""
        if not form:
            raise KaapanaError("the run conf has no project_form: start the workflow from a "
                               "project in Kaapana's UI")
        missing = [key for key in ("id", "name", "s3_bucket") if not form.get(key)]
        if missing:
            raise KaapanaError(f"project_form lacks {', '.join(missing)}")
        name = str(form["name"])
        if not PROJECT_NAME.match(name):
            raise KaapanaError(f"project_form.name {name!r} is not a Kaapana project name")
        return cls(id=str(form["id"]), name=name,
                   opensearch_index=str(form.get("opensearch_index") or f"project_{name}"),
                   s3_bucket=str(form["s3_bucket"]),
                   kubernetes_namespace=str(form.get("kubernetes_namespace")
                                            or f"project-{name}"))

    def header(self) -> str:
        """The ``Project`` header Kaapana's backend reads (kaapana-backend dependencies.py)."""
        return json.dumps({"id": self.id, "name": self.name,
                           "opensearch_index": self.opensearch_index,
                           "s3_bucket": self.s3_bucket,
                           "kubernetes_namespace": self.kubernetes_namespace})


@dataclass(frozen=True)
class Pod:
    """The environment and run conf of one processing pod."""

    env: Mapping[str, str]

    @classmethod
    def from_environ(cls) -> Pod:
        return cls(dict(os.environ))

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name)
        return value if value not in (None, "") else default

    def require(self, name: str, why: str) -> str:
        """An environment variable Kaapana must have set; its absence is a deployment fault."""
        value = self.get(name)
        if value is None:
            raise KaapanaError(f"${name} is not set: {why}")
        return value

    @property
    def workflow_dir(self) -> Path:
        return Path(self.require("WORKFLOW_DIR", "KaapanaBaseOperator sets it for every step"))

    @property
    def out_dir(self) -> Path:
        out = self.workflow_dir / self.require("OPERATOR_OUT_DIR", "set by KaapanaBaseOperator")
        out.mkdir(parents=True, exist_ok=True)
        return out

    @property
    def in_dir(self) -> Path:
        """The batch-level output of the input operator (``$WORKFLOW_DIR/$OPERATOR_IN_DIR``)."""
        return self.workflow_dir / self.require("OPERATOR_IN_DIR",
                                                "the step needs an input operator")

    def batch_inputs(self) -> list[Path]:
        """Per-series input folders, ``$WORKFLOW_DIR/$BATCH_NAME/<series>/$OPERATOR_IN_DIR``,
        the layout GetInputOperator (get-input/files/get_input.py) writes."""
        operator_dir = self.require("OPERATOR_IN_DIR", "the step needs an input operator")
        batch = self.workflow_dir / (self.get("BATCH_NAME") or "batch")
        return sorted(path for path in batch.glob(f"*/{operator_dir}") if path.is_dir())

    @cached_property
    def conf(self) -> dict[str, Any]:
        path = self.workflow_dir / "conf" / "conf.json"
        try:
            conf = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise KaapanaError(f"no run conf at {path}: KaapanaBaseOperator mounts it from the "
                               f"ConfigMap <run_id>-config") from None
        except json.JSONDecodeError as exc:
            raise KaapanaError(f"run conf {path} is not JSON: {exc}") from None
        if not isinstance(conf, dict):
            raise KaapanaError(f"run conf {path} is not a JSON object")
        return conf

    def form(self, name: str) -> dict[str, Any]:
        value = self.conf.get(name) or {}
        if not isinstance(value, dict):
            raise KaapanaError(f"run conf: {name} is not an object")
        return value

    def setting(self, key: str, default: Any = None) -> Any:
        """``workflow_form[key]`` as sent, else the operator's default (its env var), else
        ``default``. Empty values count as absent, as an untouched UI field is."""
        value = self.form("workflow_form").get(key)
        if value in (None, ""):
            value = self.get(key.upper(), default)
        return value

    @property
    def project(self) -> Project:
        return Project.from_form(self.form("project_form"))

    @property
    def services_namespace(self) -> str:
        return self.get("SERVICES_NAMESPACE") or "services"
