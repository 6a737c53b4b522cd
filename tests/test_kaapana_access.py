"""srcohort's pods against OpenSearch secured as Kaapana 0.6 secures it: tokens, TLS, projects.

The platform (tests/kaapana_harness.py) runs OpenSearch 2.19.4 with Kaapana's security
configuration (openid domain on the ``opensearch`` claim, platform CA, node certificate for
``node1.dns.a-record``), a Keycloak-style issuer and the projects ``alpha`` and ``beta``. Steps
run as ``srcohort-kaapana`` processes with the environment KaapanaBaseOperator gives a pod.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opensearchpy.exceptions import AuthorizationException

from srcohort.kaapana.auth import TokenSource
from srcohort.kaapana.pod import Pod, Project
from srcohort.kaapana.project import (AII_PERMISSIONS, backend_role, project_indices,
                                      role_body, role_name)
from tests.kaapana_harness import SERVICES, Platform
from tests.platform.opensearch import platform_certificate, _pem

pytestmark = pytest.mark.opensearch
BIN = Path(sys.executable).parent


def _project(kaapana: Platform, name: str) -> Project:
    return Project.from_form(kaapana.project_form(name))


def _step(kaapana: Platform, step: str, workflow_dir: Path, namespace: str,
          conf: dict[str, Any], **env: str) -> subprocess.CompletedProcess:
    """``srcohort-kaapana <step>`` with a pod's environment and mounted conf.json."""
    (workflow_dir / "conf").mkdir(parents=True, exist_ok=True)
    (workflow_dir / "conf" / "conf.json").write_text(json.dumps(conf), "utf-8")
    pod_env = {"PATH": f"{BIN}:/usr/bin:/bin", "WORKFLOW_DIR": str(workflow_dir),
               "OPERATOR_OUT_DIR": f"srcohort-{step}", "RUN_ID": workflow_dir.name,
               "BATCH_NAME": "batch", **kaapana.pod_env(namespace), **env}
    pod_env = {k: v for k, v in pod_env.items() if v is not None}
    return subprocess.run([str(BIN / "srcohort-kaapana"), step], env=pod_env,
                          capture_output=True, text=True, timeout=600)


def test_roles_mirror_the_access_information_interface(kaapana: Platform) -> None:
    """Role bodies as AII writes them (AII projects/opensearch.py
    get_payload_for_claim_and_index) for srcohort's two indices, mapped to the backend roles
    Keycloak's rights mapper puts into the opensearch claim (``<claim>_<project id>``)."""
    alpha = _project(kaapana, "alpha")
    series, patients = project_indices(alpha)
    assert (series, patients) == ("srcohort-alpha-series", "srcohort-alpha-patients")
    body = role_body("admin_project", alpha)
    permission = body["index_permissions"][0]
    assert permission["index_patterns"] == [series, patients]
    assert {"data_access", "indices:admin/mappings/get"} <= set(permission["allowed_actions"])
    assert "cluster_composite_ops" in body["cluster_permissions"]
    assert body["tenant_permissions"] == [] and permission["dls"] == ""
    assert role_body("read_project", alpha)["index_permissions"][0]["allowed_actions"][0] == "read"
    assert backend_role("admin_project", alpha) == f"admin_project_{alpha.id}"


def test_project_scope_step_creates_indices_and_roles(kaapana: Platform, tmp_path: Path) -> None:
    form = kaapana.project_form("alpha")
    done = _step(kaapana, "project-scope", tmp_path / "run-scope", SERVICES,
                 {"project_form": form})
    assert done.returncode == 0, done.stderr[-3000:]
    admin = kaapana.client("system")
    alpha = _project(kaapana, "alpha")
    for claim in AII_PERMISSIONS:
        stored = admin.transport.perform_request(
            "GET", f"/_plugins/_security/api/roles/{role_name(claim, alpha)}")
        assert stored[role_name(claim, alpha)]["index_permissions"][0]["index_patterns"] == \
            list(project_indices(alpha))
        mapping = admin.transport.perform_request(
            "GET", f"/_plugins/_security/api/rolesmapping/{role_name(claim, alpha)}")
        assert mapping[role_name(claim, alpha)]["backend_roles"] == [backend_role(claim, alpha)]
    assert all(admin.indices.exists(index=name) for name in project_indices(alpha))
    # Kaapana's own project index and template were not created or touched by srcohort.
    assert not admin.indices.exists(index="project_alpha")


def test_project_user_reaches_its_own_indices_only(kaapana: Platform, tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        assert _step(kaapana, "project-scope", tmp_path / f"scope-{name}", SERVICES,
                     {"project_form": kaapana.project_form(name)}).returncode == 0
    alpha_series, alpha_patients = project_indices(_project(kaapana, "alpha"))
    alpha = kaapana.client(kaapana.user("alpha"))
    alpha.index(index=alpha_series, id="1.2.3", body={"site": "x", "modality": "CT"},
                refresh=True)
    assert alpha.count(index=alpha_series)["count"] >= 1
    beta = kaapana.client(kaapana.user("beta"))
    refused = {
        "search": lambda: beta.search(index=alpha_patients, body={"query": {"match_all": {}}}),
        "count": lambda: beta.count(index=alpha_series),
        "get": lambda: beta.get(index=alpha_series, id="1.2.3"),
        "index": lambda: beta.index(index=alpha_series, id="9", body={"site": "x"}),
        "delete": lambda: beta.delete(index=alpha_series, id="1.2.3"),
        "mapping": lambda: beta.indices.get_mapping(index=alpha_patients),
    }
    for action, call in refused.items():
        with pytest.raises(AuthorizationException):
            call()
    # A pattern across projects finds nothing of another's (do_not_fail_on_forbidden).
    hits = beta.search(index="srcohort-*", body={"query": {"match_all": {}}})
    assert all(not hit["_index"].startswith("srcohort-alpha-") for hit in hits["hits"]["hits"])
    alpha.delete(index=alpha_series, id="1.2.3", refresh=True)


def test_token_is_refreshed_before_it_expires(kaapana: Platform) -> None:
    now = [1000.0]
    user = kaapana.user("alpha")
    pod = Pod(kaapana.pod_env("project-alpha"))
    tokens = TokenSource.from_pod(pod)
    tokens.clock = lambda: now[0]
    first = tokens.token()
    assert tokens.token() == first                       # cached while fresh
    now[0] += kaapana.issuer.lifetime - 30               # within the refresh margin
    assert tokens.token() != first
    grants = [g for g in kaapana.issuer.grants if g[1] == user][-2:]
    assert grants == [("password", user), ("refresh_token", user)]


def _one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("srcohort-kaapana ")]
    assert len(errors) == 1, done.stderr[-3000:]
    # Besides that line only JSON log lines (libraries' retries log theirs, srcohort.logs):
    # no raw traceback.
    raw = [ln for ln in done.stderr.splitlines()
           if not ln.startswith(("{", "srcohort-kaapana "))]
    assert raw == [], done.stderr[-3000:]
    return errors[0]


def test_wrong_ca_fails_with_one_line(kaapana: Platform, tmp_path: Path) -> None:
    other, _ = platform_certificate("another-platform.test")
    wrong = tmp_path / "wrong-ca.crt"
    wrong.write_bytes(_pem(other))
    done = _step(kaapana, "project-scope", tmp_path / "run", SERVICES,
                 {"project_form": kaapana.project_form("alpha")},
                 SRCOHORT_PLATFORM_CA=str(wrong))
    line = _one_line(done)
    assert "TLS to OpenSearch" in line and str(wrong) in line and "node1.dns.a-record" in line


def test_right_ca_is_verified_and_missing_ca_falls_back(kaapana: Platform, tmp_path: Path
                                                        ) -> None:
    form = {"project_form": kaapana.project_form("alpha")}
    done = _step(kaapana, "project-scope", tmp_path / "with-ca", SERVICES, form,
                 SRCOHORT_PLATFORM_CA=str(kaapana.opensearch.ca_file))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not verified" not in done.stderr
    done = _step(kaapana, "project-scope", tmp_path / "without-ca", SERVICES, form,
                 SRCOHORT_PLATFORM_CA=str(tmp_path / "not-mounted" / "ca.crt"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "platform CA not mounted" in done.stderr


def test_expired_token_fails_with_one_line(kaapana: Platform, tmp_path: Path) -> None:
    lifetime = kaapana.issuer.lifetime
    kaapana.issuer.lifetime = -60          # the issuer's tokens are expired when issued
    try:
        done = _step(kaapana, "project-scope", tmp_path / "run", SERVICES,
                     {"project_form": kaapana.project_form("alpha")})
    finally:
        kaapana.issuer.lifetime = lifetime
    line = _one_line(done)
    assert "refused the bearer token of 'system' (401)" in line and "expired" in line


def test_missing_client_secret_fails_with_one_line(kaapana: Platform, tmp_path: Path) -> None:
    done = _step(kaapana, "project-scope", tmp_path / "run", SERVICES,
                 {"project_form": kaapana.project_form("alpha")}, KAAPANA_CLIENT_SECRET=None)
    line = _one_line(done)
    assert "$KAAPANA_CLIENT_SECRET is not set: Kaapana injects it from the Secret " \
        "oidc-client-secret" in line


def test_wrong_client_secret_fails_with_one_line(kaapana: Platform, tmp_path: Path) -> None:
    done = _step(kaapana, "project-scope", tmp_path / "run", SERVICES,
                 {"project_form": kaapana.project_form("alpha")},
                 KAAPANA_CLIENT_SECRET="not-the-secret")
    line = _one_line(done)
    assert "Keycloak refused the password grant for user 'system' (401" in line


def test_missing_pseudonym_secret_fails_with_one_line(kaapana: Platform, tmp_path: Path) -> None:
    """The export's Secret srcohort-pseudonym is optional in the pod spec, so its absence is
    reported by the step instead of a pod stuck in CreateContainerConfigError."""
    done = _step(kaapana, "export", tmp_path / "run", "project-beta",
                 {"project_form": kaapana.project_form("beta"),
                  "workflow_form": {"cohort": "tavi-self-expanding"}})
    line = _one_line(done)
    assert "$SRCOHORT_SECRET is not set" in line and "srcohort-pseudonym" in line
    assert "project-beta" in line
