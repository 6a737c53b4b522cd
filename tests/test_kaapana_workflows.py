"""srcohort's Kaapana workflows end to end, each run by Airflow's ``dag.test`` as Kaapana 0.6
would run it: run confs as Kaapana's UI builds them, every processing container started with
the pod's environment, Secrets, mounted ``conf.json`` and GetInputOperator's folders, against
the platform of tests/kaapana_harness.py.

A project's member uploads a site export; it lands in the PACS filed under the project and the
dataset; it is indexed from the PACS (from a dataset and on arrival); a cohort is counted with
the project's token, becomes a Kaapana dataset, and that dataset is exported into the
project's bucket. Project beta reaches none of it. The scenario runs twice: with every
processing container as a process of the test's virtualenv (project alpha), and inside the
images built by `make kaapana-images` (project delta, its own site export), skipped when they
are not built.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from opensearchpy import helpers
from opensearchpy.exceptions import AuthorizationException

from srcohort.audit.log import audit_log
from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.run import count_patients, list_patients
from srcohort.convert.site import convert_site
from tests.kaapana_harness import (SERVICES, Airflow, Platform, airflow_home, image_runner,
                                   kaapana_airflow)
from tests.platform.pacs import ctp_file

pytestmark = [pytest.mark.opensearch, pytest.mark.airflow]
COHORT = "tavi-self-expanding"
MEMBER = "dr.weber"


@dataclass(frozen=True)
class Scenario:
    """How the pods run, in which project, on which demo site (the two scenarios' sites differ,
    so no UID of one recurs in the other, as in real PACS)."""

    runner: str
    project: str
    seed: int
    site: str

    @property
    def prefix(self) -> str:
        return f"srcohort-{self.project}-"

    @property
    def namespace(self) -> str:
        return f"project-{self.project}"


@pytest.fixture(scope="module", params=[Scenario("process", "alpha", 3, "site-01"),
                                        Scenario("image", "delta", 7, "site-02")],
                ids=lambda s: s.runner)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return request.param


@pytest.fixture(scope="module")
def airflow(kaapana: Platform, scenario: Scenario,
            tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    runner = image_runner() if scenario.runner == "image" else None
    root = tmp_path_factory.mktemp(f"kaapana-airflow-{scenario.runner}")
    return kaapana_airflow(
        airflow_home(root), root, services_urls=kaapana.service_urls(),
        secrets_by_namespace=kaapana.secrets,
        cluster={"PACS_HOST": "127.0.0.1", "PACS_PORT": str(kaapana.pacs.dicom_port)},
        pacs_url=kaapana.pacs.url, runner=runner,
        namespaces=tuple(p["kubernetes_namespace"] for p in kaapana.projects.values()))


@pytest.fixture(scope="module")
def site(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One site export (four patients) zipped as a site admin would, its ground truth, and
    the series a conversion of it writes (converted here, independently of the workflows)."""
    from srcohort.demo.consortium import generate_consortium
    root = tmp_path_factory.mktemp("kaapana-site")
    generate_consortium(root, sites=int(scenario.site[-2:]), patients_per_site=4,
                        seed=scenario.seed)
    archive = root / "site-01.zip"          # the upload's name; its content is scenario.site
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / scenario.site).rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    reference = root / "reference"
    convert_site(root / scenario.site, reference, workers=1)
    series = {pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID
              for p in (reference / "dicom").rglob("*.dcm")}
    truth = json.loads((root / "ground_truth.json").read_text("utf-8"))
    return {"zip": archive, "series": series,
            "cohort_total": truth["example_cohort"]["per_site"][scenario.site],
            "instances": sum(1 for _ in (reference / "dicom").rglob("*.dcm"))}


def _conf(kaapana: Platform, project: str, workflow_form: dict[str, Any],
          data_form: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run conf as Kaapana's UI sends it (the backend adds the user who started it)."""
    return {"workflow_form": {"username": MEMBER, **workflow_form}, "data_form": data_form or {},
            "project_form": kaapana.project_form(project)}


def _audited(kaapana: Platform, scenario: Scenario, dag_id: str) -> list[tuple[str, str]]:
    """(action, user) of the project's audit entries of ``dag_id``'s runs; the chain intact."""
    entries = audit_log(kaapana.client("system"), scenario.prefix).verified()
    return [(e["action"], e["user"]) for e in entries
            if (e.get("run") or "").startswith(f"{dag_id}/")]


def _bucket_json(kaapana: Platform, bucket: str, key: str) -> Any:
    return json.loads(kaapana.store.read(bucket, key))


@pytest.fixture(scope="module")
def imported(kaapana: Platform, airflow: Airflow, scenario: Scenario, site: dict[str, Any]
             ) -> dict[str, Any]:
    upload = Path(airflow.harness["uploads"]) / "site-01.zip"
    shutil.copy(site["zip"], upload)
    run = airflow.dag_test("srcohort-import", _conf(
        kaapana, scenario.project, {"dataset": "cardio", "delete_original_file": True},
        {"action_files": ["site-01.zip"]}))
    assert run["state"] == "success", run["log"]
    return run


def test_import_sends_every_object_filed_under_project_and_dataset(
        kaapana: Platform, airflow: Airflow, scenario: Scenario, site: dict[str, Any],
        imported: dict[str, Any]) -> None:
    filed = kaapana.pacs.filed_under(f"kp-{scenario.project}")
    assert set(filed) == site["series"]
    assert sum(filed.values()) == site["instances"]
    sent = {sop: aets for sop, aets in kaapana.pacs.instance_aets().items()
            if aets[1] == f"kp-{scenario.project}"}
    assert set(sent.values()) == {("kp-cardio", f"kp-{scenario.project}")}
    bucket = f"project-{scenario.project}"
    prefix = f"srcohort/imports/{imported['run_id']}/site-01"
    keys = kaapana.store.keys(bucket, prefix)
    assert f"{prefix}/conversion-report.json" in keys and f"{prefix}/import.json" in keys
    summary = _bucket_json(kaapana, bucket, f"{prefix}/import.json")
    assert summary["status"] == "imported" and summary["sent"] == site["instances"]
    assert summary["failed"] == [] and summary["already_in_pacs"] == []
    report = _bucket_json(kaapana, bucket, f"{prefix}/conversion-report.json")
    quarantined = [o for o in report["outcomes"] if o["outcome"] == "quarantined"]
    assert report["state"] == "complete" and quarantined     # the demo export has faults
    assert sorted(k.rsplit("/", 1)[-1] for k in keys if "/quarantine/" in k
                  and k.endswith(".reason.txt")) == sorted(
        f"{Path(o['input']).name}{'' if o['line'] is None else '.line' + str(o['line'])}.reason.txt"
        for o in quarantined)
    assert not (Path(airflow.harness["uploads"]) / "site-01.zip").exists()
    pods = {p["task"].rsplit("-srcohort-", 1)[-1]: p for p in airflow.pods()
            if imported["run_id"] in p["task"]}
    assert pods["import"]["namespace"] == SERVICES
    assert pods["import"]["labels"]["network-access-ctp"] == "true"
    assert pods["import"]["resources"]["limits"]["memory"] == "2400Mi"     # as declared
    assert "KAAPANA_PROJECT_USER_PASSWORD" in pods["import"]["env"]
    # The run folder was scratch: the cleaner removed it.
    assert not (airflow.volume(SERVICES) / imported["run_id"]).exists()


def test_reimport_skips_images_the_pacs_holds(kaapana: Platform, airflow: Airflow,
                                              scenario: Scenario, site: dict[str, Any],
                                              imported: dict[str, Any]) -> None:
    bucket = f"project-{scenario.project}"
    kaapana.store.put(bucket, "uploads/site-01.zip", site["zip"].read_bytes())
    run = airflow.dag_test("srcohort-import-from-bucket", _conf(
        kaapana, scenario.project, {"bucket_object": "uploads/site-01.zip",
                                    "dataset": "cardio"}))
    assert run["state"] == "success", run["log"]
    summary = _bucket_json(kaapana, bucket,
                           f"srcohort/imports/{run['run_id']}/site-01/import.json")
    ct_series = {uid for uid in site["series"] if _modality(kaapana, uid) == "CT"}
    assert set(summary["already_in_pacs"]) == ct_series != set()
    assert set(kaapana.pacs.filed_under(f"kp-{scenario.project}")) == site["series"]


def _modality(kaapana: Platform, series_uid: str) -> str:
    [found] = [r for r in kaapana.pacs.post("/tools/lookup", series_uid.encode())
               if r["Type"] == "Series"]
    return kaapana.pacs.get(f"/series/{found['ID']}")["MainDicomTags"]["Modality"]


@pytest.fixture(scope="module")
def indexed(kaapana: Platform, airflow: Airflow, scenario: Scenario, imported: dict[str, Any]
            ) -> dict[str, Any]:
    series = sorted(kaapana.pacs.filed_under(f"kp-{scenario.project}"))
    run = airflow.dag_test("srcohort-index", _conf(
        kaapana, scenario.project, {}, {"identifiers": series, "dataset_name": "cardio"}))
    assert run["state"] == "success", run["log"]
    return {"run": run, "series": series}


def test_index_from_dataset_stores_uids_and_pacs_address(
        kaapana: Platform, airflow: Airflow, scenario: Scenario, indexed: dict[str, Any]) -> None:
    client = kaapana.client(kaapana.user(scenario.project))
    docs = {hit["_id"]: hit["_source"]
            for hit in helpers.scan(client, index=f"{scenario.prefix}series")}
    assert sorted(docs) == indexed["series"]
    for uid, doc in docs.items():
        assert doc["files"] == []
        assert doc["retrieve"]["dicomweb"] == (
            f"{kaapana.pacs.dicomweb}/studies/{doc['study_instance_uid']}/series/{uid}")
        assert doc["site"] == "site-a"
    assert _audited(kaapana, scenario, "srcohort-index") == [("index", MEMBER)]
    pods = [p for p in airflow.pods() if indexed["run"]["run_id"] in p["task"]
            and p["task"].endswith("srcohort-index")]
    assert [p["namespace"] for p in pods] == [scenario.namespace]
    assert [p["exit"] for p in pods] == [0]


def test_project_user_counts_its_cohort(kaapana: Platform, scenario: Scenario,
                                        site: dict[str, Any], indexed: dict[str, Any]) -> None:
    client = kaapana.client(kaapana.user(scenario.project))
    counts = count_patients(client, resolve_cohort(COHORT), prefix=scenario.prefix)
    assert counts["total"] == site["cohort_total"] > 0
    with pytest.raises(AuthorizationException):
        count_patients(kaapana.client(kaapana.user("beta")), resolve_cohort(COHORT),
                       prefix=scenario.prefix)


def test_index_on_arrival_files_series_under_their_project(
        kaapana: Platform, airflow: Airflow, scenario: Scenario, indexed: dict[str, Any],
        tmp_path: Path) -> None:
    """LocalAutoTriggerOperator copies the incoming series (as CTP passed them on, project in
    (0012,0020)) into the run; the run conf is the trigger rule's, without project_form."""
    incoming = Path(airflow.harness["incoming"])
    shutil.rmtree(incoming)
    for uid in indexed["series"][:3]:
        for path in kaapana.pacs.export_series(uid, tmp_path / uid):
            ctp_file(path, incoming / uid / path.name, called_aet=f"kp-{scenario.project}",
                     calling_aet="kp-cardio")
    rules = json.loads((Path(airflow.env["AIRFLOW__CORE__DAGS_FOLDER"])
                        / "srcohort_trigger_rule.json").read_text("utf-8"))
    conf = dict(rules[0]["dag_ids"]["srcohort-index-on-arrival"])
    client = kaapana.client(kaapana.user(scenario.project))
    before = client.count(index=f"{scenario.prefix}series")["count"]
    run = airflow.dag_test("srcohort-index-on-arrival", conf)
    assert run["state"] == "success", run["log"]
    assert client.count(index=f"{scenario.prefix}series")["count"] == before
    pods = [p for p in airflow.pods() if run["run_id"] in p["task"]]
    assert [p["namespace"] for p in pods] == [SERVICES]


@pytest.fixture(scope="module")
def dataset(kaapana: Platform, airflow: Airflow, scenario: Scenario, indexed: dict[str, Any]
            ) -> list[str]:
    run = airflow.dag_test("srcohort-cohort-to-dataset", _conf(
        kaapana, scenario.project, {"cohort": COHORT, "dataset": "tavi-se"}))
    assert run["state"] == "success", run["log"]
    return kaapana.services.datasets[(kaapana.projects[scenario.project]["id"], "tavi-se")]


def test_cohort_becomes_a_kaapana_dataset(kaapana: Platform, scenario: Scenario,
                                          dataset: list[str]) -> None:
    client = kaapana.client(kaapana.user(scenario.project))
    expected = sorted({s["series_instance_uid"] for patient in
                       list_patients(client, resolve_cohort(COHORT), prefix=scenario.prefix)
                       for s in patient["series"]})
    assert sorted(dataset) == expected != []
    assert kaapana.services.violations == []
    puts = [r for r in kaapana.services.requests if r["method"] == "PUT"
            and r["path"] == "/client/dataset"]
    assert json.loads(puts[-1]["headers"]["project"])["id"] == \
        kaapana.projects[scenario.project]["id"]
    assert _audited(kaapana, scenario, "srcohort-cohort-to-dataset") == [("count", MEMBER),
                                                                         ("list", MEMBER)]


def test_dataset_is_exported_into_the_project_bucket(
        kaapana: Platform, airflow: Airflow, scenario: Scenario, dataset: list[str]) -> None:
    run = airflow.dag_test("srcohort-export", _conf(
        kaapana, scenario.project, {"output_format": "both", "split": "60/20/20"},
        {"identifiers": dataset, "dataset_name": "tavi-se"}))
    assert run["state"] == "success", run["log"]
    prefix = f"srcohort/exports/{run['run_id']}"
    bucket = f"project-{scenario.project}"
    summary = _bucket_json(kaapana, bucket, f"{prefix}/export.json")
    counts = count_patients(kaapana.client(kaapana.user(scenario.project)),
                            resolve_cohort(COHORT), prefix=scenario.prefix)
    assert summary["counts"]["total"] == counts["total"]
    assert summary["unified"]["patients"] == summary["dicom"]["patients"] == counts["total"]
    with zipfile.ZipFile(io.BytesIO(kaapana.store.read(bucket, f"{prefix}/tavi-se.zip"))) as zf:
        names = set(zf.namelist())
        assert "unified/COMPLETE" in names and "dicom/manifest/export.json" in names
        manifest = json.loads(zf.read("unified/manifest.json"))
        card = json.loads(zf.read("unified/croissant.json"))
    assert manifest["settings"]["split"] == {"train": 0.6, "val": 0.2, "test": 0.2}
    # Counted and exported on the record; the card cites the export's audit entry.
    assert _audited(kaapana, scenario, "srcohort-export") == [("count", MEMBER),
                                                              ("export", MEMBER)]
    cited = card["srcohort:audit"]["srcohort:entries"][0]
    assert cited["action"] == "export" and cited["seq"] == summary["audit"]["seq"]
    pods = [p for p in airflow.pods() if run["run_id"] in p["task"]
            and p["task"].endswith("srcohort-export")]
    assert [p["namespace"] for p in pods] == [scenario.namespace]
    assert "SRCOHORT_SECRET" in pods[0]["env"]


def test_cohort_is_exported_fetching_its_series_from_the_pacs(
        kaapana: Platform, airflow: Airflow, scenario: Scenario, indexed: dict[str, Any]) -> None:
    """Without a dataset nothing is in the run folder: every series comes by WADO-RS."""
    run = airflow.dag_test("srcohort-export-cohort", _conf(
        kaapana, scenario.project, {"cohort": COHORT, "output_format": "dicom"}))
    assert run["state"] == "success", run["log"]
    summary = _bucket_json(kaapana, f"project-{scenario.project}",
                           f"srcohort/exports/{run['run_id']}/export.json")
    counts = count_patients(kaapana.client(kaapana.user(scenario.project)),
                            resolve_cohort(COHORT), prefix=scenario.prefix)
    assert summary["dicom"]["patients"] == counts["total"] > 0
    assert summary["fetched_from_pacs"] > 0
    assert summary["dicom"]["files"] > 0


def test_other_project_cannot_fetch_or_index_alphas_series(
        kaapana: Platform, airflow: Airflow, indexed: dict[str, Any]) -> None:
    run = airflow.dag_test("srcohort-index", _conf(
        kaapana, "beta", {}, {"identifiers": indexed["series"][:1], "dataset_name": "x"}))
    assert run["state"] == "failed"
    assert run["tasks"]["get-input-data"] == "failed"
    beta = kaapana.client(kaapana.user("beta"))
    assert beta.count(index="srcohort-beta-series")["count"] == 0
