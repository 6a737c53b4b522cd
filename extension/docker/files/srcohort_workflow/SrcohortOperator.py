"""One srcohort step as a Kaapana processing container.

The image is named by the literal below, in a file whose name contains "operator": Kaapana's
build scripts find operator images that way (build-scripts/build_helper/helm/helm_chart.py,
``IMAGE_PATTERN`` in ``*operator*.py`` below the chart's grandparent folder) and so does the
base-installer's pre-pull (services/utils/base-installer/files/run.py, ``REGEX``). Kaapana 0.6
runs the image's entrypoint and ignores ``cmds``; the step travels as ``$SRCOHORT_STEP``.
"""

from __future__ import annotations

from typing import Any

from kaapana.blueprints.kaapana_global_variables import (DEFAULT_REGISTRY, INSTANCE_NAME,
                                                         KAAPANA_BUILD_VERSION)
from kaapana.operators.KaapanaBaseOperator import KaapanaBaseOperator
from kubernetes import client as k8s

from srcohort_workflow.resources import STEP_RESOURCES
from srcohort_workflow.settings import pod_settings

# Optional Secret srcohort-platform-ca (key ca.crt) of the step's namespace: the platform CA
# that signed OpenSearch's node certificate (docs/kaapana.md). Absent, the step does what
# Kaapana's own helper does and does not verify that certificate.
PLATFORM_CA_SECRET = "srcohort-platform-ca"
PLATFORM_CA_DIR = "/kaapana/srcohort/platform-ca"
# Optional Secret srcohort-pseudonym (key secret) of the project's namespace.
PSEUDONYM_SECRET = ("srcohort-pseudonym", "secret")


class SrcohortOperator(KaapanaBaseOperator):
    """Run ``srcohort-kaapana <step>`` with the step's declared resources."""

    def __init__(self, dag: Any, step: str, name: str | None = None, *,
                 env_vars: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                 pseudonym_secret: bool = False, **kwargs: Any) -> None:
        env = {**pod_settings(), "SRCOHORT_STEP": step,
               "SRCOHORT_PLATFORM_CA": f"{PLATFORM_CA_DIR}/ca.crt",
               "INSTANCE_NAME": INSTANCE_NAME or "", **(env_vars or {})}
        secrets = [_pseudonym_secret()] if pseudonym_secret else []
        # The project namespaces' network policies open OpenSearch to pods with this label.
        labels = {"network-access-opensearch": "true", **(labels or {})}
        super().__init__(
            dag=dag, name=name or f"srcohort-{step}",
            image=f"{DEFAULT_REGISTRY}/srcohort:{KAAPANA_BUILD_VERSION}",
            image_pull_secrets=["registry-secret"], env_vars=env, labels=labels,
            secrets=secrets, **{**STEP_RESOURCES[step], **kwargs})

    def set_volumes_and_volume_mounts(self) -> None:
        super().set_volumes_and_volume_mounts()
        self.volumes.append(k8s.V1Volume(name=PLATFORM_CA_SECRET, secret=k8s.V1SecretVolumeSource(
            secret_name=PLATFORM_CA_SECRET, optional=True)))
        self.volume_mounts.append(k8s.V1VolumeMount(name=PLATFORM_CA_SECRET,
                                                    mount_path=PLATFORM_CA_DIR, read_only=True))


def _pseudonym_secret() -> k8s.V1EnvVar:
    """``$SRCOHORT_SECRET`` from the project's Secret; optional, so that a missing Secret stops
    the step with one clear line instead of a pod stuck in CreateContainerConfigError."""
    name, key = PSEUDONYM_SECRET
    return k8s.V1EnvVar(name="SRCOHORT_SECRET", value_from=k8s.V1EnvVarSource(
        secret_key_ref=k8s.V1SecretKeySelector(name=name, key=key, optional=True)))
