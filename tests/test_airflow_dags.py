"""The DAG files as Kaapana 0.6's Airflow parses them, checked against Kaapana's own rules.

Airflow reads its configuration once, when it is first imported, so every Airflow call runs in
a subprocess with its own AIRFLOW_HOME; a subprocess reports back one JSON line. The DAGs import
Kaapana's plugin, played here by tests/platform/kaapana_plugin; the runs themselves are in
tests/test_kaapana_workflows.py.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.tag import Tag

from tests.kaapana_harness import DAGS, RESULT, airflow_home, kaapana_airflow

pytestmark = pytest.mark.airflow

DAG_IDS = {"srcohort-import", "srcohort-import-from-bucket", "srcohort-index",
           "srcohort-index-on-arrival", "srcohort-cohort-to-dataset", "srcohort-export",
           "srcohort-export-cohort", "srcohort-federated-site", "srcohort-federated-count",
           "srcohort-federated-decide"}

DAGBAG_SCRIPT = """
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dags = {dag.dag_id: {
    "default_args": {k: v for k, v in dag.default_args.items() if k in ("ui_forms", "ui_visible")},
    "tags": sorted(dag.tags),
    "tasks": {t.task_id: {"type": type(t).__name__, "upstream": sorted(t.upstream_task_ids),
                          "attrs": {k: getattr(t, k, None) for k in (
                              "image", "env_vars", "namespace", "labels", "operator_in_dir",
                              "operator_out_dir", "ram_mem_mb", "ram_mem_mb_lmt",
                              "cpu_millicores", "clean_workflow_dir", "allow_federated_learning",
                              "whitelist_federated_learning")},
                          "secrets": [s.to_dict() for s in getattr(t, "secrets", None) or []]}
              for t in dag.tasks}} for dag in bag.dags.values()}
print(sys.argv[2] + json.dumps({"import_errors": bag.import_errors, "dags": dags}, default=str))
"""


def _dagbag(env: dict[str, str], folder: Path = DAGS) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", DAGBAG_SCRIPT, str(folder), RESULT], env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)]
    assert proc.returncode == 0 and lines, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(lines[-1][len(RESULT):])


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("dagbag")
    airflow = kaapana_airflow(airflow_home(root), root, services_urls={
        name: "http://127.0.0.1:9" for name in (
            "KEYCLOAK_URL", "OPENSEARCH_URL", "DICOM_WEB_FILTER_URL", "AII_URL",
            "KAAPANA_BACKEND_URL", "MINIO_URL", "KUBE_HELM_URL", "NOTIFICATION_URL")},
        secrets_by_namespace={}, cluster={}, pacs_url="http://127.0.0.1:9")
    (Path(airflow.harness["uploads"]) / "site-07.zip").write_bytes(b"PK")
    return airflow.env


@pytest.fixture(scope="module")
def bag(airflow_env: dict[str, str]) -> dict[str, Any]:
    return _dagbag(airflow_env)


def _module(relative: str) -> Any:
    """A module of the operator package that imports no Airflow (read from its file)."""
    spec = importlib.util.spec_from_file_location(relative, DAGS / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_ui_dict(ui_forms: dict[str, Any]) -> dict[str, Any]:
    """What Kaapana 0.6 shows for a visible DAG's forms (KP/blueprints/kaapana_utils.py
    parse_ui_dict): an empty data_form is dropped; none at all gets the dataset form
    (json_schema_templates.properties_dataset_form: dataset_name, dataset_limit)."""
    forms = dict(ui_forms)
    if "data_form" in forms and not forms["data_form"]:
        forms.pop("data_form")
    elif "data_form" not in forms:
        forms["data_form"] = {"type": "object", "properties": {
            "dataset_name": {"type": "string"}, "dataset_limit": {"type": "integer"}}}
    return forms


def listed_in(view: str, dag: dict[str, Any]) -> bool:
    """kaapana-backend workflows/utils.py get_dag_list: ``dataset`` lists visible DAGs whose
    data_form has dataset_name, ``import`` (Data Upload) those tagged import."""
    if not dag["default_args"]["ui_visible"]:
        return False
    forms = parse_ui_dict(dag["default_args"]["ui_forms"])
    if view == "dataset":
        return "dataset_name" in forms.get("data_form", {}).get("properties", {})
    return view in dag["tags"]


def test_every_dag_parses(bag: dict[str, Any]) -> None:
    assert bag["import_errors"] == {}
    assert set(bag["dags"]) == DAG_IDS


def test_dags_appear_where_kaapana_lists_them(bag: dict[str, Any]) -> None:
    dags = bag["dags"]
    assert {d for d in dags if listed_in("dataset", dags[d])} == {"srcohort-index",
                                                                  "srcohort-export"}
    assert {d for d in dags if listed_in("import", dags[d])} == {"srcohort-import"}
    upload = dags["srcohort-import"]["default_args"]["ui_forms"]["data_form"]
    assert upload["properties"]["action_files"]["items"]["enum"] == ["site-07.zip"]
    assert dags["srcohort-index-on-arrival"]["default_args"]["ui_visible"] is False
    for dag in dags.values():
        for prop in dag["default_args"]["ui_forms"].get("workflow_form", {}).get(
                "properties", {}).values():
            assert prop["title"] and prop["type"] in ("string", "boolean")


def test_steps_run_in_srcohorts_image_with_declared_resources(bag: dict[str, Any]) -> None:
    STEP_RESOURCES = _module("srcohort_workflow/resources.py").STEP_RESOURCES
    namespaces = {"project-scope": "services", "import": "services", "dataset": "services",
                  "index": None, "export": None, "federated-site": None,
                  "federated-central": "services", "federated-decide": None}
    seen = set()
    for dag_id, dag in bag["dags"].items():
        for task_id, task in dag["tasks"].items():
            if task["type"] != "SrcohortOperator":
                continue
            attrs = task["attrs"]
            step = attrs["env_vars"]["SRCOHORT_STEP"]
            seen.add(step)
            assert attrs["image"] == "registry.test/srcohort:0.6.0"
            assert {k: attrs[k] for k in STEP_RESOURCES[step]} == STEP_RESOURCES[step]
            assert attrs["labels"]["network-access-opensearch"] == "true"
            expected = ("services" if dag_id == "srcohort-index-on-arrival"
                        else namespaces[step])
            assert attrs["namespace"] == expected, (dag_id, task_id)
            secret_names = {s["name"] for s in task["secrets"]}
            assert ("SRCOHORT_SECRET" in secret_names) == (step == "export")
    assert seen == set(namespaces)


def test_declared_memory_covers_the_measured_bounds() -> None:
    """A pod over its memory limit is killed, and one over its request is the first evicted:
    the requests of the converting, indexing and exporting steps hold what srcohort.resources
    measured for those steps at 600 slices, with as many workers as the CPU limit
    (request + 100m) grants and 100,000 files; the limits leave room above that."""
    from srcohort.resources import memory_mb
    declared = _module("srcohort_workflow/resources.py").STEP_RESOURCES
    for step, measured in (("import", "convert"), ("index", "index"), ("export", "export")):
        workers = max(1, (declared[step]["cpu_millicores"] + 100) // 1000)
        need = memory_mb(measured, slices=600, workers=workers, files=100_000)
        assert declared[step]["ram_mem_mb"] >= need, (step, need)
        assert declared[step]["ram_mem_mb_lmt"] >= 1.5 * need, (step, need)


def test_trigger_rule_is_found_and_matches(bag: dict[str, Any]) -> None:
    """LocalAutoTriggerOperator (KP/operators) globs
    /kaapana/mounted/workflows/**/*trigger_rule.json without recursion, i.e. one folder below
    workflows/: the rule must lie directly in dags/. It reads each tag key as a pydicom tag and
    compares lower-cased values with the comma-separated list."""
    rules = sorted(DAGS.glob("*trigger_rule.json"))
    assert [p.name for p in rules] == ["srcohort_trigger_rule.json"]
    [rule] = json.loads(rules[0].read_text("utf-8"))
    assert set(rule["dag_ids"]) <= set(bag["dags"])
    assert rule["dag_ids"]["srcohort-index-on-arrival"]["fetch_method"] == "copy"
    [(key, values)] = rule["search_tags"].items()
    assert Tag(key.split(",")) == Tag("Modality")
    wanted = values.lower().split(",")
    for name, modality in (("CT_small.dcm", "ct"), ("waveform_ecg.dcm", "ecg")):
        ds = pydicom.dcmread(get_testdata_file(name))
        assert str(ds[key.split(",")].value).lower() == modality in wanted
    assert "sr" in wanted and "seg" in wanted


def test_install_parameters_reach_every_step(airflow_env: dict[str, str],
                                             tmp_path: Path) -> None:
    """The install Job writes settings.json beside the operators; steps get its values."""
    folder = tmp_path / "dags"
    shutil.copytree(DAGS, folder)
    (folder / "srcohort_workflow" / "settings.json").write_text(json.dumps(
        {"opensearch_index_prefix": "cohorts-", "k_anonymity_threshold": 11,
         "study": "lung-nodules", "cohorts": ["nodule-cohort", "other-cohort"]}), "utf-8")
    bag = _dagbag({**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}, folder)
    envs = [t["attrs"]["env_vars"] for d in bag["dags"].values() for t in d["tasks"].values()
            if t["type"] == "SrcohortOperator"]
    assert envs and all(e["SRCOHORT_INDEX_PREFIX"] == "cohorts-" and e["SRCOHORT_K"] == "11"
                        and e["SRCOHORT_STUDY"] == "lung-nodules" for e in envs)
    # The forms offer the installed study and its saved cohorts.
    forms = {d: dag["default_args"]["ui_forms"].get("workflow_form", {}).get("properties", {})
             for d, dag in bag["dags"].items()}
    with_study = {d for d, props in forms.items() if "study" in props}
    assert with_study == DAG_IDS - {"srcohort-index-on-arrival", "srcohort-federated-count",
                                    "srcohort-federated-decide"}
    assert all(forms[d]["study"]["default"] == "lung-nodules" for d in with_study)
    cohorts = [props["cohort"] for props in forms.values() if "cohort" in props]
    assert cohorts and all(c["default"] == "nodule-cohort" and "other-cohort" in
                           c["description"] for c in cohorts)


def test_forms_without_install_settings_default_to_the_packaged_study(
        bag: dict[str, Any]) -> None:
    """Before the install Job wrote settings.json: no study named (the packaged default), no
    cohort preset (the member names one), no install parameter in the pods' environment."""
    for dag in bag["dags"].values():
        props = dag["default_args"]["ui_forms"].get("workflow_form", {}).get("properties", {})
        assert "default" not in props.get("study", {})
        assert "default" not in props.get("cohort", {})
        assert props.get("cohort", {"required": True})["required"] is True
        for task in dag["tasks"].values():
            if task["type"] == "SrcohortOperator":
                assert "SRCOHORT_STUDY" not in task["attrs"]["env_vars"]


def test_federated_dags_follow_kaapanas_framework(bag: dict[str, Any]) -> None:
    """As advanced-collect-metadata-federated: the central form names the remote DAG and its
    federated operators (external_schema_federated_form, external_schemas); the remote
    operator allows federated learning and shares only .json files
    (KP/operators/HelperFederated.py federated_sharing_decorator, apply_tar_action)."""
    central = bag["dags"]["srcohort-federated-count"]["default_args"]["ui_forms"]
    federated = central["external_schema_federated_form"]["properties"]
    remote = federated["remote_dag_id"]["default"]
    assert central["external_schemas"] == remote and remote in bag["dags"]
    [operator] = federated["federated_operators"]["default"]
    site_task = bag["dags"][remote]["tasks"][operator]["attrs"]
    assert site_task["operator_out_dir"] == operator
    assert site_task["allow_federated_learning"] is True
    assert site_task["whitelist_federated_learning"] == [".json"]
