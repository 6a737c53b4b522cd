"""Steps ``install`` and ``uninstall``: what the chart's Jobs do around the extension's life.

``install`` (post-install and post-upgrade Job, services namespace, Kaapana's system user):
hands the install-time parameters to the workflows (``settings.json`` beside the operators in
Airflow's DAG folder, srcohort_workflow/settings.py: the index prefix, k, the study and its
saved cohorts for the forms' defaults), sets up srcohort's indices and roles for every project
the AII knows, and imports into Dashboards, for each, the dashboards generated from the
installed study. Projects made later get theirs from the first srcohort workflow run in them
(its ``project-scope`` step); the dashboards then by upgrading the extension. An upgrade that
changes the study removes the former study's dashboards first.

``uninstall`` (pre-delete Job): deletes the installed study's dashboards again and the settings
file. The indices stay: they hold the projects' data, and an admin removes them deliberately if
at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srcohort.kaapana import aii
from srcohort.kaapana.dashboards import delete_objects, import_objects, project_objects
from srcohort.kaapana.platform import Platform
from srcohort.kaapana.project import ensure_project_scope, project_indices
from srcohort.logs import get_logger
from srcohort.study.load import StudyError, active_study_name, load_study
from srcohort.study.model import Study

log = get_logger(__name__)

DEFAULT_SETTINGS_FILE = "/kaapana/mounted/workflows/dags/srcohort_workflow/settings.json"


def _settings_file(platform: Platform) -> Path:
    return Path(platform.pod.get("SRCOHORT_SETTINGS_FILE") or DEFAULT_SETTINGS_FILE)


def _installed_study(path: Path) -> str | None:
    """The study the settings file names: what the last install set up."""
    try:
        return str(json.loads(path.read_text("utf-8")).get("study") or "") or None
    except (FileNotFoundError, ValueError, AttributeError):
        return None


def install(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    study = load_study()
    settings = {"opensearch_index_prefix": platform.index_prefix,
                "k_anonymity_threshold": int(pod.get("SRCOHORT_K") or 5),
                "study": active_study_name(), "cohorts": sorted(study.cohorts)}
    path = _settings_file(platform)
    former = _installed_study(path)
    removed = {}
    if former and former != settings["study"]:
        try:
            removed = _delete_dashboards(platform, load_study(former))
        except StudyError as exc:       # e.g. a study folder no longer in the image
            log.warning("former study's dashboards left", extra={"study": former,
                                                                 "reason": str(exc)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1), "utf-8")
    projects = []
    for project in aii.projects(pod):
        ensure_project_scope(platform.opensearch, project, platform.index_prefix)
        patients = project_indices(project, platform.index_prefix)[1]
        projects.append(import_objects(pod, platform.tokens.token, project,
                                       project_objects(project, patients, study)))
    return {"settings": settings, "settings_file": str(path), "projects": projects,
            **({"former_study_dashboards_deleted": removed} if removed else {})}


def uninstall(platform: Platform) -> dict[str, Any]:
    path = _settings_file(platform)
    deleted = _delete_dashboards(platform, load_study(_installed_study(path) or ""))
    path.unlink(missing_ok=True)
    return {"deleted_saved_objects": deleted}


def _delete_dashboards(platform: Platform, study: Study) -> dict[str, int]:
    deleted = {}
    for project in aii.projects(platform.pod):
        patients = project_indices(project, platform.index_prefix)[1]
        deleted[project.name] = delete_objects(platform.pod, platform.tokens.token,
                                               project_objects(project, patients, study))
    return deleted
