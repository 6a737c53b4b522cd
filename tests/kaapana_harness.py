"""A Kaapana 0.6 platform for the tests, every service real where one can run here.

Keycloak's role: tests/platform/issuer.py. OpenSearch with Kaapana's security configuration:
tests/platform/opensearch.py. CTP + dcm4chee: Orthanc (tests/platform/pacs.py). MinIO: the
real server (tests/platform/bucket.py). kaapana-backend and AII: a recording server that checks
requests against their schemas (tests/platform/backend.py). Airflow: the real one (2.11), its
DAGs run with ``dag.test()`` against a stand-in of Kaapana's plugin
(tests/platform/kaapana_plugin) whose processing containers run as processes or in the built
image (tests/platform/pods.py).

Projects ``admin``, ``alpha``, ``delta`` (workflows run in the built image), ``beta`` (the
outsider) and ``gamma`` (federated runs), set up as Kaapana's AII sets projects up: ids, buckets
and MinIO policies, a project user per project in the ``principal-investigator`` role (so its
token carries ``opensearch: [admin_project_<id>]`` and ``policy: [admin_project_<id>]``), and
the Secrets ``project-user-credentials``, ``oidc-client-secret`` in each project namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from opensearchpy import OpenSearch

from srcohort.index.connection import connect
from srcohort.server import FetchError
from tests.platform import pacs as pacs_module
from tests.platform.backend import KaapanaServices
from tests.platform.bucket import ObjectStore, minio_binary
from tests.platform.issuer import Issuer
from tests.platform.opensearch import NODE_NAME, KaapanaOpenSearch
from tests.platform.pacs import Pacs
from tests.plugin_opensearch import free_port

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "extension" / "docker" / "files"
KAAPANA_PLUGIN = REPO / "tests" / "platform" / "kaapana_plugin"
BIN = Path(sys.executable).parent
ON_CI = os.environ.get("CI", "").strip().lower() == "true"
RESULT = "SRCOHORT-TEST-RESULT "
INSTANCE = "site-a"
SERVICES = "services"
CLIENT_SECRET = "kaapana-oidc-client-secret"

DAG_TEST_SCRIPT = """
import json, sys, time
from airflow.models import DagBag
dag = DagBag(dag_folder=sys.argv[1], include_examples=False).get_dag(sys.argv[2])
start = time.monotonic()
run = dag.test(run_conf=json.loads(sys.argv[3]))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print(sys.argv[4] + json.dumps({"state": str(run.state), "run_id": run.run_id,
                                "tasks": states, "seconds": round(time.monotonic() - start, 1)}))
"""


def missing(what: str) -> None:
    """Fail on CI, where everything must be installed; skip elsewhere."""
    (pytest.fail if ON_CI else pytest.skip)(f"{what} not available")


@dataclass
class Platform:
    root: Path
    issuer: Issuer
    opensearch: KaapanaOpenSearch
    pacs: Pacs
    store: ObjectStore
    services: KaapanaServices
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    @property
    def opensearch_url(self) -> str:
        """``host:port`` as Kaapana hands it to pods (no scheme: https)."""
        return f"127.0.0.1:{self.opensearch.port}"

    def client(self, user: str) -> OpenSearch:
        """A client of ``user``'s, verifying TLS against the platform CA."""
        return connect(self.opensearch.url, ca_certs=str(self.opensearch.ca_file),
                       tls_server_name=NODE_NAME, token_source=lambda: self.issuer.token_for(user))

    def project_form(self, name: str) -> dict[str, Any]:
        """``project_form`` as Kaapana's UI puts it into a run conf."""
        p = self.projects[name]
        return {key: p[key] for key in ("id", "name", "opensearch_index", "s3_bucket",
                                        "kubernetes_namespace")}

    def user(self, project: str) -> str:
        return f"{project}-project-user"

    def pod_env(self, namespace: str, **extra: str) -> dict[str, str]:
        """What KaapanaBaseOperator gives a pod in ``namespace``, Secrets resolved."""
        user, password = ("system", self.passwords["system"]) if namespace == SERVICES else (
            self.secrets[namespace]["project-user-credentials"]["project-user"],
            self.secrets[namespace]["project-user-credentials"]["project-user-password"])
        return {"SERVICES_NAMESPACE": SERVICES, "ADMIN_NAMESPACE": "admin",
                **self.service_urls(), "KAAPANA_PROJECT_USER_NAME": user,
                "KAAPANA_PROJECT_USER_PASSWORD": password,
                "KAAPANA_CLIENT_SECRET": CLIENT_SECRET, **extra}

    def service_urls(self) -> dict[str, str]:
        return {"KEYCLOAK_URL": self.issuer.base_url, "OPENSEARCH_URL": self.opensearch_url,
                "DICOM_WEB_FILTER_URL": self.pacs.dicomweb, "AII_URL": self.services.url,
                "KAAPANA_BACKEND_URL": self.services.url, "MINIO_URL": self.store.url,
                "KUBE_HELM_URL": "http://127.0.0.1:9", "NOTIFICATION_URL": "http://127.0.0.1:9"}

    def add_project(self, name: str) -> None:
        """What AII's project creation leaves behind, and the project user's Secrets."""
        project_id = str(uuid.uuid4())
        project = {"id": project_id, "name": name, "description": f"{name} project",
                   "external_id": None, "opensearch_index": f"project_{name}",
                   "s3_bucket": f"project-{name}", "kubernetes_namespace": f"project-{name}"}
        self.projects[name] = project
        self.services.add_project(project)
        self.store.add_project(project["s3_bucket"], project_id)
        user = self.user(name)
        self.passwords[user] = self.issuer.add_user(
            user, opensearch=[f"admin_project_{project_id}"],
            policy=[f"admin_project_{project_id}"])
        self.secrets[f"project-{name}"] = {
            "project-user-credentials": {"project-user": user,
                                         "project-user-password": self.passwords[user]},
            "oidc-client-secret": {"oidc-client-secret": CLIENT_SECRET},
            "srcohort-pseudonym": {"secret": f"pseudonym-secret-of-{name}"},
            "srcohort-platform-ca": {"ca.crt": self.opensearch.ca_file.read_text("utf-8")}}


@pytest.fixture(scope="session")
def kaapana() -> Iterator[Platform]:
    """The platform, with projects ``alpha`` and ``beta``; torn down after the session."""
    if not pacs_module.available():
        missing("Orthanc with the DICOMweb plugin (apt-get install orthanc orthanc-dicomweb)")
    if not minio_binary().is_file():
        missing(f"MinIO's server at {minio_binary()} (bash tools/install-minio.sh)")
    root = Path(tempfile.mkdtemp(prefix="srcohort-kaapana-"))
    root.chmod(0o755)
    issuer = Issuer(CLIENT_SECRET).start()
    system_password = issuer.add_user("system", opensearch=["admin"], policy=["consoleAdmin"])
    opensearch = KaapanaOpenSearch(root / "opensearch", free_port(),
                                   openid_connect_url=issuer.config_url,
                                   admin_token=lambda: issuer.token_for("system"))
    started: list[Any] = [issuer]
    try:
        start = time.monotonic()
        try:
            opensearch.start(timeout=300)
        except FetchError as exc:
            missing(f"OpenSearch security plugin ({exc})")
        started.append(opensearch)
        print(f"Kaapana-configured OpenSearch up in {time.monotonic() - start:.1f} s")
        pacs = Pacs(root / "pacs", free_port(), free_port()).start()
        started.append(pacs)
        store = ObjectStore(root / "minio", free_port(), free_port(),
                            openid_config_url=issuer.config_url,
                            client_secret=CLIENT_SECRET).start()
        started.append(store)
        services = KaapanaServices().start()
        started.append(services)
        platform = Platform(root, issuer, opensearch, pacs, store, services,
                            passwords={"system": system_password})
        platform.secrets[SERVICES] = {
            "system-user-password": {"system-user-password": system_password},
            "oidc-client-secret": {"oidc-client-secret": CLIENT_SECRET}}
        for name in ("admin", "alpha", "beta", "gamma", "delta"):
            platform.add_project(name)
        yield platform
    finally:
        for service in reversed(started):
            service.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Airflow:
    """Airflow 2.11 with srcohort's DAG folder and the stand-in of Kaapana's plugin."""

    env: dict[str, str]
    harness: dict[str, Any]
    config_file: Path

    def write(self) -> None:
        self.config_file.write_text(json.dumps(self.harness), "utf-8")

    def dag_test(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        self.write()
        proc = subprocess.run([sys.executable, "-c", DAG_TEST_SCRIPT, str(DAGS), dag_id,
                               json.dumps(conf), RESULT], env=self.env, capture_output=True,
                              text=True, timeout=1800)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)]
        if proc.returncode != 0 or not lines:
            pytest.fail(f"dag.test {dag_id}: exit {proc.returncode}\n{proc.stdout[-6000:]}\n"
                        f"{proc.stderr[-6000:]}")
        result = json.loads(lines[-1][len(RESULT):])
        result["log"] = proc.stdout[-20000:] + proc.stderr[-20000:]
        print(f"dag.test {dag_id}: {result['state']} in {result['seconds']} s {result['tasks']}")
        return result

    def pods(self) -> list[dict[str, Any]]:
        path = Path(self.harness["pods"])
        return [json.loads(ln) for ln in path.read_text("utf-8").splitlines()] \
            if path.exists() else []

    def volume(self, namespace: str) -> Path:
        return Path(self.harness["volumes"][namespace])


IMAGE_STORE = Path(os.environ.get("SRCOHORT_CACHE") or ("/var/cache/srcohort" if os.geteuid() == 0
                   else Path.home() / ".cache" / "srcohort")) / "buildah"
BUILT_IMAGES = {"registry.test/srcohort:0.6.0": "localhost/srcohort:0.6.0"}


def image_runner() -> dict[str, Any]:
    """Pods in the images of tools/build-kaapana-images.sh. Only with $SRCOHORT_TEST_IMAGES
    (`make kaapana-images` builds them first, then sets it): the runs take ten minutes, and
    images left from an older build would test old code."""
    if not os.environ.get("SRCOHORT_TEST_IMAGES"):
        pytest.skip("the images run under `make kaapana-images`")
    root, runroot = IMAGE_STORE / "storage", IMAGE_STORE / "run"
    found = shutil.which("buildah") and subprocess.run(
        ["buildah", "--storage-driver", "vfs", "--root", str(root), "--runroot", str(runroot),
         "inspect", "--type", "image", *BUILT_IMAGES.values()], capture_output=True).returncode == 0
    if not found:
        pytest.fail("srcohort's images are not built: run tools/build-kaapana-images.sh")
    return {"mode": "image", "root": str(root), "runroot": str(runroot), "images": BUILT_IMAGES}


def airflow_home(tmp: Path) -> dict[str, str]:
    """An isolated Airflow (SQLite), migrated."""
    if not (BIN / "airflow").exists():
        missing("apache-airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp / "airflow-home"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    start = time.monotonic()
    proc = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"airflow db migrate: {time.monotonic() - start:.1f} s")
    return env


def kaapana_airflow(base_env: dict[str, str], root: Path, *, services_urls: dict[str, str],
                    secrets_by_namespace: dict[str, Any], cluster: dict[str, str],
                    pacs_url: str, runner: dict[str, Any] | None = None,
                    namespaces: tuple[str, ...] = ()) -> Airflow:
    """Airflow as Kaapana's: its environment (kaapana_global_variables, the service URLs of
    the scheduler deployment) and the harness config the plug-in stand-in reads."""
    volumes = {}
    for namespace in (SERVICES, *namespaces):
        volumes[namespace] = str(root / "volumes" / namespace)
        Path(volumes[namespace]).mkdir(parents=True, exist_ok=True)
    for folder in ("uploads", "incoming"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    harness = {"volumes": volumes, "uploads": str(root / "uploads"),
               "incoming": str(root / "incoming"), "secrets": secrets_by_namespace,
               "cluster": cluster, "pacs": pacs_url, "pods": str(root / "pods.jsonl"),
               "runner": runner or {"mode": "process",
                                    "command": [str(BIN / "srcohort-kaapana")],
                                    "path": os.pathsep.join([str(BIN), "/usr/bin", "/bin"])}}
    config_file = root / "harness.json"
    env = {**base_env, **services_urls, "SRCOHORT_HARNESS": str(config_file),
           "PYTHONPATH": os.pathsep.join([str(KAAPANA_PLUGIN), str(REPO)]),
           "SERVICES_NAMESPACE": SERVICES, "ADMIN_NAMESPACE": "admin",
           "DEFAULT_REGISTRY": "registry.test", "KAAPANA_BUILD_VERSION": "0.6.0",
           "INSTANCE_NAME": INSTANCE}
    airflow = Airflow(env, harness, config_file)
    airflow.write()
    return airflow
