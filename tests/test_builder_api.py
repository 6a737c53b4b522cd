"""The cohort builder's API over real HTTP and the real OpenSearch: its numbers are the CLI's
numbers and the ground truth, its panels count what their bars claim, saved cohorts carry a
version and the data they were counted on, actions go through the CLI's code paths, and no
patient identifier leaves through anything but the explicit patient list."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from srcohort.audit.actor import Actor
from srcohort.audit.log import audit_log
from srcohort.builder.deployment import Sites
from srcohort.cohort.definition import load_cohort
from srcohort.cohort.label import LabelSpec
from srcohort.cohort.library import saved_cohorts
from srcohort.cohort.model import BoolExpr, Cohort
from srcohort.cohort.run import count_patients, list_patients
from srcohort.index.indexer import index_directory
from srcohort.study.load import load_study
from tests.builder_truth import saved_truth, truth_per_site

pytestmark = pytest.mark.opensearch

VENTRICLES_AND_LBBB = {"name": "ventricles-lbbb", "patients": {"all": [
    {"annotation": {"kind": "SEG", "segments": [{"type": "SCT:87878005"},
                                                {"type": "SCT:53085002"}]}},
    {"annotation": {"template": "3700", "fields": {"findings": "SCT:63467002"},
                    "within": {"event": "tavi", "days": [-90, 0]}}}]}}


def post(server, route: str, body: dict[str, Any] | None = None, *,
         headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=300)
    connection.request("POST", f"/api/{route}", body=raw if raw is not None else
                       json.dumps(body or {}), headers={"Content-Type": "application/json",
                                                        **(headers or {})})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def ok(server, route: str, body: dict[str, Any] | None = None) -> Any:
    status, answer = post(server, route, body)
    assert status == 200, answer
    return answer


def cli_counts(prefixes: dict[str, str], cohort: Cohort, client) -> dict[str, int]:
    """What ``srcohort cohort count`` reports at each site (each under its own prefix)."""
    return {site: count_patients(client, cohort, prefix=prefix)["total"]
            for site, prefix in prefixes.items()}


@pytest.mark.parametrize("name", list(saved_cohorts()))
def test_counts_and_funnel_are_the_cli_counts_and_the_truth(builder_server, builder_consortium,
                                                           opensearch_client, name: str) -> None:
    root, prefixes = builder_consortium
    definition = yaml.safe_load(saved_cohorts()[name])
    answer = ok(builder_server, "count", {"definition": definition})
    cohort = load_cohort(definition)
    assert answer["digest"] == cohort.digest
    assert load_cohort(answer["yaml"]).digest == cohort.digest       # the YAML is the definition
    assert answer["counts"]["cohort"]["sites"] == cli_counts(prefixes, cohort, opensearch_client)
    assert answer["counts"]["cohort"]["sites"] == saved_truth(root / "consortium", name)
    steps = cohort.patients.children
    for k, step in enumerate(answer["counts"]["steps"], start=1):
        prefix_cohort = Cohort(name, "", BoolExpr("all", steps[:k]))
        assert step["sites"] == cli_counts(prefixes, prefix_cohort, opensearch_client), k
    totals = [s["total"] for s in answer["counts"]["steps"]]
    assert totals == sorted(totals, reverse=True) and answer["counts"]["everyone"]["total"] == 45


def test_nested_cohort_equals_the_truth(builder_server, builder_consortium) -> None:
    root, _ = builder_consortium
    answer = ok(builder_server, "count", {"definition": VENTRICLES_AND_LBBB})
    truth = truth_per_site(root / "consortium")
    assert answer["counts"]["cohort"]["sites"] == truth and sum(truth.values()) > 0


def test_every_bar_counts_what_its_condition_selects(builder_server, builder_consortium,
                                                     opensearch_client) -> None:
    """A click on a bar adds the bar's condition: the cohort with it must count the bar."""
    _, prefixes = builder_consortium
    definition = yaml.safe_load(saved_cohorts()["tavi-self-expanding"])
    panels = ok(builder_server, "distributions", {"definition": definition})["panels"]
    assert {p["id"] for p in panels} >= {"modalities", "segments", "label",
                                         "field:3700:findings", "field:3802:diabetes"}
    checked = 0
    for panel in panels:
        if panel["id"] == "label":
            continue
        for bar in panel["bars"]:
            narrowed = {**definition, "patients": {"all": [*definition["patients"]["all"],
                                                           bar["condition"]]}}
            counts = ok(builder_server, "count", {"definition": narrowed})["counts"]
            assert counts["cohort"]["sites"][bar["site"]] == bar["patients"], bar
            checked += 1
    assert checked > 20


def test_label_balance_is_the_exports_label(builder_server, builder_consortium,
                                            opensearch_client) -> None:
    _, prefixes = builder_consortium
    definition = {"name": "all", "patients": {"series": {}}}
    panels = ok(builder_server, "distributions", {"definition": definition})["panels"]
    shown = {(b["value"], b["site"]): b["patients"]
             for b in next(p for p in panels if p["id"] == "label")["bars"]}
    label = LabelSpec.of_study(load_study())
    expected: dict[tuple[str, str], int] = {}
    for site, prefix in prefixes.items():
        for patient in list_patients(opensearch_client, load_cohort(definition), prefix=prefix):
            key = (label.of(patient), site)
            expected[key] = expected.get(key, 0) + 1
    assert shown == expected and {"yes", "no"} <= {value for value, _ in shown}


def test_catalogue_offers_what_the_index_holds(builder_server) -> None:
    catalogue = ok(builder_server, "catalogue")
    index = catalogue["index"]
    assert [s["site"] for s in index["sites"]] == ["site-01", "site-02", "site-03"]
    assert {m["code"] for m in index["modalities"]} >= {"CT", "SEG", "SR", "ECG"}
    types = {t["code"]: t["labels"] for t in index["segments"]["types"]}
    assert types["SCT:87878005"] == ["Left Ventricle"] and "SCT:53085002" in types
    findings = next(f for f in catalogue["fields"] if f["field"] == "findings")
    assert {"code": "SCT:63467002", "meaning": "Left bundle branch block",
            "name": "LBBB"} in findings["terms"]
    assert index["fields"]["field:3700:findings"]["codes"]["SCT:63467002"] > 0
    size = next(f for f in catalogue["fields"] if f["field"] == "prosthesis_size")
    assert size["units"][0] == "mm" and "cm" in size["units"]
    low, high = (index["fields"]["field:3802:prosthesis_size"][k] for k in ("min", "max"))
    assert 14 <= low <= high <= 40
    assert index["events"]["tavi"]["min"] < 0 and catalogue["events"] == ["tavi"]
    assert catalogue["meanings"]["SCT:271921002"] == "Electrocardiogram finding"


def test_yaml_round_trip_and_errors_name_their_place(builder_server) -> None:
    text = saved_cohorts()["tavi-lbbb-ecg-calcification"]
    parsed = ok(builder_server, "parse", {"yaml": text})
    assert parsed["digest"] == load_cohort(text).digest
    again = ok(builder_server, "count", {"definition": parsed["definition"]})
    assert again["digest"] == parsed["digest"]
    status, answer = post(builder_server, "count", {"definition": {
        "name": "x", "patients": {"annotation": {"fields": {"findings": "SCT:1"}}}}})
    assert status == 400 and "patients.annotation.fields.findings" in answer["error"]
    status, answer = post(builder_server, "parse", {"yaml": "name: x\npatients: [\n"})
    assert status == 400 and "not valid YAML" in answer["error"]


def test_saved_cohort_carries_version_and_snapshot_and_recount_says_what_changed(
        builder_consortium, opensearch_client, index_prefix: str, tmp_path: Path) -> None:
    from srcohort.builder.actions import standalone_actions
    from srcohort.builder.app import BuilderApp
    from srcohort.builder.deployment import standalone
    from srcohort.builder.server import BuilderServer
    root, _ = builder_consortium
    converted = root / "converted"
    index_directory(opensearch_client, converted / "site-01" / "dicom", site="site-01",
                    prefix=index_prefix)
    app = BuilderApp(standalone(opensearch_client, Sites({"site-01": index_prefix}),
                                actions=standalone_actions(None), cohorts_dir=tmp_path / "c",
                                out_dir=tmp_path / "o"))
    server = BuilderServer(app, "127.0.0.1", 0)
    server.serve_in_thread()
    try:
        definition = {**VENTRICLES_AND_LBBB, "name": "mine"}
        saved = ok(server, "save", {"definition": definition, "labels": ["SEG", "ECG"]})
        assert saved["record"]["digest"] == load_cohort(definition).digest
        assert saved["record"]["snapshot"]["site-01"]["patients"]["documents"] == 15
        assert load_cohort(Path(saved["file"])).digest == saved["record"]["digest"]
        assert ok(server, "recount", {"name": "mine"})["changes"] == [
            "the indices hold the same documents as when it was counted"]
        opened = ok(server, "open", {"name": "mine"})
        assert opened["digest"] == saved["record"]["digest"] and opened["counted"]
        # New data arrives: another export of the same site is indexed.
        index_directory(opensearch_client, converted / "site-02" / "dicom", site="site-01",
                        prefix=index_prefix)
        changes = ok(server, "recount", {"name": "mine"})["changes"]
        assert changes[0].startswith("site-01: patients 15 -> 30, series ")
        before = saved["record"]["counts"]["cohort"]["total"]
        after = ok(server, "count", {"definition": definition})["counts"]["cohort"]["total"]
        assert after > before and f"cohort: {before} -> {after} patients" in changes
        assert any(line.startswith("step 1 (SEG): ") for line in changes)
        status, answer = post(server, "save", {"definition": {**definition,
                                                              "name": "tavi-self-expanding"}})
        assert status == 400 and "ships" in answer["error"]
        status, answer = post(server, "save", {"definition": {**definition, "name": "../x"}})
        assert status == 400 and not (tmp_path / "x.yaml").exists()
    finally:
        server.shutdown()
        server.server_close()


def test_federated_action_is_the_cli_site_step(builder_server, builder_consortium,
                                               opensearch_client, opensearch_url: str,
                                               tmp_path: Path) -> None:
    _, prefixes = builder_consortium
    text = saved_cohorts()["tavi-self-expanding"]
    answer = ok(builder_server, "action", {"action": "federated", "params": {"k": 3},
                                           "definition": yaml.safe_load(text)})
    (tmp_path / "c.yaml").write_text(text, "utf-8")
    for site, prefix in prefixes.items():
        out = tmp_path / f"{site}.json"
        subprocess.run([sys.executable, "-m", "srcohort", "federated", "site",
                        str(tmp_path / "c.yaml"), "--site", site, "--k", "3", "--out", str(out),
                        "--url", opensearch_url, "--prefix", prefix],
                       check=True, capture_output=True)
        release = answer["result"]["releases"][site]
        assert release["state"] == "released" and release["release"] == 1
        assert release["aggregate"] == json.loads(out.read_text("utf-8"))
        written = Path(answer["result"]["folder"]) / f"{site}.json"
        assert json.loads(written.read_text("utf-8")) == release["aggregate"]
        releases = [e for e in audit_log(opensearch_client, prefix).entries()
                    if e["action"] == "release"]
        assert [(e["user"], e["details"]["release"]) for e in releases] == [
            (Actor.current().user, 1), (Actor.current().user, 2)]
    status, refused = post(builder_server, "action", {"action": "federated", "params": {"k": 1},
                                                      "definition": yaml.safe_load(text)})
    assert status == 400 and "k must be at least 2" in refused["error"]


def test_export_action_runs_the_verified_export(builder_server) -> None:
    definition = {**VENTRICLES_AND_LBBB, "name": "export-me"}
    counts = ok(builder_server, "count", {"definition": definition})["counts"]["cohort"]["sites"]
    answer = ok(builder_server, "action", {"action": "export", "params": {"format": "unified"},
                                           "definition": definition})
    for site, summary in answer["result"]["sites"].items():
        assert summary["cohort_sha256"] == load_cohort(definition).digest
        assert summary["unified"]["patients"] == counts[site]
        assert summary["unified"]["problems"] == 0
        assert (Path(summary["unified"]["out"]) / "croissant.json").is_file()
    status, refused = post(builder_server, "action", {"action": "export",
                                                      "params": {"format": "zip"},
                                                      "definition": definition})
    assert status == 400 and "zip" in refused["error"]


def test_patient_identifiers_only_in_the_explicit_list(builder_server, builder_consortium,
                                                       opensearch_client, tmp_path) -> None:
    _, prefixes = builder_consortium
    definition = yaml.safe_load(saved_cohorts()["tavi-lbbb-ecg-calcification"])
    listed = ok(builder_server, "patients", {"definition": definition})
    ids = {p["patient_id"] for p in listed["patients"]}
    cohort = load_cohort(definition)
    assert listed["total"] == sum(cli_counts(prefixes, cohort, opensearch_client).values())
    assert ids == {p["patient_id"] for prefix in prefixes.values()
                   for p in list_patients(opensearch_client, cohort, prefix=prefix)}
    everyone = {p["patient_id"] for prefix in prefixes.values() for p in list_patients(
        opensearch_client, load_cohort({"name": "all", "patients": {"series": {}}}), prefix=prefix)}
    other = [ok(builder_server, route, {"definition": definition}) for route in
             ("count", "distributions")]
    other.append(ok(builder_server, "catalogue"))
    other.append(ok(builder_server, "save", {"definition": definition | {"name": "kept"}}))
    text = json.dumps(other) + "".join(p.read_text("utf-8")
                                       for p in (tmp_path / "cohorts").iterdir())
    assert everyone and not [pid for pid in everyone if pid in text]


def test_http_guards(builder_server) -> None:
    host, port = builder_server.server_address[:2]

    def request(method: str, path: str, headers: dict[str, str], body: str = "") -> int:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    assert request("GET", "/", {"Host": "evil.example:80"}) == 421       # DNS rebinding
    assert request("POST", "/api/config", {"Content-Type": "application/json",
                                           "Origin": "http://evil.example"}, "{}") == 403
    assert request("POST", "/api/config", {"Content-Type": "text/plain"}, "{}") == 415
    assert request("GET", "/api/patients", {}) == 404                   # nothing by GET
    assert request("POST", "/api/nothing", {"Content-Type": "application/json"}, "{}") == 404
    assert request("GET", "/static/../app.py", {}) == 404
    for path in ("/", "/static/builder.js", "/vendor/vega.min.js"):
        status = request("GET", path, {})
        assert status == (404 if path.startswith("/vendor") and builder_server.vega is None
                          else 200), path


def test_host_names_extend_the_accepted_hosts_and_any_host_accepts_all(builder_server) -> None:
    from srcohort.builder.server import BuilderServer
    named = BuilderServer(builder_server.app, "127.0.0.1", 0, host_names=("cohorts.example",))
    behind_proxy = BuilderServer(builder_server.app, "127.0.0.1", 0, any_host=True)
    try:
        port = named.server_address[1]
        assert named.allowed_hosts == {f"{name}:{port}" for name in
                                       ("127.0.0.1", "localhost", "cohorts.example")}
        assert behind_proxy.allowed_hosts is None
    finally:
        named.server_close()
        behind_proxy.server_close()


def test_counts_and_lists_shown_by_the_builder_are_in_each_sites_audit_log(
        builder_server, builder_consortium, opensearch_client) -> None:
    _, prefixes = builder_consortium
    definition = {**VENTRICLES_AND_LBBB, "name": "audited"}
    digest = load_cohort(definition).digest
    before = {site: len(audit_log(opensearch_client, p).entries()) for site, p in prefixes.items()}
    counts = ok(builder_server, "count", {"definition": definition})["counts"]["cohort"]["sites"]
    listed = ok(builder_server, "patients", {"definition": definition})
    for site, prefix in prefixes.items():
        new = audit_log(opensearch_client, prefix).entries()[before[site]:]
        assert [(e["action"], e["cohort"]["sha256"], e["user"]) for e in new] == [
            ("count", digest, Actor.current().user), ("list", digest, Actor.current().user)]
        assert new[0]["details"] == {"total": counts[site], "via": "builder"}
        assert new[1]["details"] == {"patients": counts[site]}
    assert listed["total"] == sum(counts.values())
