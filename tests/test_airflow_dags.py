"""The Kaapana DAGs under Airflow itself: DagBag parsing, and dag.test() runs against OpenSearch.

Airflow reads its configuration (AIRFLOW_HOME, the database, the DAG folder) once, when it is
first imported, so every Airflow call runs in a subprocess with its own AIRFLOW_HOME, migrated
once per session; this test process never imports Airflow and the rest of the session is not
affected by its global state. A subprocess reports back one JSON line marked with ``RESULT``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from srcohort.audit.actor import Actor
from srcohort.audit.log import audit_log
from srcohort.cohort.library import resolve_cohort, saved_cohorts
from srcohort.federated import Ledger, decide_release, set_approval_policy
from srcohort.cohort.run import count_patients
from srcohort.index.opensearch import index_names

pytestmark = [pytest.mark.airflow, pytest.mark.opensearch]

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
OPERATORS = REPO / "operators"
BIN = Path(sys.executable).parent
RESULT = "SRCOHORT-TEST-RESULT "
SECRET_ENV = "SRCOHORT_TEST_SECRET"
PROJECT_FORM = {"opensearch_index": "project_admin"}

DAGBAG_SCRIPT = """
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dags = {dag.dag_id: {
    "default_args": {k: v for k, v in dag.default_args.items() if k in ("ui_forms", "ui_visible")},
    "tasks": {t.task_id: {"type": type(t).__name__, "upstream": sorted(t.upstream_task_ids),
                          "attrs": {k: getattr(t, k, None) for k in (
                              "image", "cmds", "arguments", "env_vars", "operator_in_dir",
                              "operator_out_dir", "clean_workflow_dir")},
                          "secrets": [s.to_dict() for s in getattr(t, "secrets", None) or []]}
              for t in dag.tasks}} for dag in bag.dags.values()}
print(sys.argv[2] + json.dumps({"import_errors": bag.import_errors, "dags": dags}, default=str))
"""

DAG_TEST_SCRIPT = """
import json, sys, time
from airflow.models import DagBag
dag = DagBag(dag_folder=sys.argv[1], include_examples=False).get_dag(sys.argv[2])
start = time.monotonic()
run = dag.test(run_conf=json.loads(sys.argv[3]))
seconds = round(time.monotonic() - start, 1)
xcom = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print(sys.argv[4] + json.dumps({"state": str(run.state), "run_id": run.run_id, "xcom": xcom,
                                "states": states, "seconds": seconds}))
"""

# Stand-ins for the three Kaapana modules the operators import, with the constructor arguments
# of Kaapana 0.6's classes: enough to build the DAGs as Kaapana would, without Kubernetes.
KAAPANA_STUBS = {
    "kaapana/__init__.py": "",
    "kaapana/blueprints/__init__.py": "",
    "kaapana/blueprints/kaapana_global_variables.py":
        'DEFAULT_REGISTRY = "registry.test"\nKAAPANA_BUILD_VERSION = "0.6.0"\n',
    "kaapana/operators/__init__.py": "",
    "kaapana/operators/KaapanaBaseOperator.py": """
from airflow.models import BaseOperator

class KaapanaBaseOperator(BaseOperator):
    def __init__(self, dag, name, image=None, input_operator=None, operator_in_dir=None,
                 operator_out_dir=None, cmds=None, arguments=None, env_vars=None,
                 image_pull_secrets=None, secrets=None, **kwargs):
        self.name, self.image, self.cmds, self.arguments = name, image, cmds, arguments
        self.env_vars, self.secrets = env_vars or {}, secrets or []
        self.operator_out_dir = operator_out_dir or name
        self.operator_in_dir = (input_operator.operator_out_dir if input_operator is not None
                                else operator_in_dir)
        super().__init__(dag=dag, task_id=name, **kwargs)
""",
    "kaapana/operators/LocalWorkflowCleanerOperator.py": """
from kaapana.operators.KaapanaBaseOperator import KaapanaBaseOperator

class LocalWorkflowCleanerOperator(KaapanaBaseOperator):
    def __init__(self, dag, clean_workflow_dir=True, **kwargs):
        self.clean_workflow_dir = clean_workflow_dir
        super().__init__(dag=dag, name="workflow-cleaner", **kwargs)
""",
}


def _missing(what: str) -> None:
    """Fail on CI, where everything must be installed; skip elsewhere."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{what} is required when CI=true")
    pytest.skip(f"{what} not available")


def _run_python(script: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter; return the JSON it printed after ``RESULT``."""
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                          text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-8000:]}\n"
                    f"--- stderr\n{proc.stderr[-8000:]}")
    return json.loads(lines[-1][len(RESULT):])


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of an isolated Airflow (SQLite in a temp AIRFLOW_HOME), migrated once."""
    if importlib.util.find_spec("airflow") is None or not (BIN / "airflow").exists():
        _missing("apache-airflow")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "SRCOHORT_WORKFLOW_DIR": str(home / "workflows")}
    start = time.monotonic()
    proc = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"airflow db migrate: {time.monotonic() - start:.1f} s")
    return env


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One site, four patients: the smallest export that still has every kind of input."""
    from srcohort.demo.consortium import generate_consortium
    out = tmp_path_factory.mktemp("airflow-consortium")
    generate_consortium(out, sites=1, patients_per_site=4, seed=3)
    return out / "site-01"


def _conf(workflow_form: dict[str, str]) -> dict[str, Any]:
    """A run conf shaped like the one Kaapana's UI sends."""
    return {"workflow_form": workflow_form, "data_form": {}, "project_form": PROJECT_FORM}


def _dag_test(env: dict[str, str], dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    result = _run_python(DAG_TEST_SCRIPT, [str(DAGS), dag_id, json.dumps(conf), RESULT], env)
    print(f"dag.test {dag_id}: {result['seconds']} s")
    return result


def _series_uids(dicom_dir: Path) -> set[str]:
    return {pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
            for path in dicom_dir.rglob("*.dcm")}


def _json_documents(text: str) -> list[Any]:
    """The JSON documents the CLI printed one after another (``--json``, one per command)."""
    decoder, documents, pos = json.JSONDecoder(), [], 0
    while text[pos:].strip():
        pos += len(text[pos:]) - len(text[pos:].lstrip())
        document, pos = decoder.raw_decode(text, pos)
        documents.append(document)
    return documents


def test_dagbag_has_every_dag_without_import_errors(airflow_env: dict[str, str]) -> None:
    bag = _run_python(DAGBAG_SCRIPT, [str(DAGS), RESULT], airflow_env)
    assert bag["import_errors"] == {}
    assert set(bag["dags"]) == {"srcohort-convert-index", "srcohort-cohort-export",
                                "srcohort-federated-export"}
    for dag in bag["dags"].values():
        assert dag["default_args"]["ui_visible"] is True
        form = dag["default_args"]["ui_forms"]["workflow_form"]
        assert form["type"] == "object"
        for field in form["properties"].values():
            assert field["title"] and field["description"] and field["type"] == "string"
    tasks = bag["dags"]["srcohort-convert-index"]["tasks"]
    assert tasks["srcohort-index"]["upstream"] == ["srcohort-convert"]
    tasks = bag["dags"]["srcohort-federated-export"]["tasks"]
    assert tasks["srcohort-federated-combine"]["upstream"] == ["srcohort-federated-site"]
    assert tasks["srcohort-training-export"]["upstream"] == ["srcohort-federated-combine"]
    form = bag["dags"]["srcohort-federated-export"]["default_args"]["ui_forms"]["workflow_form"]
    assert {"cohort", "k", "split", "output_format"} <= set(form["properties"])
    assert form["properties"]["output_format"]["enum"] == ["unified", "dicom", "both"]


def test_convert_index_and_cohort_export_dags(airflow_env: dict[str, str], opensearch_url: str,
                                              opensearch_client, index_prefix: str,
                                              site_dir: Path) -> None:
    env = {**airflow_env, "OPENSEARCH_URL": opensearch_url, SECRET_ENV: "airflow-test-secret"}

    run = _dag_test(env, "srcohort-convert-index", _conf(
        {"site_dir": str(site_dir), "site": "site-01", "index_prefix": index_prefix}))
    assert run["state"] == "success", run
    converted = (Path(env["SRCOHORT_WORKFLOW_DIR"]) / run["run_id"] / "srcohort-convert" / "dicom")
    expected_series = len(_series_uids(converted))
    assert expected_series > 0
    series_index, _ = index_names(index_prefix)
    assert opensearch_client.count(index=series_index)["count"] == expected_series
    assert run["xcom"]["srcohort-index"]["series"] == expected_series
    assert run["xcom"]["srcohort-convert"]["site"] == "site-01"

    cohort = "tavi-self-expanding"
    run = _dag_test(env, "srcohort-cohort-export", _conf(
        {"cohort": cohort, "index_prefix": index_prefix, "secret_env": SECRET_ENV}))
    assert run["state"] == "success", run
    result = run["xcom"]["srcohort-cohort-export"]
    counts = count_patients(opensearch_client, resolve_cohort(cohort), prefix=index_prefix)
    assert result["counts"] == counts
    truth = json.loads((site_dir.parent / "ground_truth.json").read_text("utf-8"))
    assert result["patients"] == counts["total"] == truth["example_cohort"]["total"] > 0
    assert Path(result["manifest"]).is_file()

    federated_form = {"cohort": cohort, "site": "site-01", "k": "2", "split": "60/20/20",
                      "output_format": "both", "index_prefix": index_prefix,
                      "secret_env": SECRET_ENV, "username": "dr.weber"}
    run = _dag_test(env, "srcohort-federated-export", _conf(federated_form))
    assert run["state"] == "success", run
    aggregate = run["xcom"]["srcohort-federated-site"]
    assert aggregate["site"] == "site-01" and aggregate["k"] == 2
    assert aggregate["counts"]["patients"] == (counts["total"] if counts["total"] >= 2
                                               else "suppressed")
    assert "site-01" in run["xcom"]["srcohort-federated-combine"]["table"]
    export = run["xcom"]["srcohort-training-export"]
    assert export["unified"]["patients"] == export["dicom"]["patients"] == counts["total"]
    out = Path(env["SRCOHORT_WORKFLOW_DIR"]) / run["run_id"] / "srcohort-training-export"
    assert (out / "unified" / "COMPLETE").is_file()
    manifest = json.loads((out / "unified" / "manifest.json").read_text("utf-8"))
    assert manifest["settings"]["split"] == {"train": 0.6, "val": 0.2, "test": 0.2}
    combined = (Path(env["SRCOHORT_WORKFLOW_DIR"]) / run["run_id"] /
                "srcohort-federated-combine")
    assert {p.name for p in combined.iterdir()} >= {"federated.json", "upset.png",
                                                    "label-balance.png"}
    # The release is in the site's ledger and, with the export, in its audit log, as the
    # user Kaapana named in the form and this run.
    who = ("dr.weber", f"srcohort-federated-export/{run['run_id']}")
    [released] = [e for e in Ledger(opensearch_client, index_prefix).entries()
                  if e["kind"] == "release"]
    assert (released["user"], released["run"]) == who and released["aggregate"] == aggregate
    audited = [(e["action"], e["run"].split("/")[0], e["user"]) for e in
               audit_log(opensearch_client, index_prefix).verified()]
    os_user = audited[0][2]
    assert audited == [("index", "srcohort-convert-index", os_user),
                       ("count", "srcohort-cohort-export", os_user),
                       ("export", "srcohort-cohort-export", os_user),
                       ("release", "srcohort-federated-export", "dr.weber"),
                       ("export", "srcohort-federated-export", "dr.weber")]
    assert all(e["run"] == who[1] for e in audit_log(opensearch_client, index_prefix).entries()
               if e["user"] == "dr.weber")
    assert json.loads((out / "unified" / "croissant.json").read_text("utf-8"))[
        "srcohort:audit"]["srcohort:entries"][0]["action"] == "export"

    # With approval required the aggregate waits: nothing to combine, the export still runs,
    # and another person's approval writes the file.
    set_approval_policy(opensearch_client, index_prefix, required=True, actor=Actor("admin"))
    run = _dag_test(env, "srcohort-federated-export", _conf(federated_form))
    assert run["state"] == "success", run
    pending = run["xcom"]["srcohort-federated-site"]
    assert pending == {"release": pending["release"], "state": "pending"}
    assert run["states"]["srcohort-federated-combine"] == "skipped"
    assert run["states"]["srcohort-training-export"] == "success"
    site_out = (Path(env["SRCOHORT_WORKFLOW_DIR"]) / run["run_id"] / "srcohort-federated-site")
    assert not list(site_out.glob("*.json"))
    decide_release(opensearch_client, index_prefix, pending["release"], approve=True,
                   out=site_out / "site-01.json", actor=Actor("dr.braun"))
    assert json.loads((site_out / "site-01.json").read_text("utf-8")) == aggregate


def test_kaapana_steps_run_the_cli_like_the_container(
        airflow_env: dict[str, str], opensearch_url: str, opensearch_client, index_prefix: str,
        site_dir: Path, tmp_path: Path) -> None:
    """With Kaapana importable, the DAGs hold container steps; their scripts must work.

    Each script runs with the environment a Kaapana 0.6 pod gets (the operator's env_vars,
    WORKFLOW_DIR and the OPERATOR_* dirs, each workflow_form key upper-cased) and the venv's
    ``srcohort`` on PATH in place of the image's.
    """
    if shutil.which("sh") is None:
        _missing("sh")
    stubs = tmp_path / "stubs"
    for rel, text in KAAPANA_STUBS.items():
        (stubs / rel).parent.mkdir(parents=True, exist_ok=True)
        (stubs / rel).write_text(text, "utf-8")
    env = {**airflow_env, "PYTHONPATH": os.pathsep.join(
        [str(stubs), *filter(None, [os.environ.get("PYTHONPATH")])])}
    bag = _run_python(DAGBAG_SCRIPT, [str(DAGS), RESULT], env)
    assert bag["import_errors"] == {}

    cohort_yaml = saved_cohorts()["tavi-self-expanding"]
    forms = {"srcohort-convert-index": {"site_dir": str(site_dir), "site": "site-01",
                                        "index_prefix": index_prefix},
             "srcohort-cohort-export": {"cohort": cohort_yaml, "index_prefix": index_prefix},
             "srcohort-federated-export": {"cohort": cohort_yaml, "index_prefix": index_prefix,
                                           "site": "site-01", "k": "2", "split": "70/15/15",
                                           "output_format": "unified"}}
    outputs: dict[str, Any] = {}
    workflow_dir = tmp_path / "data" / "manual__run"
    for dag_id, form in forms.items():
        tasks = bag["dags"][dag_id]["tasks"]
        cleaner = tasks.pop("workflow-cleaner")
        assert cleaner["attrs"]["clean_workflow_dir"] is False
        last = set(tasks) - {up for task in tasks.values() for up in task["upstream"]}
        assert cleaner["upstream"] == sorted(last)
        for task_id, task in tasks.items():
            attrs = task["attrs"]
            assert attrs["image"] == "registry.test/srcohort:0.6.0"
            assert attrs["cmds"] == ["/bin/sh", "-c"]
            assert attrs["arguments"] == [attrs["env_vars"]["SRCOHORT_SCRIPT"]]
            pod_env = {**os.environ, **attrs["env_vars"],
                       **{key.upper(): str(value) for key, value in form.items()},
                       "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
                       "WORKFLOW_DIR": str(workflow_dir), "RUN_ID": "manual__run",
                       "OPERATOR_OUT_DIR": attrs["operator_out_dir"],
                       "OPENSEARCH_URL": opensearch_url}
            if attrs["operator_in_dir"]:
                pod_env["OPERATOR_IN_DIR"] = attrs["operator_in_dir"]
            for secret in task["secrets"]:
                pod_env[secret["name"]] = "kaapana-test-secret"
            proc = subprocess.run(["sh", "-c", attrs["arguments"][0]], env=pod_env,
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{task_id}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            outputs[task_id] = _json_documents(proc.stdout)

    expected_series = len(_series_uids(workflow_dir / "srcohort-convert" / "dicom"))
    assert outputs["srcohort-index"][0]["series"] == expected_series > 0
    counts, export = outputs["srcohort-cohort-export"]
    assert counts == count_patients(opensearch_client, resolve_cohort("tavi-self-expanding"),
                                    prefix=index_prefix)
    assert export["dicom"]["patients"] == counts["total"]
    assert (workflow_dir / "srcohort-cohort-export" / "cohort.yaml").is_file()
    [aggregate] = outputs["srcohort-federated-site"]
    assert aggregate["site"] == "site-01"
    assert aggregate["counts"]["patients"] in (counts["total"], "suppressed")
    [combined] = outputs["srcohort-federated-combine"]
    assert combined["sites"] == ["site-01"]
    [training] = outputs["srcohort-training-export"]
    assert training["unified"]["patients"] == counts["total"]
    assert (workflow_dir / "srcohort-training-export" / "unified" / "COMPLETE").is_file()


def test_operators_default_prefix_is_the_packages() -> None:
    """The operators repeat DEFAULT_PREFIX (Kaapana's Airflow cannot import srcohort)."""
    import ast

    from srcohort.index.mapping import DEFAULT_PREFIX
    tree = ast.parse((OPERATORS / "srcohort_workflow" / "kaapana_compat.py").read_text())
    (value,) = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["INDEX_PREFIX"]]
    assert value == DEFAULT_PREFIX
