"""The cohort builder as Kaapana 0.6 runs it (srcohort.kaapana.builder), on the platform of
tests/kaapana_harness.py: real OpenSearch with Kaapana's security configuration, tokens of the
Keycloak-style issuer, the recording kaapana-backend.

Requests arrive as Kaapana's ingress forwards them: the user's access token in
``X-Forwarded-Access-Token`` (oauth2-proxy) and the selected project as the JSON ``Project``
header (auth-check). The builder holds no credentials of its own (its environment has none):
what a member sees is what OpenSearch's roles let that member's token see.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from srcohort.audit.log import audit_log
from srcohort.builder.app import BuilderApp
from srcohort.builder.server import BuilderServer
from srcohort.cohort.definition import load_cohort
from srcohort.cohort.library import saved_cohorts
from srcohort.cohort.run import count_patients, list_patients
from srcohort.index.indexer import index_directory
from srcohort.kaapana.builder import KaapanaBuilder, main
from srcohort.kaapana.pod import Pod, Project
from srcohort.kaapana.project import backend_role, ensure_project_scope
from tests.builder_truth import saved_truth
from tests.kaapana_harness import INSTANCE, Platform

pytestmark = pytest.mark.opensearch
PROJECT = "epsilon"
PREFIX = f"srcohort-{PROJECT}-"
MEMBER = "dr.kim"              # a member with Kaapana's read right on the project only
OUTSIDER = "dr.roth"           # a member of project beta


@pytest.fixture(scope="module")
def epsilon(kaapana: Platform, converted: Path) -> Project:
    """Project epsilon as AII sets it up, srcohort's scope on it, one site indexed into it,
    and two people: a member of epsilon (read right) and a member of beta."""
    if PROJECT not in kaapana.projects:
        kaapana.add_project(PROJECT)
    project = Project.from_form(kaapana.project_form(PROJECT))
    beta = Project.from_form(kaapana.project_form("beta"))
    system = kaapana.client("system")
    ensure_project_scope(system, project)
    ensure_project_scope(system, beta)
    index_directory(system, converted / "site-01" / "dicom", site=INSTANCE, prefix=PREFIX)
    kaapana.issuer.add_user(MEMBER, opensearch=[backend_role("read_project", project)],
                            policy=[backend_role("read_project", project)])
    kaapana.issuer.add_user(OUTSIDER, opensearch=[backend_role("admin_project", beta)],
                            policy=[backend_role("admin_project", beta)])
    return project


@pytest.fixture(scope="module")
def builder(kaapana: Platform, epsilon: Project, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[BuilderServer]:
    """The builder as its chart starts it: the pod's service URLs and platform CA, no
    credentials, installed for project epsilon."""
    env = {**kaapana.service_urls(), "SERVICES_NAMESPACE": "services",
           "SRCOHORT_PLATFORM_CA": str(kaapana.opensearch.ca_file), "INSTANCE_NAME": INSTANCE}
    assert not [k for k in env if "PASSWORD" in k or "SECRET" in k]
    root = tmp_path_factory.mktemp("kaapana-builder")
    deployment = KaapanaBuilder(Pod(env), epsilon.id).deployment(root / "cohorts", root / "out")
    server = BuilderServer(BuilderApp(deployment), "127.0.0.1", 0, any_host=True)
    server.serve_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def post(server: BuilderServer, route: str, body: dict[str, Any],
         headers: dict[str, str]) -> tuple[int, Any]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=300)
    connection.request("POST", f"/api/{route}", body=json.dumps(body),
                       headers={"Content-Type": "application/json", "Host": "kaapana.test",
                                **headers})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def ingress(kaapana: Platform, user: str | None, project: str | None) -> dict[str, str]:
    """The headers Kaapana's ingress adds: the user's token and the selected project."""
    headers = {}
    if user:
        headers["X-Forwarded-Access-Token"] = kaapana.issuer.token_for(user)
    if project:
        headers["Project"] = json.dumps(kaapana.projects[project])
    return headers


@pytest.mark.parametrize("name", list(saved_cohorts()))
def test_member_counts_are_the_workflows_counts_and_the_truth(
        kaapana: Platform, builder: BuilderServer, small_consortium: Path, name: str) -> None:
    definition = yaml.safe_load(saved_cohorts()[name])
    status, answer = post(builder, "count", {"definition": definition},
                          ingress(kaapana, MEMBER, PROJECT))
    assert status == 200, answer
    cohort = load_cohort(definition)
    # What the workflows count for the project (srcohort-cohort-to-dataset, srcohort-export):
    # count_patients with the project user's token under the project's prefix.
    workflows = count_patients(kaapana.client(kaapana.user(PROJECT)), cohort, prefix=PREFIX)
    assert answer["counts"]["cohort"]["sites"] == {INSTANCE: workflows["total"]}
    assert workflows["total"] == saved_truth(small_consortium, name)["site-01"]
    assert answer["counts"]["everyone"]["total"] == 6


def test_each_count_is_audited_as_the_member(kaapana: Platform, builder: BuilderServer) -> None:
    definition = yaml.safe_load(next(iter(saved_cohorts().values())))
    digest = load_cohort(definition).digest
    log = audit_log(kaapana.client("system"), PREFIX)
    before = len(log.entries())
    for _ in range(2):
        status, answer = post(builder, "count", {"definition": definition},
                              ingress(kaapana, MEMBER, PROJECT))
        assert status == 200, answer
    added = log.entries()[before:]
    assert [(e["action"], e["user"], e["cohort"]["sha256"], e["details"]["via"])
            for e in added] == [("count", MEMBER, digest, "builder")] * 2
    assert added[-1]["details"]["total"] == answer["counts"]["cohort"]["total"]


def test_another_projects_member_gets_403_and_nothing(kaapana: Platform,
                                                      builder: BuilderServer) -> None:
    definition = yaml.safe_load(next(iter(saved_cohorts().values())))
    for route in ("count", "catalogue", "patients"):
        status, answer = post(builder, route, {"definition": definition},
                              ingress(kaapana, OUTSIDER, PROJECT))
        assert status == 403, (route, answer)
        assert set(answer) == {"error"} and "OpenSearch denied the request" in answer["error"]
    # Beta's member on beta's project in epsilon's builder: refused before any search.
    status, answer = post(builder, "count", {"definition": definition},
                          ingress(kaapana, OUTSIDER, "beta"))
    assert status == 400 and "installed in project" in answer["error"]


def test_requests_without_token_or_project_are_refused(kaapana: Platform,
                                                       builder: BuilderServer) -> None:
    body = {"definition": yaml.safe_load(next(iter(saved_cohorts().values())))}
    status, answer = post(builder, "count", body, ingress(kaapana, None, PROJECT))
    assert status == 401 and "X-Forwarded-Access-Token" in answer["error"]
    status, answer = post(builder, "count", body, ingress(kaapana, MEMBER, None))
    assert status == 400 and "no Project header" in answer["error"]
    status, answer = post(builder, "count", body,
                          {**ingress(kaapana, MEMBER, None), "Project": "{not json"})
    assert status == 400 and "not JSON" in answer["error"]
    forged = ingress(kaapana, None, PROJECT)
    forged["X-Forwarded-Access-Token"] = kaapana.issuer.token_for(MEMBER)[:-8] + "AAAAAAAA"
    status, answer = post(builder, "count", body, forged)
    assert status == 401 and answer == {"error": "OpenSearch refused the credentials"}
    # A client's own bearer token (oauth2-proxy's skip_jwt_bearer_tokens) works as well.
    bearer = {"Authorization": f"Bearer {kaapana.issuer.token_for(MEMBER)}",
              "Project": json.dumps(kaapana.projects[PROJECT])}
    assert post(builder, "count", body, bearer)[0] == 200


def test_dataset_action_goes_through_the_workflows_code(kaapana: Platform,
                                                        builder: BuilderServer) -> None:
    definition = yaml.safe_load(saved_cohorts()["tavi-self-expanding"])
    status, answer = post(builder, "action", {"action": "kaapana-dataset",
                                              "definition": definition,
                                              "params": {"dataset": "from-builder"}},
                          ingress(kaapana, MEMBER, PROJECT))
    assert status == 200, answer
    project_id = kaapana.projects[PROJECT]["id"]
    stored = kaapana.services.datasets[(project_id, "from-builder")]
    member = kaapana.client(MEMBER)
    expected = sorted({s["series_instance_uid"] for patient in
                       list_patients(member, load_cohort(definition), prefix=PREFIX)
                       for s in patient["series"]})
    assert sorted(stored) == expected != []
    assert answer["result"][INSTANCE]["series"] == len(expected)
    assert kaapana.services.violations == []
    put = [r for r in kaapana.services.requests if r["method"] == "PUT"
           and r["path"] == "/client/dataset"][-1]
    assert json.loads(put["headers"]["project"])["id"] == project_id
    entries = audit_log(kaapana.client("system"), PREFIX).entries()
    assert [(e["action"], e["user"]) for e in entries[-2:]] == [("count", MEMBER),
                                                                        ("list", MEMBER)]


def test_entry_point_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "X-Forwarded-Access-Token" in capsys.readouterr().out
