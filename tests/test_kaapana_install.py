"""The chart's install and uninstall Jobs (``srcohort-kaapana install|uninstall``) on the platform.

Install: the settings file the DAGs read, every project's indices and roles, and every
project's dashboards, generated from the installed study, imported into Dashboards (the
recording stand-in of its saved objects API, tests/platform/backend.py); each project's panels
answer its members and refuse the others. An upgrade to another study replaces the former
study's dashboards. Uninstall: the dashboards and the settings file go.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from opensearchpy.exceptions import AuthorizationException

from srcohort.dashboards import saved_object_list, vega_queries
from srcohort.kaapana.pod import Project
from srcohort.kaapana.project import project_indices
from srcohort.study.load import load_study
from tests.kaapana_harness import SERVICES, Platform

pytestmark = pytest.mark.opensearch
BIN = Path(sys.executable).parent


def _job(kaapana: Platform, step: str, tmp_path: Path, settings: Path, study: str = ""
         ) -> subprocess.CompletedProcess:
    """The Job's container as the chart renders it (tests/test_helm.py checks the env)."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "SRCOHORT_STEP": step, "SRCOHORT_K": "7",
           "SRCOHORT_INDEX_PREFIX": "srcohort-", "SRCOHORT_SETTINGS_FILE": str(settings),
           "SRCOHORT_STUDY": study,
           "WORKFLOW_DIR": str(tmp_path / f"job-{step}"), "OPERATOR_OUT_DIR": step,
           "DASHBOARDS_URL": f"{kaapana.services.url}/meta", **kaapana.pod_env(SERVICES)}
    return subprocess.run([str(BIN / "srcohort-kaapana")], env=env, capture_output=True,
                          text=True, timeout=600)


def _ids(study: str, project: str) -> set[tuple[str, str]]:
    """The saved objects the study's dashboards consist of, as installed for ``project``."""
    return {(obj["type"], f"{obj['id']}-{project}")
            for obj in saved_object_list(load_study(study), "x-patients")}


def test_install_sets_up_every_project_and_uninstall_removes_dashboards(
        kaapana: Platform, tmp_path: Path) -> None:
    settings = tmp_path / "dags" / "srcohort_workflow" / "settings.json"
    done = _job(kaapana, "install", tmp_path, settings)
    assert done.returncode == 0, done.stderr[-3000:]
    default = load_study()                # empty install parameter: the packaged default
    assert json.loads(settings.read_text("utf-8")) == {
        "opensearch_index_prefix": "srcohort-", "k_anonymity_threshold": 7,
        "study": default.name, "cohorts": sorted(default.cohorts)}
    admin = kaapana.client("system")
    stored = kaapana.services.saved_objects
    for name in kaapana.projects:
        project = Project.from_form(kaapana.project_form(name))
        series, patients = project_indices(project)
        assert admin.indices.exists(index=series) and admin.indices.exists(index=patients)
        assert _ids(default.name, name) <= set(stored)
        pattern = stored[("index-pattern", f"srcohort-patients-{name}")]
        assert pattern["attributes"]["title"] == patients
        dashboard = stored[("dashboard", f"srcohort-{default.name}-{name}")]
        assert all(ref["id"].endswith(f"-{name}") for ref in dashboard["references"])
    assert kaapana.services.violations == []

    alpha_patients = project_indices(Project.from_form(kaapana.project_form("alpha")))[1]
    alpha = kaapana.client(kaapana.user("alpha"))
    beta = kaapana.client(kaapana.user("beta"))
    for panel, body in vega_queries(alpha_patients, study=default).items():
        assert "aggregations" in alpha.search(index=alpha_patients, body=body), panel
        with pytest.raises(AuthorizationException):
            beta.search(index=alpha_patients, body=body)

    # Upgrading with another study: its dashboards replace the former study's.
    other = next(name for name in ("lung-nodules", "tavi") if name != default.name)
    done = _job(kaapana, "install", tmp_path, settings, study=other)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(settings.read_text("utf-8"))["study"] == other
    for name in kaapana.projects:
        assert _ids(other, name) <= set(stored)
        assert not (_ids(default.name, name) - _ids(other, name)) & set(stored)
    for panel, body in vega_queries(alpha_patients, study=load_study(other)).items():
        assert "aggregations" in alpha.search(index=alpha_patients, body=body), panel

    done = _job(kaapana, "uninstall", tmp_path, settings, study=other)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not [key for key in stored if key[1].startswith("srcohort-")]
    assert not settings.exists()
    assert admin.indices.exists(index=alpha_patients)      # the projects' data stays


def test_an_unknown_study_stops_the_install_with_one_line(kaapana: Platform,
                                                          tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    done = _job(kaapana, "install", tmp_path, settings, study="no-such-study")
    assert done.returncode == 1
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("srcohort-kaapana ")]
    assert "no-such-study" in line and "neither a shipped study" in line
    assert not settings.exists()
