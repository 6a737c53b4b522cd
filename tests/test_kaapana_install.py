"""The chart's install and uninstall Jobs (``srcohort-kaapana install|uninstall``) on the platform.

Install: the settings file the DAGs read, every project's indices and roles, and every
project's dashboards imported into Dashboards (the recording stand-in of its saved objects API,
tests/platform/backend.py); each project's panels answer its members and refuse the others.
Uninstall: the dashboards and the settings file go.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from opensearchpy.exceptions import AuthorizationException

from srcohort.dashboards import vega_queries
from srcohort.kaapana.pod import Project
from srcohort.kaapana.project import project_indices
from tests.kaapana_harness import SERVICES, Platform

pytestmark = pytest.mark.opensearch
BIN = Path(sys.executable).parent


def _job(kaapana: Platform, step: str, tmp_path: Path, settings: Path
         ) -> subprocess.CompletedProcess:
    """The Job's container as the chart renders it (tests/test_helm.py checks the env)."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "SRCOHORT_STEP": step, "SRCOHORT_K": "7",
           "SRCOHORT_INDEX_PREFIX": "srcohort-", "SRCOHORT_SETTINGS_FILE": str(settings),
           "WORKFLOW_DIR": str(tmp_path / f"job-{step}"), "OPERATOR_OUT_DIR": step,
           "DASHBOARDS_URL": f"{kaapana.services.url}/meta", **kaapana.pod_env(SERVICES)}
    return subprocess.run([str(BIN / "srcohort-kaapana")], env=env, capture_output=True,
                          text=True, timeout=600)


def test_install_sets_up_every_project_and_uninstall_removes_dashboards(
        kaapana: Platform, tmp_path: Path) -> None:
    settings = tmp_path / "dags" / "srcohort_workflow" / "settings.json"
    done = _job(kaapana, "install", tmp_path, settings)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(settings.read_text("utf-8")) == {"opensearch_index_prefix": "srcohort-",
                                                       "k_anonymity_threshold": 7}
    admin = kaapana.client("system")
    stored = kaapana.services.saved_objects
    for name in kaapana.projects:
        project = Project.from_form(kaapana.project_form(name))
        series, patients = project_indices(project)
        assert admin.indices.exists(index=series) and admin.indices.exists(index=patients)
        pattern = stored[("index-pattern", f"srcohort-patients-{name}")]
        assert pattern["attributes"]["title"] == patients
        dashboard = stored[("dashboard", f"srcohort-tavi-cohorts-{name}")]
        assert all(ref["id"].endswith(f"-{name}") for ref in dashboard["references"])
    assert kaapana.services.violations == []

    alpha_patients = project_indices(Project.from_form(kaapana.project_form("alpha")))[1]
    alpha = kaapana.client(kaapana.user("alpha"))
    beta = kaapana.client(kaapana.user("beta"))
    for panel, body in vega_queries(alpha_patients).items():
        assert "aggregations" in alpha.search(index=alpha_patients, body=body), panel
        with pytest.raises(AuthorizationException):
            beta.search(index=alpha_patients, body=body)

    done = _job(kaapana, "uninstall", tmp_path, settings)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not [key for key in stored if key[1].startswith("srcohort-")]
    assert not settings.exists()
    assert admin.indices.exists(index=alpha_patients)      # the projects' data stays
