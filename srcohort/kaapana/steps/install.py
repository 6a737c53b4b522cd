"""Steps ``install`` and ``uninstall``: what the chart's Jobs do around the extension's life.

``install`` (post-install and post-upgrade Job, services namespace, Kaapana's system user):
hands the install-time parameters to the workflows (``settings.json`` beside the operators in
Airflow's DAG folder, srcohort_workflow/settings.py), sets up srcohort's indices and roles for
every project the AII knows, and imports the dashboards of each into Dashboards. Projects made
later get theirs from the first srcohort workflow run in them (its ``project-scope`` step); the
dashboards then by upgrading the extension.

``uninstall`` (pre-delete Job): deletes the dashboards again and the settings file. The indices
stay: they hold the projects' data, and an admin removes them deliberately if at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srcohort.kaapana import aii
from srcohort.kaapana.dashboards import delete_objects, import_objects, project_objects
from srcohort.kaapana.platform import Platform
from srcohort.kaapana.project import ensure_project_scope, project_indices

DEFAULT_SETTINGS_FILE = "/kaapana/mounted/workflows/dags/srcohort_workflow/settings.json"


def _settings_file(platform: Platform) -> Path:
    return Path(platform.pod.get("SRCOHORT_SETTINGS_FILE") or DEFAULT_SETTINGS_FILE)


def install(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    settings = {"opensearch_index_prefix": platform.index_prefix,
                "k_anonymity_threshold": int(pod.get("SRCOHORT_K") or 5)}
    path = _settings_file(platform)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1), "utf-8")
    projects = []
    for project in aii.projects(pod):
        ensure_project_scope(platform.opensearch, project, platform.index_prefix)
        patients = project_indices(project, platform.index_prefix)[1]
        projects.append(import_objects(pod, platform.tokens.token, project,
                                       project_objects(project, patients)))
    return {"settings": settings, "settings_file": str(path), "projects": projects}


def uninstall(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    deleted = {}
    for project in aii.projects(pod):
        patients = project_indices(project, platform.index_prefix)[1]
        deleted[project.name] = delete_objects(pod, platform.tokens.token,
                                               project_objects(project, patients))
    _settings_file(platform).unlink(missing_ok=True)
    return {"deleted_saved_objects": deleted}
