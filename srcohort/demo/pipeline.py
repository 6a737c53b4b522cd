"""``srcohort demo``: the whole data flow on a synthetic consortium and a local OpenSearch.

The active study's consortium (TAVI's own generator, or any study's from its declarations) ->
per-site conversion -> per-site indexing (each site its own indices, as separate
deployments would have) -> example cohort counts per site (compared with the ground truth the
generator wrote, which nothing else reads) -> federated counts (k-suppressed aggregates only,
with plots) -> each site's unified training export. Every index run, count, release and export
is entered in the site's audit log (``srcohort audit --prefix srcohort-demo-<site>-``) and every
release in its release ledger.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.audit.audited import count_patients, index_directory
from srcohort.audit.log import audit_log, line
from srcohort.cohort.library import resolve_cohort
from srcohort.convert.site import convert_site
from srcohort.demo.consortium import generate_consortium
from srcohort.demo.generic import generate_study_consortium
from srcohort.export.run import export_formats
from srcohort.federated import run_federated_count
from srcohort.index.connection import connect
from srcohort.logs import get_logger
from srcohort.server import default_server
from srcohort.study.load import load_study

log = get_logger(__name__)
# Each site's indices: srcohort-demo-<site>-series / -patients (never Kaapana's).
DEMO_PREFIX_TEMPLATE = "srcohort-demo-{site}-"
DEMO_SECRET = b"demo-only-secret: a real site keeps its own in a secret store"
DEMO_K = 5


def run_demo(out: Path, *, sites: int, patients_per_site: int, seed: int,
             keep_server: bool = False) -> int:
    """Run every stage for the active study (``srcohort.study``); return 0 when every site's
    count of every saved cohort of the study equals the ground truth."""
    study = load_study()
    timings: dict[str, float] = {}
    actor = Actor.current()
    server = default_server()
    with _timed(timings, "opensearch start"):
        client = connect(server.start())
    try:
        with _timed(timings, "demo data"):
            generate = generate_consortium if study.name == "tavi" else functools.partial(
                generate_study_consortium, study=study)
            truth_path = generate(out / "consortium", sites=sites,
                                  patients_per_site=patients_per_site, seed=seed)
        client.indices.delete(index=DEMO_PREFIX_TEMPLATE.format(site="*") + "*",
                              ignore_unavailable=True)
        site_dirs = sorted(p for p in (out / "consortium").iterdir() if (p / "mapping.yaml").exists())
        prefixes: dict[str, str] = {}
        for site_dir in site_dirs:
            with _timed(timings, "convert"):
                report = convert_site(site_dir, out / "converted" / site_dir.name)
            prefixes[report.site] = DEMO_PREFIX_TEMPLATE.format(site=report.site)
            with _timed(timings, "index"):
                index_directory(client, out / "converted" / site_dir.name / "dicom",
                                site=report.site, prefix=prefixes[report.site], actor=actor)
        truth = json.loads(truth_path.read_text("utf-8"))
        ok = True
        for name in study.cohorts:
            cohort = resolve_cohort(name)
            with _timed(timings, "cohort count"):
                counts = {site: count_patients(client, cohort, prefix=prefix,
                                               actor=actor)["total"]
                          for site, prefix in prefixes.items()}
            ok &= _print_counts(cohort.description, counts, truth["cohorts"][name])
            with _timed(timings, "federated count"):
                combined = run_federated_count(
                    client, cohort, sorted(prefixes), prefix_template=DEMO_PREFIX_TEMPLATE,
                    k=DEMO_K, out_dir=out / "federated" / name, actor=actor)
            print(f"\nfederated aggregates (k = {DEMO_K}; only these leave the sites):")
            print(combined.table())
            print(f"plots and JSON: {out / 'federated' / name}")
        cohort = resolve_cohort(next(iter(study.cohorts)))
        exported = 0
        with _timed(timings, "export"):
            for site, prefix in prefixes.items():
                summary = export_formats(client, cohort, out / "export" / site,
                                         output_format="unified", prefix=prefix,
                                         secret=DEMO_SECRET, actor=actor)
                exported += summary["unified"]["patients"]
        print(f"\nunified training export: {exported} patients at {len(prefixes)} sites -> "
              f"{out / 'export'}/<site>/unified")
        _print_audit(client, prefixes)
        print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        return 0 if ok else 1
    finally:
        if not keep_server:
            server.stop()


def _print_audit(client: OpenSearch, prefixes: dict[str, str]) -> None:
    """The first site's audit log as ``srcohort audit`` prints it, and every site's size."""
    first = next(iter(prefixes.values()))
    print(f"\naudit log of {next(iter(prefixes))} (srcohort audit --prefix {first}):")
    for entry in audit_log(client, first).verified():
        print(line(entry))
    print("entries per site: " + ", ".join(
        f"{site} {len(audit_log(client, prefix).entries())}" for site, prefix in prefixes.items()))


def _print_counts(description: str, counts: dict[str, int], truth: dict) -> bool:
    """Site-local counts (each site sees its own, unsuppressed) against the ground truth."""
    expected = {**truth["per_site"], "total": truth["total"]}
    counts = {**counts, "total": sum(counts.values())}
    print(f"\ncohort: {' '.join(description.split())}")
    print(f"{'site':<10}{'patients':>10}{'truth':>8}")
    ok = True
    for site in sorted(expected, key=lambda s: (s == "total", s)):
        got = counts.get(site, 0)
        ok &= got == expected[site]
        flag = "" if got == expected[site] else "   MISMATCH"
        print(f"{site:<10}{got:>10}{expected[site]:>8}{flag}")
    print("all counts equal the ground truth" if ok else "counts DIFFER from the ground truth")
    return ok


class _timed:
    """Accumulate wall time per stage, for the closing summary."""

    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.monotonic() - self.start
