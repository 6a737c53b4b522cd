"""Benchmark of a federated release with the release ledger, as the ledger grows.

A synthetic site of ``--patients`` patients (CT for all; ECG, SEG, outcome, ECG and planning SRs
for some; slice thickness, kVp and rows spread at random) is indexed into a local OpenSearch
(started and stopped here) through the real bulk writer and patient roll-up. Then
``--releases`` cohorts, each two random range conditions on those attributes and so
overlapping one another, are released one after the other through ``release_site``. Per
release it prints:

* baseline: what a release cost before the ledger, measured here on the same release: the
  cohort query and the release's own (single-table) suppression;
* read: reading and verifying the ledger;
* audit: the linked audit against every earlier release on its own (its size in atoms and
  cells; the cells it hid, or the refusal);
* release: the whole ``release_site`` as the CLI runs it (query, suppression, read, audit,
  ledger and audit-log entries, the file);
* the ledger's size in OpenSearch.

Peak memory of the process at the end.

    .venv/bin/python benchmarks/ledger.py --patients 3000 --releases 10
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import socket
import tempfile
import time
from pathlib import Path

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.cohort.definition import Cohort, load_cohort
from srcohort.cohort.label import LabelSpec
from srcohort.cohort.run import list_patients
from srcohort.federated import Ledger, ReleaseRefused, release_site
from srcohort.federated.aggregate import KEEP, site_release
from srcohort.federated.ledger import as_published, history
from srcohort.federated.linked import LinkedModel, connected, linked_hiding
from srcohort.index.connection import connect
from srcohort.index.indexer import rollup_patients
from srcohort.index.opensearch import bulk_index, ensure_indices
from srcohort.server import LocalOpenSearch
from srcohort.sr.profiles import default_profiles
from srcohort.study.load import load_study

PREFIX = "bench-ledger-"
SITE = "site-b"
YES, NO = "SCT:373066001", "SCT:373067005"
ATTRIBUTES = {"00180050 SliceThickness_float": (0.5, 5.0), "00180060 KVP_float": (80.0, 140.0),
              "00280010 Rows_integer": (256, 768)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def synthetic_series(patients: int, rng: random.Random) -> list[dict]:
    """Series documents of a site, shaped as the indexer writes them."""
    docs = []
    for i in range(patients):
        pid = f"B{i:06d}"
        common = {"site": SITE, "patient_id": pid, "patient_key": f"{SITE}/{pid}",
                  "study_instance_uid": f"2.25.{i}.1", "study_date": None,
                  "series_description": "", "instances": 1, "files": []}
        ct = {name: (rng.randint(*span) if name.endswith("_integer") else
                     round(rng.uniform(*span), 2)) for name, span in ATTRIBUTES.items()}
        docs.append({**common, **ct, "series_instance_uid": f"{pid}.1", "modality": "CT",
                     "annotations": []})
        if rng.random() < 0.6:
            docs.append({**common, "series_instance_uid": f"{pid}.2", "modality": "ECG",
                         "annotations": []})
        if rng.random() < 0.3:
            docs.append({**common, "series_instance_uid": f"{pid}.3", "modality": "SEG",
                         "annotations": []})
        annotations = []
        if rng.random() < 0.8:
            annotations.append({"kind": "SR", "profile": "srcohort-tavi-outcome",
                                "fields": {"pacemaker": YES if rng.random() < 0.2 else NO}})
        if rng.random() < 0.5:
            annotations.append({"kind": "SR", "profile": "3700",
                                "fields": {"heart_rate": round(rng.uniform(50, 100), 1)}})
        if rng.random() < 0.7:
            annotations.append({"kind": "SR", "profile": "1500",
                                "fields": {"annulus_diameter": round(rng.uniform(19, 29), 1)}})
        for n, annotation in enumerate(annotations):
            docs.append({**common, "series_instance_uid": f"{pid}.sr{n}", "modality": "SR",
                         "annotations": [{**annotation, "sop_instance_uid": f"{pid}.sr{n}.1",
                                          "series_instance_uid": f"{pid}.sr{n}",
                                          "template": ""}]})
    return docs


def index_site(client: OpenSearch, patients: int, rng: random.Random) -> float:
    series_index, _ = ensure_indices(client, PREFIX)
    start = time.perf_counter()
    docs = synthetic_series(patients, rng)
    bulk_index(client, series_index, ((d["series_instance_uid"], d) for d in docs))
    client.indices.refresh(index=series_index)
    rollup_patients(client, PREFIX, {d["patient_key"] for d in docs})
    return time.perf_counter() - start


def random_cohort(number: int, rng: random.Random) -> Cohort:
    """Two range conditions on one CT each: cohorts overlap in every way."""
    conditions = []
    for name in rng.sample(sorted(ATTRIBUTES), 2):
        low, high = ATTRIBUTES[name]
        cut = low + (high - low) * rng.uniform(0.3, 0.8)
        bound = {"max": cut} if rng.random() < 0.5 else {"min": cut}
        if name.endswith("_integer"):
            bound = {key: int(value) for key, value in bound.items()}
        conditions.append({"series": {"modality": "CT", "attributes": {name: bound}}})
    combine = "all" if number % 2 == 0 else "any"
    return load_cohort({"name": f"bench-{number}", "patients": {combine: conditions}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--releases", type=int, default=10)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="an OpenSearch to use instead of starting one")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    server_dir = Path(tempfile.mkdtemp(prefix="srcohort-ledger-opensearch-"))
    out = Path(tempfile.mkdtemp(prefix="srcohort-ledger-out-"))
    server = None if args.url else LocalOpenSearch(server_dir, port=_free_port())
    try:
        client = connect(args.url or server.start(timeout=300))
        client.indices.delete(index=f"{PREFIX}*", ignore_unavailable=True)
        print(f"indexed {args.patients} patients in {index_site(client, args.patients, rng):.1f} s")
        print(f"{'release':>7} {'patients':>8} | {'baseline s':>10} | {'read s':>7} "
              f"{'audit s':>8} {'release s':>9} | {'atoms':>6} {'cells':>6} {'hidden':>7} | "
              f"{'ledger MB':>9}")
        actor = Actor("benchmark")
        label = LabelSpec.of_study(load_study("tavi"))
        for number in range(args.releases):
            cohort = random_cohort(number, rng)
            start = time.perf_counter()            # baseline: query + own suppression
            docs = list(list_patients(client, cohort, prefix=PREFIX))
            candidate = site_release(docs, cohort=cohort, site=SITE,
                                     profiles=default_profiles(), label=label, k=args.k)
            baseline = time.perf_counter() - start
            start = time.perf_counter()            # reading and verifying the ledger
            earlier = history(Ledger(client, PREFIX).entries())
            read = time.perf_counter() - start
            new = as_published(candidate.aggregate, candidate.members, "new")
            start = time.perf_counter()            # the linked audit on its own
            try:
                outcome = f"+{len(linked_hiding(new, earlier, keep=KEEP))}"
            except ReleaseRefused:
                outcome = "refused"
            audit = time.perf_counter() - start
            start = time.perf_counter()            # the whole release, as the CLI runs it
            try:
                release_site(client, cohort, site=SITE, prefix=PREFIX, k=args.k,
                             out=out / f"{cohort.name}.json", actor=actor)
            except ReleaseRefused:
                pass
            total = time.perf_counter() - start
            model = LinkedModel(new, connected(new, earlier))
            size = client.indices.stats(index=f"{PREFIX}release-ledger")[
                "indices"][f"{PREFIX}release-ledger"]["total"]["store"]["size_in_bytes"]
            print(f"{number:>7} {len(docs):>8} | {baseline:>10.2f} | {read:>7.2f} {audit:>8.2f} "
                  f"{total:>9.2f} | {len(model.atom_sizes):>6} {len(model.cells):>6} "
                  f"{outcome:>7} | {size / 1e6:>9.2f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process: {peak:.0f} MB")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(server_dir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
