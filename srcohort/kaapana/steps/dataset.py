"""Step ``dataset``: a cohort becomes a Kaapana dataset of its patients' series.

The cohort (``workflow_form.cohort``: a saved name or pasted YAML) runs against the project's
srcohort indices; every series of every matching patient goes into the Kaapana dataset
``workflow_form.dataset`` (default: the cohort's name) of the project, through the backend's
``PUT /client/dataset`` (srcohort.kaapana.backend). The gallery then shows it and any workflow,
srcohort's export included, can start on it. The count and the listing are entered in the
project's audit log. Runs in the services namespace (see backend.py).
"""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.audit.audited import count_patients, list_patients
from srcohort.cohort.model import Cohort
from srcohort.kaapana.backend import put_dataset
from srcohort.kaapana.cohorts import cohort_setting
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.platform import Platform
from srcohort.kaapana.pod import Pod, Project


def run(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    project = pod.project
    cohort = cohort_setting(pod.setting("cohort"))
    return cohort_to_dataset(platform.opensearch, pod, project, platform.prefix(project), cohort,
                             str(pod.setting("dataset") or cohort.name), platform.actor)


def cohort_to_dataset(client: OpenSearch, pod: Pod, project: Project, prefix: str,
                      cohort: Cohort, name: str, actor: Actor) -> dict[str, Any]:
    """Count ``cohort`` in ``project``'s indices and put its patients' series into dataset
    ``name``: this step, and the cohort builder's *Kaapana dataset* action inside Kaapana
    (srcohort.kaapana.builder), both entered in the project's audit log as ``actor``."""
    counts = count_patients(client, cohort, prefix=prefix, actor=actor)
    series = sorted({s["series_instance_uid"] for patient in
                     list_patients(client, cohort, prefix=prefix, actor=actor)
                     for s in patient["series"]})
    if not series:
        raise KaapanaError(f"cohort {cohort.name!r} matches no patient in project "
                           f"{project.name!r}: no dataset written")
    dataset = put_dataset(pod, project, name, series)
    return {"cohort": cohort.name, "dataset": dataset.get("name", name),
            "patients": counts, "series": len(series)}
