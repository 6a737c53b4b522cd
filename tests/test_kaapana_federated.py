"""A federated cohort count through Kaapana's federated framework, on the test platform.

The central instance runs srcohort-federated-count under Airflow (``dag.test``); its container
asks the backend for the registered sites, creates a job per site and waits, then collects the
sites' uploads from the project bucket. The recording backend (tests/platform/backend.py)
checks those requests against kaapana-backend's schemas and plays the remote instances: each
runs the site step with its own ``INSTANCE_NAME`` and uploads its step folder as Kaapana's
HelperFederated does (``.json`` files only, tar, Fernet-encrypted with the site's key, at
``<federated dir>/<round>/<instance>/from_client/<operator>.tar``). Every release goes through
the project's release ledger and audit log; where approval is required the sites' releases
wait, the combine waits, and a second person's decision (srcohort-federated-decide) lets the
next run ship exactly what was approved.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from srcohort.audit.actor import Actor
from srcohort.audit.log import audit_log
from srcohort.federated import Ledger, decide_release, releases, set_approval_policy
from srcohort.index.indexer import index_directory
from tests.kaapana_harness import SERVICES, Airflow, Platform, airflow_home, kaapana_airflow

pytestmark = [pytest.mark.opensearch, pytest.mark.airflow]
BIN = Path(sys.executable).parent
SITES = ("site-b", "site-c")
OPERATOR = "srcohort-federated-site"


@pytest.fixture(scope="module")
def airflow(kaapana: Platform, tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    root = tmp_path_factory.mktemp("federated-airflow")
    return kaapana_airflow(airflow_home(root), root, services_urls=kaapana.service_urls(),
                           secrets_by_namespace=kaapana.secrets, cluster={},
                           pacs_url=kaapana.pacs.url,
                           namespaces=tuple(p["kubernetes_namespace"]
                                            for p in kaapana.projects.values()))


@pytest.fixture(scope="module")
def gamma(kaapana: Platform, converted: Path) -> str:
    """Project gamma's srcohort index holds one converted site."""
    client = kaapana.client("system")
    index_directory(client, converted / "site-01" / "dicom", site="site-01",
                    prefix="srcohort-gamma-")
    return "gamma"


class RemoteSites:
    """The registered instances: each job runs the site step and uploads like HelperFederated."""

    def __init__(self, kaapana: Platform, root: Path, names: dict[str, str]) -> None:
        self.kaapana, self.root, self.names = kaapana, root, names    # registered -> INSTANCE_NAME
        self.keys = {name: Fernet.generate_key().decode() for name in names}
        self.shared: dict[str, list[str]] = {}

    def register(self) -> None:
        for name, key in self.keys.items():
            self.kaapana.services.instances[name] = {
                "id": len(self.kaapana.services.instances) + 2, "instance_name": name,
                "fernet_key": key, "remote": True, "ssl_check": False,
                "allowed_dags": [OPERATOR], "protocol": "https", "host": f"{name}.test",
                "port": 443, "token": "t"}

    def __call__(self, job: dict[str, Any]) -> str:
        instance = job["instance_name"]
        run = self.root / f"remote-{job['id']}"
        (run / "conf").mkdir(parents=True)
        (run / "conf" / "conf.json").write_text(json.dumps(job["conf_data"]), "utf-8")
        env = {"PATH": f"{BIN}:/usr/bin:/bin", "WORKFLOW_DIR": str(run),
               "OPERATOR_OUT_DIR": OPERATOR, "RUN_ID": f"federated-{job['id']}",
               "DAG_ID": job["dag_id"], "INSTANCE_NAME": self.names[instance],
               **self.kaapana.pod_env(SERVICES)}
        done = subprocess.run([str(BIN / "srcohort-kaapana"), "federated-site"], env=env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            return "failed"
        # HelperFederated apply_tar_action with whitelist_federated_learning=[".json"], then
        # fernet_encryptfile with the site's key, PUT at the presigned from_client name.
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path in sorted((run / OPERATOR).rglob("*")):
                if path.name.endswith(".json"):
                    tar.add(path, arcname=os.path.relpath(path, run), recursive=False)
        with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
            self.shared[instance] = tar.getnames()
        federated = job["conf_data"]["federated_form"]
        key = (f"{federated['federated_dir']}/{federated['federated_round']}/{instance}/"
               f"from_client/{OPERATOR}.tar")
        self.kaapana.store.put(job["conf_data"]["project_form"]["s3_bucket"], key,
                               Fernet(self.keys[instance].encode()).encrypt(buffer.getvalue()))
        return "finished"


def _central_conf(kaapana: Platform, project: str, workflow_id: str) -> dict[str, Any]:
    """What Kaapana's UI sends for a federated workflow: the central's forms, the remote
    DAG's form under external_schema_workflow_form, the chosen instances."""
    return {"workflow_form": {"username": "alice", "workflow_id": workflow_id},
            "data_form": {}, "project_form": kaapana.project_form(project),
            "external_schema_federated_form": {"federated_total_rounds": 1,
                                               "remote_dag_id": OPERATOR,
                                               "federated_operators": [OPERATOR]},
            "external_schema_workflow_form": {"cohort": "tavi-self-expanding", "k": "2",
                                              "username": "alice"},
            "external_schema_instance_names": list(SITES)}


def test_central_dag_combines_the_sites_aggregates(kaapana: Platform, airflow: Airflow,
                                                   gamma: str, tmp_path: Path) -> None:
    remote = RemoteSites(kaapana, tmp_path, {name: name for name in SITES})
    remote.register()
    kaapana.services.run_remote = remote
    kaapana.services.workflows.add("wf-federated-1")
    try:
        run = airflow.dag_test("srcohort-federated-count",
                               _central_conf(kaapana, gamma, "wf-federated-1"))
    finally:
        kaapana.services.run_remote = None
    assert run["state"] == "success", run["log"]
    assert kaapana.services.violations == []
    jobs = [j for j in kaapana.services.jobs.values() if j["conf_data"]["federated_form"]
            ["federated_dir"] == f"{OPERATOR}/{run['run_id']}"]
    assert sorted(j["instance_name"] for j in jobs) == list(SITES)
    assert all(j["dag_id"] == OPERATOR and j["username"] == "alice" for j in jobs)
    assert all(j["conf_data"]["workflow_form"]["cohort"] == "tavi-self-expanding" for j in jobs)
    # Only each site's aggregate left it.
    assert remote.shared == {name: [f"{OPERATOR}/{name}.json"] for name in SITES}
    combined = json.loads(kaapana.store.read(
        "project-gamma", f"srcohort/federated/{run['run_id']}/federated.json"))
    assert sorted(combined["sites"]) == list(SITES)
    keys = kaapana.store.keys("project-gamma", f"srcohort/federated/{run['run_id']}/")
    assert any(k.endswith("upset.png") for k in keys)
    # Each site's release is in the project's ledger and audit log, as the run's user.
    client = kaapana.client("system")
    runs = {f"{OPERATOR}/federated-{j['id']}": j["instance_name"] for j in jobs}
    released = {e["run"]: e for e in Ledger(client, "srcohort-gamma-").entries()
                if e["kind"] == "release" and e.get("run") in runs}
    assert {e["site"] for e in released.values()} == set(SITES)
    assert all(e["user"] == "alice" and e["state"] == "released" for e in released.values())
    audited = [e for e in audit_log(client, "srcohort-gamma-").verified()
               if e.get("run") in runs]
    assert sorted((e["action"], e["details"]["state"]) for e in audited) == \
        [("release", "released")] * len(SITES)


def _federated_run(kaapana: Platform, airflow: Airflow, remote: RemoteSites, workflow: str
                   ) -> dict[str, Any]:
    remote.shared.clear()
    kaapana.services.run_remote = remote
    kaapana.services.workflows.add(workflow)
    try:
        run = airflow.dag_test("srcohort-federated-count",
                               _central_conf(kaapana, "gamma", workflow))
    finally:
        kaapana.services.run_remote = None
    assert run["state"] == "success", run["log"]
    return run


def _releases(kaapana: Platform) -> list[dict[str, Any]]:
    return [e for e in Ledger(kaapana.client("system"), "srcohort-gamma-").entries()
            if e["kind"] == "release"]


def test_releases_wait_for_a_second_persons_approval(kaapana: Platform, airflow: Airflow,
                                                     gamma: str, tmp_path: Path) -> None:
    client = kaapana.client("system")
    remote = RemoteSites(kaapana, tmp_path, {name: name for name in SITES})
    remote.register()
    set_approval_policy(client, "srcohort-gamma-", required=True, actor=Actor("gamma-admin"))
    try:
        before = len(_releases(kaapana))
        run = _federated_run(kaapana, airflow, remote, "wf-approval-1")
        # Nothing left the sites and nothing was combined.
        assert remote.shared == {name: [] for name in SITES}
        assert not kaapana.store.keys("project-gamma", f"srcohort/federated/{run['run_id']}/")
        pending = _releases(kaapana)[before:]
        assert sorted(e["site"] for e in pending) == list(SITES)
        assert {e["state"] for e in pending} == {"pending"}
        # Run again before anyone decided: the releases still wait, none is requested anew.
        _federated_run(kaapana, airflow, remote, "wf-approval-2")
        assert len(_releases(kaapana)) == before + len(SITES)
        assert remote.shared == {name: [] for name in SITES}

        # Whoever asked cannot approve; another member can, through the site's DAG.
        refused = airflow.dag_test("srcohort-federated-decide", {
            "workflow_form": {"release": str(pending[0]["seq"]), "decision": "approve",
                              "username": "alice"},
            "data_form": {}, "project_form": kaapana.project_form(gamma)})
        assert refused["state"] == "failed"
        for entry in pending:
            decided = airflow.dag_test("srcohort-federated-decide", {
                "workflow_form": {"release": str(entry["seq"]), "decision": "approve",
                                  "reason": "checked the cells", "username": "bob"},
                "data_form": {}, "project_form": kaapana.project_form(gamma)})
            assert decided["state"] == "success", decided["log"]
        approvals = [e for e in Ledger(client, "srcohort-gamma-").entries()
                     if e["kind"] == "approval"]
        assert [(e["release"], e["user"]) for e in approvals[-len(SITES):]] == \
            [(e["seq"], "bob") for e in pending]

        # The next run ships exactly the approved aggregates and combines them.
        run = _federated_run(kaapana, airflow, remote, "wf-approval-3")
        assert remote.shared == {name: [f"{OPERATOR}/{name}.json"] for name in SITES}
        assert len(_releases(kaapana)) == before + len(SITES)
        combined = json.loads(kaapana.store.read(
            "project-gamma", f"srcohort/federated/{run['run_id']}/federated.json"))
        assert sorted(combined["sites"]) == list(SITES)
        shipped = [e for e in audit_log(client, "srcohort-gamma-").verified()
                   if e["action"] == "release" and e["details"]["state"] == "shipped"]
        assert sorted(e["details"]["release"] for e in shipped[-len(SITES):]) == \
            sorted(e["seq"] for e in pending)
        assert {e["result_sha256"] for e in shipped[-len(SITES):]} == \
            {e["aggregate_sha256"] for e in pending}

        # Shipped once: the run after that asks for a new release, which waits again.
        _federated_run(kaapana, airflow, remote, "wf-approval-4")
        assert len(_releases(kaapana)) == before + 2 * len(SITES)
        assert remote.shared == {name: [] for name in SITES}
    finally:      # withdraw what still waits: an open request blocks new ones
        for record in releases(Ledger(client, "srcohort-gamma-").entries()):
            if record.state == "pending":
                decide_release(client, "srcohort-gamma-", record.number, approve=False,
                               reason="test over", actor=Actor("gamma-admin"))
        set_approval_policy(client, "srcohort-gamma-", required=False,
                            actor=Actor("gamma-admin"))


def test_a_site_publishing_under_another_name_is_refused(kaapana: Platform, gamma: str,
                                                         tmp_path: Path) -> None:
    remote = RemoteSites(kaapana, tmp_path, {"site-b": "site-b", "site-c": "site-b"})
    remote.register()
    kaapana.services.run_remote = remote
    kaapana.services.workflows.add("wf-federated-2")
    run = tmp_path / "central"
    (run / "conf").mkdir(parents=True)
    (run / "conf" / "conf.json").write_text(json.dumps(
        _central_conf(kaapana, gamma, "wf-federated-2")), "utf-8")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "WORKFLOW_DIR": str(run), "RUN_ID": "central-2",
           "DAG_ID": "srcohort-federated-count", "OPERATOR_OUT_DIR": "srcohort-federated-central",
           **kaapana.pod_env(SERVICES)}
    try:
        done = subprocess.run([str(BIN / "srcohort-kaapana"), "federated-central"], env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        kaapana.services.run_remote = None
    assert done.returncode == 1
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("srcohort-kaapana ")]
    assert "site-c sent ['site-b.json'], not its one aggregate site-c.json" in line


def test_the_runs_study_decides_the_released_label(kaapana: Platform, gamma: str,
                                                   tmp_path: Path) -> None:
    """``workflow_form.study`` overrides the installed study: the lung-nodule study's own
    cohort runs and the release carries that study's label, not the installed one's."""
    from srcohort.study.load import load_study
    study = load_study("lung-nodules")
    run = tmp_path / "site-run"
    (run / "conf").mkdir(parents=True)
    (run / "conf" / "conf.json").write_text(json.dumps({
        "workflow_form": {"cohort": sorted(study.cohorts)[0], "k": "2", "study": study.name,
                          "username": "alice"},
        "data_form": {}, "project_form": kaapana.project_form(gamma)}), "utf-8")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "WORKFLOW_DIR": str(run), "RUN_ID": "site-study",
           "DAG_ID": OPERATOR, "OPERATOR_OUT_DIR": OPERATOR, "INSTANCE_NAME": "site-b",
           "SRCOHORT_STUDY": "tavi", **kaapana.pod_env(SERVICES)}
    done = subprocess.run([str(BIN / "srcohort-kaapana"), "federated-site"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    aggregate = json.loads((run / OPERATOR / "site-b.json").read_text("utf-8"))
    assert aggregate["cohort"]["name"] == sorted(study.cohorts)[0]
    assert aggregate["parameters"]["label"]["template"] == study.label.template


def test_site_dag_runs_alone(kaapana: Platform, airflow: Airflow, gamma: str) -> None:
    """The remote DAG also runs as an ordinary workflow of the project (no federated_form)."""
    run = airflow.dag_test(OPERATOR, {"workflow_form": {"cohort": "tavi-self-expanding",
                                                        "k": "3"},
                                      "data_form": {}, "project_form":
                                          kaapana.project_form(gamma)})
    assert run["state"] == "success", run["log"]
    pods = {p["task"].removeprefix(f"{run['run_id']}-"): p["namespace"]
            for p in airflow.pods() if run["run_id"] in p["task"]}
    assert pods == {"srcohort-project-scope": "services", OPERATOR: "project-gamma"}
