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

from srcohort.audit.audited import count_patients, list_patients
from srcohort.kaapana.backend import put_dataset
from srcohort.kaapana.cohorts import cohort_setting
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.platform import Platform


def run(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    project = pod.project
    cohort = cohort_setting(pod.setting("cohort"))
    name = str(pod.setting("dataset") or cohort.name)
    prefix = platform.prefix(project)
    counts = count_patients(platform.opensearch, cohort, prefix=prefix, actor=platform.actor)
    series = sorted({s["series_instance_uid"] for patient in
                     list_patients(platform.opensearch, cohort, prefix=prefix,
                                   actor=platform.actor)
                     for s in patient["series"]})
    if not series:
        raise KaapanaError(f"cohort {cohort.name!r} matches no patient in project "
                           f"{project.name!r}: no dataset written")
    dataset = put_dataset(pod, project, name, series)
    return {"cohort": cohort.name, "dataset": dataset.get("name", name),
            "patients": counts, "series": len(series)}
