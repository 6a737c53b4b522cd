"""The base of every srcohort operator, chosen once at import: Kaapana's container or in-process.

Inside Kaapana (``kaapana.operators`` importable) a step runs the ``srcohort`` processing
container, because Kaapana's Airflow image carries neither srcohort nor its DICOM stack. Anywhere
else (a plain Airflow, the tests) the same step runs in the worker by calling srcohort's functions,
so no Kubernetes is needed. An operator therefore declares its step twice, in one class:

* ``script``: the shell lines the container runs. They read what Kaapana puts into every
  container's environment (WORKFLOW_DIR, OPERATOR_IN_DIR, OPERATOR_OUT_DIR, RUN_ID and each
  ``workflow_form`` key upper-cased). Kaapana up to 0.5 starts a pod with ``cmds``/``arguments``;
  0.6 ignores both and runs the image's entrypoint, so the script also travels as the environment
  variable ``SRCOHORT_SCRIPT`` for an entrypoint to run.
* ``run_step``: the same step in-process, returning a small JSON-able dict of counts for XCom.

Both lay data out like Kaapana: ``<workflow dir>/<run_id>/<operator_out_dir>``. Only settings
from the run conf's ``workflow_form`` are read; ``data_form`` (Kaapana datasets) and
``project_form`` do not apply, since srcohort keeps its own indices, named by ``index_prefix``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.exceptions import AirflowException
from airflow.models import BaseOperator

if TYPE_CHECKING:
    from airflow.utils.context import Context
    from opensearchpy import OpenSearch

try:
    from kaapana.blueprints.kaapana_global_variables import DEFAULT_REGISTRY, KAAPANA_BUILD_VERSION
    from kaapana.operators.KaapanaBaseOperator import KaapanaBaseOperator
    from kaapana.operators.LocalWorkflowCleanerOperator import LocalWorkflowCleanerOperator
except ImportError:
    KaapanaBaseOperator = None
    LocalWorkflowCleanerOperator = None

IN_KAAPANA = KaapanaBaseOperator is not None
CONTAINER_IMAGE = "srcohort"
# srcohort.index.mapping.DEFAULT_PREFIX, repeated because Kaapana's Airflow has no srcohort
# package to import it from (tests/test_airflow_dags.py checks they agree).
INDEX_PREFIX = "srcohort-"


def workflow_dir() -> Path:
    """Where in-process runs keep their data: ``$SRCOHORT_WORKFLOW_DIR`` or below AIRFLOW_HOME.

    Converted files stay there after the run, because the index refers to them by path.
    """
    from airflow.configuration import AIRFLOW_HOME
    return Path(os.environ.get("SRCOHORT_WORKFLOW_DIR") or Path(AIRFLOW_HOME, "srcohort-workflows"))


def opensearch_client() -> OpenSearch:
    """A client configured from the environment, the way the ``srcohort`` CLI is.

    ``OPENSEARCH_URL`` (default the local server); optional ``SRCOHORT_OPENSEARCH_CA_CERTS``,
    ``SRCOHORT_OPENSEARCH_USERNAME`` with ``SRCOHORT_OPENSEARCH_PASSWORD``, or a bearer token in
    ``SRCOHORT_OPENSEARCH_TOKEN``. Credentials never pass through the run conf, which the UI shows.
    """
    from srcohort.index.connection import DEFAULT_URL, connect
    env = os.environ.get
    return connect(env("OPENSEARCH_URL", DEFAULT_URL), ca_certs=env("SRCOHORT_OPENSEARCH_CA_CERTS"),
                   username=env("SRCOHORT_OPENSEARCH_USERNAME"),
                   password=env("SRCOHORT_OPENSEARCH_PASSWORD"),
                   token=env("SRCOHORT_OPENSEARCH_TOKEN"))


def run_actor(step: BaseOperator, settings: dict[str, Any], out_dir: Path) -> Any:
    """Who runs an in-process step, for srcohort's audit log and release ledger: the form's
    ``username`` (Kaapana puts the user who started the workflow there), this DAG and the run
    (the run folder ``<workflow dir>/<run_id>/<step>`` is named after it)."""
    from srcohort.audit.actor import Actor
    return Actor.of_run(settings, step.dag_id, out_dir.parent.name)


def required(settings: dict[str, Any], key: str) -> str:
    """A ``workflow_form`` value the step cannot run without, as a non-empty string."""
    value = str(settings.get(key) or "").strip()
    if not value:
        raise AirflowException(f"workflow_form.{key} is required")
    return value


class _Step:
    """What every srcohort step declares, whichever runtime executes it."""

    step_name: ClassVar[str]
    script: ClassVar[str]
    # Optional workflow_form fields and their defaults (the DAGs' forms show the same values).
    defaults: ClassVar[dict[str, str]] = {}
    needs_input: ClassVar[bool] = False

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        """Run the step in-process; ``settings`` = ``defaults`` overlaid by the workflow_form."""
        raise NotImplementedError

    def container_secrets(self) -> list[Any]:
        """Kubernetes ``V1EnvVar`` entries taken from Secrets, for steps that need a secret."""
        return []

    @classmethod
    def _check_input(cls, input_operator: Any, operator_in_dir: str | None) -> None:
        if cls.needs_input and input_operator is None and operator_in_dir is None:
            raise ValueError(f"{cls.__name__} reads the output of another step: "
                             f"pass input_operator (or operator_in_dir)")


if KaapanaBaseOperator is not None:
    class SrcohortStep(_Step, KaapanaBaseOperator):
        """Run the step's ``script`` in the ``srcohort`` processing container."""

        def __init__(self, dag: Any = None, name: str | None = None, *,
                     input_operator: Any = None, operator_in_dir: str | None = None,
                     env_vars: dict[str, str] | None = None, **kwargs: Any) -> None:
            self._check_input(input_operator, operator_in_dir)
            script = f"set -eu\n{self.script}"
            # Defaults go in first: Kaapana overwrites them with the workflow_form's values.
            env = {key.upper(): value for key, value in self.defaults.items()}
            env["SRCOHORT_SCRIPT"] = script
            super().__init__(dag=dag, name=name or self.step_name,
                             image=f"{DEFAULT_REGISTRY}/{CONTAINER_IMAGE}:{KAAPANA_BUILD_VERSION}",
                             image_pull_secrets=["registry-secret"], input_operator=input_operator,
                             operator_in_dir=operator_in_dir, cmds=["/bin/sh", "-c"],
                             arguments=[script], env_vars={**env, **(env_vars or {})},
                             secrets=self.container_secrets(), **kwargs)
else:
    class SrcohortStep(_Step, BaseOperator):  # type: ignore[no-redef]
        """Run the step in the Airflow worker: parse the run conf, call srcohort, return counts."""

        def __init__(self, dag: Any = None, name: str | None = None, *,
                     input_operator: SrcohortStep | None = None,
                     operator_in_dir: str | None = None, operator_out_dir: str | None = None,
                     **kwargs: Any) -> None:
            self._check_input(input_operator, operator_in_dir)
            kwargs.setdefault("task_id", name or self.step_name)
            super().__init__(dag=dag, **kwargs)
            self.operator_out_dir = operator_out_dir or self.task_id
            self.operator_in_dir = (input_operator.operator_out_dir if input_operator is not None
                                    else operator_in_dir)

        def execute(self, context: Context) -> dict[str, Any]:
            form = (context["dag_run"].conf or {}).get("workflow_form") or {}
            # A field left empty in the UI may arrive as null: the default applies then.
            settings = {**self.defaults, **{k: v for k, v in form.items() if v is not None}}
            run_dir = workflow_dir() / context["run_id"]
            out_dir = run_dir / self.operator_out_dir
            out_dir.mkdir(parents=True, exist_ok=True)
            in_dir = run_dir / self.operator_in_dir if self.operator_in_dir else None
            result = self.run_step(settings, in_dir, out_dir)
            self.log.info("%s: %s", self.task_id, result)
            return result
