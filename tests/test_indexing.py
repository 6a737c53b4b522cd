"""Incremental, idempotent indexing against the real OpenSearch: updates, deletions, crashes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

from srcohort.index.documents import patient_doc_id, patient_key
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names

pytestmark = pytest.mark.opensearch


@pytest.fixture
def site_copy(converted: Path, tmp_path: Path) -> Path:
    """A private copy of one converted site, free to change."""
    source = sorted(converted.iterdir())[0] / "dicom"
    return Path(shutil.copytree(source, tmp_path / "dicom"))


def _counts(client: OpenSearch, prefix: str) -> tuple[int, int]:
    return tuple(client.count(index=name)["count"] for name in index_names(prefix))


def _srs(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*.dcm"))
            if pydicom.dcmread(p, stop_before_pixels=True).Modality == "SR"]


def test_deleted_series_and_patients_leave_the_index(opensearch_client: OpenSearch,
                                                     index_prefix: str, site_copy: Path) -> None:
    index_directory(opensearch_client, site_copy, site="s", prefix=index_prefix)
    series, patients = _counts(opensearch_client, index_prefix)
    sr = pydicom.dcmread(_srs(site_copy)[0])
    shutil.rmtree(_srs(site_copy)[0].parent)                       # one SR series gone
    stats = index_directory(opensearch_client, site_copy, site="s", prefix=index_prefix)
    assert stats.deleted == 1 and _counts(opensearch_client, index_prefix) == (series - 1, patients)
    patient = opensearch_client.get(index=index_names(index_prefix)[1],
                                    id=patient_doc_id(patient_key("s", str(sr.PatientID))))
    assert sr.SOPInstanceUID not in {a["sop_instance_uid"]
                                     for a in patient["_source"]["annotations"]}
    for path in site_copy.rglob("*.dcm"):                          # the whole patient gone
        if pydicom.dcmread(path, stop_before_pixels=True).PatientID == sr.PatientID:
            path.unlink()
    index_directory(opensearch_client, site_copy, site="s", prefix=index_prefix)
    assert _counts(opensearch_client, index_prefix)[1] == patients - 1


OUTCOME_CONCEPT = "307280005"      # the TAVI study's outcome item (study.yaml)


def test_changed_object_updates_the_index(opensearch_client: OpenSearch, index_prefix: str,
                                          site_copy: Path) -> None:
    index_directory(opensearch_client, site_copy, site="s", prefix=index_prefix)
    path = next(p for p in _srs(site_copy)
                if pydicom.dcmread(p).ConceptNameCodeSequence[0].CodeValue == "28570-0")
    ds = pydicom.dcmread(path)
    yes, no = "373066001", "373067005"             # SCT Yes / No, the outcome's answers
    item = next(i for i in ds.ContentSequence
                if i.ConceptNameCodeSequence[0].CodeValue == OUTCOME_CONCEPT)
    flipped = no if item.ConceptCodeSequence[0].CodeValue == yes else yes
    item.ConceptCodeSequence[0].CodeValue = flipped
    item.ConceptCodeSequence[0].CodeMeaning = {yes: "Yes", no: "No"}[flipped]
    ds.save_as(path)
    index_directory(opensearch_client, site_copy, site="s", prefix=index_prefix)
    doc = opensearch_client.get(index=index_names(index_prefix)[0], id=ds.SeriesInstanceUID)
    values = {c["value"] for a in doc["_source"]["annotations"] for c in a["codes"]
              if c["name"] == f"SCT:{OUTCOME_CONCEPT}"}
    assert values == {f"SCT:{flipped}"}


class _DiesDuringBulk:
    """A client whose connection breaks after the first bulk request, like a crashing node."""

    def __init__(self, client: OpenSearch) -> None:
        self._client, self._bulks = client, 0

    def bulk(self, *args, **kwargs):
        self._bulks += 1
        if self._bulks > 1:
            raise OpenSearchConnectionError("N/A", "node went away", None)
        return self._client.bulk(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def test_rerun_after_a_crash_ends_exactly_like_a_clean_run(opensearch_client: OpenSearch,
                                                          index_prefix: str, site_copy: Path,
                                                          tmp_path: Path) -> None:
    clean = f"{index_prefix}clean-"
    index_directory(opensearch_client, site_copy, site="s", prefix=clean)
    expected = _counts(opensearch_client, clean)
    with pytest.raises(OpenSearchConnectionError):
        index_directory(_DiesDuringBulk(opensearch_client), site_copy, site="s",
                        prefix=index_prefix)
    index_directory(opensearch_client, site_copy, site="s", prefix=index_prefix)
    assert _counts(opensearch_client, index_prefix) == expected
    for name, clean_name in zip(index_names(index_prefix), index_names(clean)):
        ids = {h["_id"] for h in opensearch_client.search(index=name, size=1000)["hits"]["hits"]}
        assert ids == {h["_id"] for h in opensearch_client.search(
            index=clean_name, size=1000)["hits"]["hits"]}
