"""Settings the cohort steps share: the cohort from the form, the site's pseudonym secret.

Both the per-site cohort export and the federated export read a cohort (a saved name or pasted
YAML) and de-identify with the site's secret, taken from the environment, never the run conf.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowException

if TYPE_CHECKING:
    from srcohort.cohort.definition import Cohort

DEFAULT_COHORT = "tavi-self-expanding"
DEFAULT_SECRET_ENV = "SRCOHORT_SECRET"
# In Kaapana the secret comes from this Kubernetes Secret in the project's namespace.
KUBERNETES_SECRET = ("srcohort-pseudonym", "secret")
# Shell lines for container scripts: a pasted definition (it has a ':' or a newline) is
# written to a file first, since the CLI takes a saved name or a path.
COHORT_SCRIPT = """\
cohort="$COHORT"
case "$cohort" in
  *:*|*"
"*) printf '%s\\n' "$cohort" > "$out/cohort.yaml"; cohort="$out/cohort.yaml" ;;
esac"""


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


def secret_env_vars() -> list[Any]:
    """The container's secret variable, from the Kubernetes Secret ``KUBERNETES_SECRET``."""
    from kubernetes.client import V1EnvVar, V1EnvVarSource, V1SecretKeySelector
    name, key = KUBERNETES_SECRET
    # optional: without the Secret the CLI stops with a clear message instead of the pod
    # waiting for its configuration until Kaapana's start-up timeout.
    return [V1EnvVar(name=DEFAULT_SECRET_ENV, value_from=V1EnvVarSource(
        secret_key_ref=V1SecretKeySelector(name=name, key=key, optional=True)))]
