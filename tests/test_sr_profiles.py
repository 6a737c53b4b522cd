"""SR templates as data: fields declared in a study's templates, and a new template by YAML alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from srcohort.index.content import sr_annotation
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names
from srcohort.sr.profiles import study_profiles
from srcohort.study.load import load_study, study_folder

NEW_TEMPLATE = """
template: offis-diagnosis
name: A template nobody here wrote (pydicom's test-SR.dcm)
identify: {root: "TEST:1111"}
content:
  - concept: ""
    value_type: CONTAINER
    children:
      - {concept: "99_OFFIS_DCMTK:1234", value_type: NUM, filter: quantitative,
         field: mass_diameter, unit: cm}
"""


def test_installed_templates_name_the_fields_cohorts_use(converted: Path) -> None:
    fields: dict[str, set] = {}
    for path in sorted(converted.glob("*/dicom/*/*/*.dcm")):
        ds = pydicom.dcmread(path)
        if ds.Modality == "SR":
            annotation = sr_annotation(ds)
            assert annotation["profile"], path
            for name, value in annotation["fields"].items():
                fields.setdefault(name, set()).add(str(value))
    assert {"pacemaker", "prosthesis_family", "diabetes", "tavi_date"} <= fields.keys()
    assert fields["pacemaker"] <= {"SCT:373066001", "SCT:373067005"}


def test_a_new_template_becomes_filterable_through_yaml_alone(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    before = sr_annotation(ds)
    assert "fields" not in before and before["numbers"]        # generic extraction still works
    folder = Path(shutil.copytree(str(study_folder("tavi")), tmp_path / "study"))
    (folder / "templates" / "offis-diagnosis.yaml").write_text(NEW_TEMPLATE, "utf-8")
    study_file = folder / "study.yaml"
    study_file.write_text(study_file.read_text("utf-8").replace(
        "templates: [", "templates: [offis-diagnosis.yaml, "), "utf-8")
    after = sr_annotation(ds, study_profiles(load_study(str(folder))))
    assert after["profile"] == "offis-diagnosis"
    assert after["fields"] == {"mass_diameter": 3.0}
    assert {k: v for k, v in after.items() if k not in ("fields", "profile")} == before


@pytest.mark.opensearch
def test_declared_fields_are_searchable_and_agree_with_generic_items(
        opensearch_client, index_prefix: str, converted: Path) -> None:
    for site_dir in sorted(converted.iterdir()):
        index_directory(opensearch_client, site_dir / "dicom", site=site_dir.name,
                        prefix=index_prefix)
    patients = index_names(index_prefix)[1]

    def count(inner: dict) -> int:
        body = {"query": {"nested": {"path": "annotations", "query": inner}}}
        return opensearch_client.count(index=patients, body=body)["count"]
    yes = "SCT:373066001"
    by_field = count({"term": {"annotations.fields.pacemaker": yes}})
    by_item = count({"nested": {"path": "annotations.codes", "query": {"bool": {"filter": [
        {"term": {"annotations.codes.name": "SCT:307280005"}},
        {"term": {"annotations.codes.value": yes}}]}}}})
    assert by_field == by_item > 0
    sized = count({"range": {"annotations.fields.prosthesis_size": {"gte": 20, "lte": 34}}})
    assert sized > 0
