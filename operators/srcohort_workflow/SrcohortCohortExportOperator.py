"""Step ``srcohort-cohort-export``: count a cohort per site, then export it de-identified.

``srcohort cohort count`` and ``srcohort export`` in one step, so the counts and the exported
files come from the same state of the index.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowException

from srcohort_workflow.kaapana_compat import (INDEX_PREFIX, SrcohortStep, opensearch_client,
                                              required)

if TYPE_CHECKING:
    from srcohort.cohort.definition import Cohort

DEFAULT_COHORT = "tavi-self-expanding"
DEFAULT_SECRET_ENV = "SRCOHORT_SECRET"
# In Kaapana the secret comes from this Kubernetes Secret in the project's namespace.
KUBERNETES_SECRET = ("srcohort-pseudonym", "secret")


def load_cohort_setting(value: str) -> Cohort:
    """A saved cohort's name, or a whole definition pasted as YAML text (it has a ':')."""
    from srcohort.cohort.definition import load_cohort
    from srcohort.cohort.library import resolve_cohort
    return load_cohort(value) if ":" in value or "\n" in value else resolve_cohort(value)


def pseudonym_secret(env_name: str) -> bytes:
    """The site's pseudonymisation key, from the environment variable the form names.

    The form carries only the variable's name: a secret typed into the run conf would be
    stored in Airflow's database and shown in the UI. The value is masked in task logs.
    """
    from airflow.utils.log.secrets_masker import mask_secret
    secret = os.environ.get(env_name, "")
    if not secret:
        raise AirflowException(f"set the pseudonymisation secret in ${env_name} on the workers "
                               f"(workflow_form.secret_env names the variable)")
    mask_secret(secret, env_name)
    return secret.encode("utf-8")


class SrcohortCohortExportOperator(SrcohortStep):
    """Count and export ``workflow_form.cohort`` into ``<run>/<operator_out_dir>/``.

    Output: ``data/<pseudonym>/...`` and ``manifest/`` (see srcohort.export.exporter). XCom: the
    cohort's name, its patient counts per site plus ``total``, and the exported patients and files.
    """

    step_name = "srcohort-cohort-export"
    defaults = {"index_prefix": INDEX_PREFIX, "secret_env": DEFAULT_SECRET_ENV}
    script = """\
out="$WORKFLOW_DIR/$OPERATOR_OUT_DIR"
mkdir -p "$out"
cohort="$COHORT"
case "$cohort" in
  *:*|*"
"*) printf '%s\\n' "$cohort" > "$out/cohort.yaml"; cohort="$out/cohort.yaml" ;;
esac
srcohort cohort count "$cohort" --prefix "$INDEX_PREFIX" --json
srcohort export "$cohort" --out "$out" --prefix "$INDEX_PREFIX" --secret-env "$SECRET_ENV" --json"""

    def container_secrets(self) -> list[Any]:
        from kubernetes.client import V1EnvVar, V1EnvVarSource, V1SecretKeySelector
        name, key = KUBERNETES_SECRET
        # optional: without the Secret the CLI stops with a clear message instead of the pod
        # waiting for its configuration until Kaapana's start-up timeout.
        return [V1EnvVar(name=DEFAULT_SECRET_ENV, value_from=V1EnvVarSource(
            secret_key_ref=V1SecretKeySelector(name=name, key=key, optional=True)))]

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.cohort.run import count_patients
        from srcohort.export.exporter import export_cohort
        secret = pseudonym_secret(required(settings, "secret_env"))
        cohort = load_cohort_setting(required(settings, "cohort"))
        prefix = str(settings["index_prefix"])
        client = opensearch_client()
        counts = count_patients(client, cohort, prefix=prefix)
        result = export_cohort(client, cohort, out_dir, prefix=prefix, secret=secret)
        return {"cohort": cohort.name, "counts": counts, "patients": result.patients,
                "files": result.files, "manifest": result.manifest_path}
