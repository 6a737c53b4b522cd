"""The OpenSearch answer equals the brute-force answer, for every generated cohort.

The consortium is indexed once per module; >= 1000 random definitions drawn from the data's own
vocabulary (random_definitions.py) run as a few msearch batches against the nested patient
index and, independently, against the source DICOM files (bruteforce.py). Then the same
definitions run against a copy of the patient documents in an index mapped with ``object``
instead of ``nested``: the false positives it returns are what nesting prevents.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import highdicom as hd
import numpy as np
import pydicom
import pytest
from opensearchpy import OpenSearch, helpers
from pydicom.sr.codedict import codes

from tests.bruteforce import PatientFacts, evaluate, read_patients
from srcohort.cohort.definition import known_events, load_cohort
from srcohort.cohort.model import Cohort
from srcohort.cohort.query import Query, compile_expr
from tests.random_definitions import RandomDefinitions
from srcohort.index.documents import patient_doc_id
from srcohort.index.indexer import index_directory
from srcohort.index.mapping import patients_index_body
from srcohort.index.opensearch import bulk_index, index_names

DEFINITIONS = 1000
MSEARCH_BATCH = 300


@dataclass
class Indexed:
    prefix: str
    facts: dict[str, PatientFacts]
    cohorts: list[Cohort]
    expected: list[set[str]]


def sites_of(root: Path) -> dict[str, Path]:
    return {d.name: d / "dicom" for d in sorted(root.iterdir()) if (d / "dicom").is_dir()}


def matching_keys(client: OpenSearch, index: str, queries: list[Query],
                  keys: dict[str, str]) -> list[set[str]]:
    """Patient keys per query, batched; ``keys`` maps document ids back to patient keys."""
    answers: list[set[str]] = []
    for start in range(0, len(queries), MSEARCH_BATCH):
        body: list[dict[str, Any]] = []
        for query in queries[start:start + MSEARCH_BATCH]:
            body += [{"index": index}, {"query": query, "size": len(keys) + 1, "_source": False}]
        for response in client.msearch(body=body)["responses"]:
            assert "error" not in response, response
            answers.append({keys.get(hit["_id"], hit["_id"]) for hit in response["hits"]["hits"]})
    return answers


def exposing_definitions(facts: dict[str, PatientFacts]) -> list[dict[str, Any]]:
    """Definitions whose conditions one annotation meets only across two of its items.

    An annotation with codes (A = x) and (B = y), in a patient with no code (A = y) anywhere:
    asking for (A = y) must not select the patient, while a flattened index sees name A and
    value y side by side.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for patient in facts.values():
        present = {(i["name"], i["value"]) for a in patient.annotations
                   for i in a.content.get("codes", [])}
        for annotation in patient.annotations:
            items = annotation.content.get("codes", [])
            for item in items:
                for sibling in items:
                    pair = (item["name"], sibling["value"])
                    if pair in found or pair in present:
                        continue
                    found[pair] = {"name": f"exposing-{len(found)}", "patients": {"annotation": {
                        "codes": [{"name": pair[0], "value": pair[1]}]}}}
    return list(found.values())[:20]


@pytest.fixture(scope="module")
def indexed(opensearch_client: OpenSearch, converted: Path) -> Iterator[Indexed]:
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    sites = sites_of(converted)
    for site, folder in sites.items():
        index_directory(opensearch_client, folder, site=site, prefix=prefix)
    facts = read_patients(sites)
    raw = RandomDefinitions(facts, known_events(), seed=7).definitions(DEFINITIONS)
    cohorts = [load_cohort(d) for d in raw + exposing_definitions(facts)]
    try:
        yield Indexed(prefix, facts, cohorts, [evaluate(c.patients, facts) for c in cohorts])
    finally:
        opensearch_client.indices.delete(index=f"{prefix}*", ignore_unavailable=True)


def test_every_random_cohort_matches_the_bruteforce_answer(opensearch_client: OpenSearch,
                                                            indexed: Indexed) -> None:
    _, patients = index_names(indexed.prefix)
    keys = {patient_doc_id(key): key for key in indexed.facts}
    got = matching_keys(opensearch_client, patients,
                        [compile_expr(c.patients) for c in indexed.cohorts], keys)
    mismatches = [(c.source, sorted(want - have), sorted(have - want))
                  for c, want, have in zip(indexed.cohorts, indexed.expected, got) if want != have]
    informative = sum(0 < len(want) < len(keys) for want in indexed.expected)
    print(f"\n{len(indexed.cohorts)} definitions, {informative} with a proper subset of the "
          f"{len(keys)} patients, {len(mismatches)} mismatches")
    with_fields = sum(_has_fields(c.source) for c in indexed.cohorts)
    assert len(indexed.cohorts) >= 1000
    assert with_fields >= 100, "conditions on declared fields must be covered"
    assert informative >= len(indexed.cohorts) // 4, "the generated cohorts say too little"
    assert not mismatches, mismatches[:3]


def _has_fields(node: Any) -> bool:
    if isinstance(node, dict):
        return "fields" in node or any(_has_fields(v) for v in node.values())
    return isinstance(node, list) and any(_has_fields(v) for v in node)


def without_nested(mapping: Any) -> Any:
    """The same mapping with every ``nested`` type turned into a plain ``object``."""
    if isinstance(mapping, dict):
        return {k: "object" if k == "type" and v == "nested" else without_nested(v)
                for k, v in mapping.items()}
    return mapping


def test_flattened_objects_give_false_positives(opensearch_client: OpenSearch,
                                                indexed: Indexed) -> None:
    _, patients = index_names(indexed.prefix)
    flat = f"{indexed.prefix}flattened"
    opensearch_client.indices.create(index=flat, body=without_nested(patients_index_body()))
    bulk_index(opensearch_client, flat, ((hit["_id"], hit["_source"])
                                         for hit in helpers.scan(opensearch_client, index=patients)))
    opensearch_client.indices.refresh(index=flat)
    keys = {patient_doc_id(key): key for key in indexed.facts}
    got = matching_keys(opensearch_client, flat,
                        [compile_expr(c.patients, nested=False) for c in indexed.cohorts], keys)
    extra = [have - want for want, have in zip(indexed.expected, got)]
    missing = [want - have for want, have in zip(indexed.expected, got)]
    exposing = [c.name.startswith("exposing-") for c in indexed.cohorts]
    print(f"\nflattened: {sum(map(bool, extra))} of {len(got)} definitions with false positives "
          f"({sum(map(len, extra))} patients), {sum(map(bool, missing))} with false negatives "
          f"({sum(map(len, missing))} patients)")
    # whenever the data holds an annotation that exposes flattening, the count is > 0:
    assert any(exposing), "the data must hold annotations that expose flattening"
    assert all(wrong for wrong, is_exposing in zip(extra, exposing) if is_exposing)


# -- segmentations: conditions on segments hold on ONE segmentation ----------------------------

def _seg(cts: list[pydicom.Dataset], structures: list[tuple[str, Any, str]], number: int
         ) -> hd.seg.Segmentation:
    """A binary SEG on ``cts`` with one segment per (label, type code, algorithm type)."""
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=label,
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=kind, algorithm_type=algorithm,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="test", version="1", family=codes.DCM.ArtificialIntelligence)
        if algorithm != "MANUAL" else None)
        for i, (label, kind, algorithm) in enumerate(structures)]
    mask = np.zeros((len(cts), cts[0].Rows, cts[0].Columns, len(structures)), dtype=bool)
    for i in range(len(structures)):
        mask[:, i, i, i] = True
    return hd.seg.Segmentation(
        source_images=cts, pixel_array=mask, segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="srcohort tests",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1")


def test_segment_conditions_hold_on_one_segmentation(opensearch_client: OpenSearch,
                                                     index_prefix: str, converted: Path,
                                                     tmp_path: Path) -> None:
    site = next(iter(sites_of(converted)))
    folder = tmp_path / site / "dicom"
    shutil.copytree(sites_of(converted)[site], folder)
    cts: dict[str, list[pydicom.Dataset]] = {}
    for path in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        if ds.Modality == "CT":
            cts.setdefault(str(ds.PatientID), []).append(ds)
        elif ds.Modality == "SEG":        # the site's own SEGs: only the ones made here count
            path.unlink()
    (both, _), (split, _), (automatic, _) = list(cts.items())[:3]
    left = ("Left Ventricle", codes.SCT.LeftVentricle)
    right = ("Right Ventricle", codes.SCT.RightVentricle)
    segs = [(both, [(*left, "MANUAL"), (*right, "MANUAL")]), (split, [(*left, "MANUAL")]),
            (split, [(*right, "MANUAL")]), (automatic, [(*left, "AUTOMATIC")])]
    for n, (patient, structures) in enumerate(segs):
        _seg(cts[patient], structures, 300 + n).save_as(folder / f"seg-{n}.dcm")
    index_directory(opensearch_client, folder, site=site, prefix=index_prefix)
    facts = read_patients({site: folder})
    _, patients = index_names(index_prefix)
    keys = {patient_doc_id(key): key for key in facts}
    lv, rv = (f"SCT:{c.value}" for c in (codes.SCT.LeftVentricle, codes.SCT.RightVentricle))
    cases = {
        "both ventricles in one SEG": ({"segments": [{"type": lv}, {"type": rv}]}, {both}),
        "two SEGs": ({"kind": "SEG", "at_least": 2}, {split}),
        "automatic LV": ({"segments": [{"type": lv, "algorithm_type": "automatic"}]},
                         {automatic}),
        "label of one, algorithm of another": (
            {"segments": [{"label": "Right Ventricle", "algorithm_type": "AUTOMATIC"}]}, set()),
    }
    cohorts = [load_cohort({"name": name, "patients": {"annotation": condition}})
               for name, (condition, _) in cases.items()]
    got = matching_keys(opensearch_client, patients, [compile_expr(c.patients) for c in cohorts],
                        keys)
    for cohort, (_, wanted), answer in zip(cohorts, cases.values(), got):
        expected = {f"{site}/{patient}" for patient in wanted}
        assert answer == evaluate(cohort.patients, facts) == expected, cohort.name
