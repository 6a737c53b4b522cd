"""Faults while working: a conversion killed mid-run, OpenSearch restarted mid-bulk, one
instance in two files, a patient beyond OpenSearch's nested-object limit. Each ends with the
index or the output a clean run gives, or a clear error and a rerun that gets there."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pydicom
import pytest
from opensearchpy import OpenSearch

from srcohort.convert.site import convert_site
from srcohort.index.documents import patient_doc_id, patient_key
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import bulk_index, ensure_indices, index_names
from srcohort.server import LocalOpenSearch
from tests.plugin_opensearch import free_port


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_a_killed_conversion_converges_on_rerun(small_consortium: Path, tmp_path: Path) -> None:
    site = small_consortium / "site-02"
    convert_site(site, tmp_path / "clean", workers=1)
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "srcohort", "convert", str(site),
                                "--out", str(out), "--workers", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "dicom").rglob("*.dcm"))) > 20:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    report = out / "conversion-report.json"
    assert not report.exists() or '"running"' in report.read_text()   # never looks finished
    convert_site(site, out, workers=1)
    assert _tree(out / "dicom") == _tree(tmp_path / "clean" / "dicom")
    assert not list(out.rglob("*.partial"))


def test_one_instance_in_two_files_is_indexed_once(converted: Path, opensearch_client: OpenSearch,
                                                   index_prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / "dicom"
    shutil.copytree(converted / "site-01" / "dicom", folder)
    sr = next(p for p in sorted(folder.rglob("*.dcm"))
              if pydicom.dcmread(p, stop_before_pixels=True).Modality == "SR")
    shutil.copyfile(sr, folder / "again.dcm")
    stats = index_directory(opensearch_client, folder, site="site-01", prefix=index_prefix)
    assert [e["reason"].split(" in ")[0] for e in stats.errors] == [
        f"duplicate of SOP Instance UID {pydicom.dcmread(sr).SOPInstanceUID}"]
    series, _ = index_names(index_prefix)
    doc = opensearch_client.get(index=series, id=pydicom.dcmread(sr).SeriesInstanceUID)
    assert [a["sop_instance_uid"] for a in doc["_source"]["annotations"]].count(
        pydicom.dcmread(sr).SOPInstanceUID) == 1


def test_a_patient_beyond_the_nested_object_limit_is_indexed_whole(
        opensearch_client: OpenSearch, index_prefix: str) -> None:
    """12 000 annotations on one patient: more nested objects than OpenSearch's default 10 000
    per document; the limit is raised for the index and every annotation is searchable."""
    _, patients = ensure_indices(opensearch_client, index_prefix)
    key = patient_key("site-x", "many")
    annotations = [{"kind": "SR", "sop_instance_uid": f"2.25.{n}", "codes": [
        {"name": "SCT:1", "value": f"SCT:{n}"}]} for n in range(6000)]
    doc = {"site": "site-x", "patient_id": "many", "patient_key": key, "modalities": ["SR"],
           "series": [], "annotations": annotations}
    from srcohort.index.indexer import PATIENT_PROPERTIES
    from srcohort.index.opensearch import make_room, nested_objects
    assert nested_objects(doc, PATIENT_PROPERTIES) == 12000
    make_room(opensearch_client, patients, [doc], PATIENT_PROPERTIES)
    assert bulk_index(opensearch_client, patients, [(patient_doc_id(key), doc)]) == 1
    opensearch_client.indices.refresh(index=patients)
    hits = opensearch_client.count(index=patients, body={"query": {"nested": {
        "path": "annotations.codes", "query": {"term": {"annotations.codes.value": "SCT:5999"}}}}})
    assert hits["count"] == 1


@pytest.mark.skipif(os.environ.get("SRCOHORT_TEST_OPENSEARCH_URL") is not None,
                    reason="restarts a server of its own")
def test_opensearch_restarted_mid_bulk(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The node goes away while a large load runs and comes back: the load either completes
    (requests are resent with backoff) or stops with an error, and a rerun ends with every
    document, each once."""
    data_dir = Path(tempfile.mkdtemp(prefix="srcohort-test-restart-"))
    server = LocalOpenSearch(data_dir, port=free_port())
    try:
        server.start()
        client = OpenSearch(hosts=[server.url], timeout=30)
        index = "restart-test"
        client.indices.create(index=index)
        body = {"text": "x" * 200}
        docs = [(str(n), dict(copy.deepcopy(body), n=n)) for n in range(150_000)]

        def restart() -> None:
            time.sleep(1.0)
            server.stop()
            server.start()
        restarter = threading.Thread(target=restart)
        restarter.start()
        try:
            bulk_index(client, index, docs)
        except Exception:        # a clear error is allowed; the rerun must converge
            pass
        restarter.join()
        bulk_index(client, index, docs)
        client.indices.refresh(index=index)
        assert client.count(index=index)["count"] == len(docs)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
