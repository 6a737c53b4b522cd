"""The Kaapana chart: helm lint, helm template, Kubernetes schema validation, manifest paths.

Kaapana's dag-installer-chart is not available here, so rendering uses a copy of the chart
whose charts/ holds an empty stand-in of that name (helm refuses to render a chart whose
declared dependency is missing). Kaapana's build rules for the chart and images are checked in
tests/test_kaapana_build.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.helm

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "extension" / "srcohort-workflow"
MANIFEST = REPO / "extension-manifest" / "srcohort-extension.yaml"
DAG_DOCKERFILE = REPO / "extension" / "docker" / "Dockerfile"
# Kaapana 0.6 installs microk8s 1.33 (server_installation.sh, DEFAULT_MICRO_VERSION).
K8S_VERSION = "1.33.0"
# What Kaapana's kube-helm passes to every extension (values of the platform release).
KAAPANA_GLOBALS = [
    "global.registry_url=registry.example.org/kaapana",
    "global.services_namespace=services",
    "global.admin_namespace=admin",
    "global.main_node_name=node1",
    "global.kaapana_build_version=0.6.0",
]
STANDALONE = ["dag-installer-chart.enabled=false"]


def _missing(what: str) -> None:
    """Fail on CI, where the tool must be installed; skip elsewhere."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{what} is required when CI=true")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="module")
def helm() -> str:
    local = REPO / ".tools" / "bin" / "helm"
    path = str(local) if os.access(local, os.X_OK) else shutil.which("helm")
    if path is None:
        _missing("helm (run `bash tools/install-helm.sh`)")
    return path


@pytest.fixture(scope="module")
def kv():
    try:
        import kubernetes_validate
    except ImportError:
        _missing("kubernetes-validate")
    return kubernetes_validate


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("helm-home")
    names = ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")
    return {**os.environ, **{n: str(home / n.lower()) for n in names}}


@pytest.fixture(scope="module")
def chart_with_dep(tmp_path_factory) -> Path:
    """The chart, with an empty stand-in for Kaapana's dag-installer-chart."""
    chart = tmp_path_factory.mktemp("chart") / CHART.name
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts", "Chart.lock", "*.tgz"))
    stand_in = chart / "charts" / "dag-installer-chart"
    stand_in.mkdir(parents=True)
    (stand_in / "Chart.yaml").write_text(
        "apiVersion: v1\nname: dag-installer-chart\nversion: 0.0.0\n"
        "description: Empty test stand-in for Kaapana's dag-installer-chart\n"
    )
    return chart


def run_helm(helm: str, env: dict[str, str], *args: str, check: bool = True):
    proc = subprocess.run([helm, *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def render(helm, env, chart: Path, sets=(), set_strings=()) -> list[dict]:
    args = ["template", "srcohort-workflow", str(chart), "--kube-version", K8S_VERSION]
    for s in sets:
        args += ["--set", s]
    for s in set_strings:
        args += ["--set-string", s]
    out = run_helm(helm, env, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def jobs(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Job"}


def env_of(job: dict) -> dict[str, dict]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_lint_as_shipped(helm, helm_env):
    proc = run_helm(helm, helm_env, "lint", str(CHART))
    assert "0 chart(s) failed" in proc.stdout
    problems = [ln for ln in proc.stdout.splitlines() if ln.startswith(("[ERROR]", "[WARNING]"))]
    # Until `helm dep up` fetched Kaapana's chart, helm warns that it is missing; nothing else.
    allowed = "chart directory is missing these dependencies: dag-installer-chart"
    assert [p for p in problems if allowed not in p] == []


@pytest.mark.parametrize("sets", [KAAPANA_GLOBALS, STANDALONE], ids=["kaapana", "standalone"])
def test_lint_strict_with_dependency(helm, helm_env, chart_with_dep, sets):
    args = ["lint", "--strict", str(chart_with_dep)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, helm_env, *args)
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "sets",
    [
        KAAPANA_GLOBALS,
        STANDALONE,
        STANDALONE + ["standalone.dagsHostPath=/home/kaapana/workflows/dags"],
    ],
    ids=["kaapana", "standalone-pvc", "standalone-hostpath"],
)
def test_rendered_manifests_validate(helm, helm_env, chart_with_dep, kv, sets):
    docs = render(helm, helm_env, chart_with_dep, sets)
    assert docs
    for doc in docs:
        assert kv.validate(doc, K8S_VERSION, strict=True) == "1.33", doc["kind"]


def test_install_and_uninstall_jobs_run_srcohort_as_system(helm, helm_env, chart_with_dep):
    """Hook Jobs like Kaapana's meta-init Job: the processing image of the platform version,
    Kaapana's system user from its Secrets, Airflow's DAG volume for the settings file."""
    found = jobs(render(helm, helm_env, chart_with_dep, KAAPANA_GLOBALS))
    assert set(found) == {"srcohort-install", "srcohort-uninstall"}
    hooks = {name: job["metadata"]["annotations"]["helm.sh/hook"] for name, job in found.items()}
    assert hooks == {"srcohort-install": "post-install,post-upgrade",
                     "srcohort-uninstall": "pre-delete"}
    for step, job in (("install", found["srcohort-install"]),
                      ("uninstall", found["srcohort-uninstall"])):
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert job["metadata"]["namespace"] == "services"
        assert container["image"] == "registry.example.org/kaapana/srcohort:0.6.0"
        env = env_of(job)
        assert env["SRCOHORT_STEP"]["value"] == step
        assert env["KAAPANA_PROJECT_USER_NAME"]["value"] == "system"
        assert env["KAAPANA_PROJECT_USER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "system-user-password", "key": "system-user-password"}
        assert env["KAAPANA_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == \
            "oidc-client-secret"
        assert env["SRCOHORT_SETTINGS_FILE"]["value"].startswith(container["volumeMounts"][0][
            "mountPath"])
        (volume,) = pod["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == "dags-pv-claim"


def test_standalone_job_copies_dags(helm, helm_env, chart_with_dep):
    docs = render(helm, helm_env, chart_with_dep, STANDALONE)
    job = jobs(docs)["dag-srcohort-standalone-copy"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "dag-srcohort:0.0.0"
    assert "/kaapana/tmp/dags/." in container["args"][0]
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == "/kaapana/mounted/workflows/dags"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == "dags-pv-claim"
    assert pod["restartPolicy"] == "Never"


def test_extension_params_reach_the_install_job(helm, helm_env, chart_with_dep):
    docs = render(helm, helm_env, chart_with_dep,
                  KAAPANA_GLOBALS + ["global.opensearch_index_prefix=site-a."],
                  ["global.k_anonymity_threshold=11"])
    env = env_of(jobs(docs)["srcohort-install"])
    assert env["SRCOHORT_INDEX_PREFIX"]["value"] == "site-a."
    assert env["SRCOHORT_K"]["value"] == "11"
    assert env["SRCOHORT_STUDY"]["value"] == ""          # the packaged default
    docs = render(helm, helm_env, chart_with_dep, KAAPANA_GLOBALS,
                  ["global.study=lung-nodules"])
    for job in ("srcohort-install", "srcohort-uninstall"):
        assert env_of(jobs(docs)[job])["SRCOHORT_STUDY"]["value"] == "lung-nodules"


@pytest.mark.parametrize(
    "bad", ["global.k_anonymity_threshold=1", "global.opensearch_index_prefix=Upper*",
            "global.opensearch_index_prefix=project_x", "global.study=no study;"]
)
def test_bad_extension_params_fail(helm, helm_env, chart_with_dep, bad):
    args = ["template", str(chart_with_dep), "--set-string", bad]
    proc = run_helm(helm, helm_env, *args, check=False)
    assert proc.returncode != 0
    assert bad.split("=")[0].removeprefix("global.") in proc.stderr


def test_chart_follows_kaapana_conventions():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["type"] == "application"
    assert {"kaapanaworkflow", "kaapanaexperimental"} <= set(chart["keywords"])
    assert {"ui-visible-name", "documentation"} <= set(chart["annotations"])
    deps = yaml.safe_load((CHART / "requirements.yaml").read_text())["dependencies"]
    assert [d["name"] for d in deps] == ["dag-installer-chart"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["global"] == {"image": "dag-srcohort", "action": "copy"}
    # kube-helm sets the chart's own global strings after the extension params.
    assert not set(values["extension_params"]) & set(values["global"])
    assert values["extension_params"]["k_anonymity_threshold"]["default"] == "5"


def _labels(dockerfile: Path) -> dict[str, str]:
    return dict(re.findall(r'^LABEL (\w+)="([^"]*)"', dockerfile.read_text(), re.M))


def test_manifest_matches_chart_and_dockerfiles():
    manifest = yaml.safe_load(MANIFEST.read_text())
    chart = yaml.safe_load((REPO / manifest["chart"]["path"] / "Chart.yaml").read_text())
    values = yaml.safe_load((REPO / manifest["chart"]["path"] / "values.yaml").read_text())
    assert manifest["kind"] == "workflow"
    assert manifest["requires"]["kaapana"] == ">=0.6.0"
    assert (manifest["chart"]["name"], manifest["version"]) == (chart["name"], chart["version"])
    assert manifest["chart"]["package"] == f"{chart['name']}-{chart['version']}.tgz"
    for application in manifest["applications"]:
        app_chart = yaml.safe_load((REPO / application["path"] / "Chart.yaml").read_text())
        assert "kaapanaapplication" in app_chart["keywords"]
        assert application["package"] == f"{app_chart['name']}-{app_chart['version']}.tgz"
        assert application["name"] == app_chart["name"]
        assert app_chart["version"] == manifest["version"]
    images = {image["name"]: image for image in manifest["images"]}
    assert values["global"]["image"] in images
    for name, image in images.items():
        dockerfile = REPO / image["dockerfile"]
        assert _labels(dockerfile)["IMAGE"] == name
        assert (dockerfile.parent / ".dockerignore").is_file()
    for dag in manifest["dags"]:
        assert f'"{dag["id"]}"' in (REPO / dag["file"]).read_text(), dag
    assert sorted({dag["file"] for dag in manifest["dags"]}) == \
        sorted(str(p.relative_to(REPO)) for p in REPO.glob(manifest["dag_files"]))


BUILDER = REPO / "extension" / "srcohort-builder"
# kube-helm adds the project of a kaapanamultiinstallable chart (routes.py helm_install_chart).
PROJECT_GLOBALS = ["global.project_id=0b7c1d2e-project", "global.project_name=alpha",
                   "global.instance_name=site-a"]


def render_builder(helm, env, sets=()) -> list[dict]:
    args = ["template", "cohort-builder", str(BUILDER), "--kube-version", K8S_VERSION]
    for s in [*KAAPANA_GLOBALS, *PROJECT_GLOBALS, *sets]:
        args += ["--set", s]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, env, *args).stdout) if doc]


def test_builder_chart_lints_and_validates(helm, helm_env, kv):
    args = ["lint", "--strict", str(BUILDER)]
    for s in [*KAAPANA_GLOBALS, *PROJECT_GLOBALS]:
        args += ["--set", s]
    proc = run_helm(helm, helm_env, *args)
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout
    docs = render_builder(helm, helm_env)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["Deployment", "Ingress", "Middleware", "Middleware", "Service"]
    for doc in docs:
        if doc["apiVersion"].startswith("traefik.io/"):     # Traefik's CRD: not in the schemas
            continue
        assert kv.validate(doc, K8S_VERSION, strict=True) == "1.33", doc["kind"]


def test_builder_is_a_project_application_behind_kaapanas_auth(helm, helm_env):
    """As Kaapana's application charts (jupyterlab, mitk-workbench): multi-installable, routed
    at /applications/project/<id>/release/<release> on the websecure entrypoint (auth-check),
    the processing image, no credentials, declared resources."""
    chart = yaml.safe_load((BUILDER / "Chart.yaml").read_text())
    assert {"kaapanaapplication", "kaapanamultiinstallable"} <= set(chart["keywords"])
    docs = {d["kind"] + "/" + d["metadata"]["name"]: d for d in render_builder(helm, helm_env)}
    ingress = docs["Ingress/cohort-builder"]
    notes = ingress["metadata"]["annotations"]
    assert notes["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    assert notes["kaapana.ai/type"] == "application"
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/applications/project/0b7c1d2e-project/release/cohort-builder"
    strip = docs["Middleware/cohort-builder-strip"]["spec"]["stripPrefix"]["prefixes"]
    assert strip == [path["path"]]
    assert "cohort-builder-strip@kubernetescrd" in \
        notes["traefik.ingress.kubernetes.io/router.middlewares"]
    pod = docs["Deployment/cohort-builder"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.org/kaapana/srcohort:0.6.0"
    assert container["command"] == ["python", "-m", "srcohort.kaapana.builder"]
    assert "--project-id=0b7c1d2e-project" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert not [name for name in env if "PASSWORD" in name or "SECRET" in name]
    assert not [e for e in env.values() if "valueFrom" in e]
    assert env["INSTANCE_NAME"]["value"] == "site-a"
    assert env["SRCOHORT_INDEX_PREFIX"]["value"] == "srcohort-"
    assert {"requests", "limits"} <= set(container["resources"])
    (ca,) = [v for v in pod["volumes"] if "secret" in v]
    assert ca["secret"] == {"secretName": "srcohort-platform-ca", "optional": True}


def test_builder_needs_its_project(helm, helm_env):
    args = ["template", str(BUILDER), *sum((["--set", s] for s in KAAPANA_GLOBALS), [])]
    proc = run_helm(helm, helm_env, *args, check=False)
    assert proc.returncode != 0 and "global.project_id" in proc.stderr


def test_builder_page_addresses_its_files_relative_to_itself():
    """Behind the strip-prefix route the page lives at <path>/: an absolute URL would leave it."""
    static = REPO / "srcohort" / "builder" / "static"
    page = (static / "index.html").read_text() + (static / "builder.js").read_text()
    assert not re.search(r"""(src|href)="/|fetch\(`/""", page)
    assert 'src="static/builder.js"' in page and "fetch(`api/${route}`" in page
