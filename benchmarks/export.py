"""Benchmark of the exports: the unified training export against copying and DICOM export.

On the demo consortium (converted and indexed here, local OpenSearch started and stopped
here) it exports one cohort and prints, per path, patients per second, source MB read per
second and MB written, plus peak memory:

* baseline ``copy``: the cohort samples' source files copied as they are (the I/O floor:
  no decoding, no de-identification);
* ``dicom``: the de-identified DICOM export (exporter.py, the PS3.15 profile per file);
* ``unified``: the training export (NIfTI CT and masks, ECG arrays, Parquet, card, PHI scan),
  in one process and on every core;
* ``unified, resumed``: the same export run again over its own output (every patient's
  checksums verified and skipped; the tables, card and the PHI scan redone).

Every rate is the best of ``--repeat`` runs in this run on this machine.

    .venv/bin/python benchmarks/export.py --sites 8 --patients-per-site 20 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.run import list_patients
from srcohort.convert.site import convert_site
from srcohort.demo.consortium import generate_consortium
from srcohort.export.exporter import export_cohort
from srcohort.export.selection import choose_sample, series_files
from srcohort.export.training import TrainingSettings, export_training
from srcohort.index.connection import connect
from srcohort.index.indexer import index_directory
from srcohort.index.opensearch import index_names
from srcohort.server import default_server

PREFIX = "bench-export-"
SECRET = b"benchmark-secret"


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _best(repeat: int, run: Callable[[Path], int], work: Path) -> tuple[float, int, int]:
    """Best seconds of ``repeat`` fresh runs, the patients of the last, bytes written."""
    best, patients, written = float("inf"), 0, 0
    for n in range(repeat):
        out = work / f"run-{n}"
        start = time.perf_counter()
        patients = run(out)
        best = min(best, time.perf_counter() - start)
        written = _size(out)
        if n < repeat - 1:
            shutil.rmtree(out)
    return best, patients, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--patients-per-site", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2, help="runs per path (best is shown)")
    parser.add_argument("--cohort", default="tavi-self-expanding")
    args = parser.parse_args()

    server = default_server()
    client = connect(server.start())
    try:
        with tempfile.TemporaryDirectory(prefix="srcohort-bench-export-") as tmp:
            work = Path(tmp)
            generate_consortium(work / "consortium", sites=args.sites,
                                patients_per_site=args.patients_per_site, seed=0)
            client.indices.delete(index=f"{PREFIX}*", ignore_unavailable=True)
            for site in sorted((work / "consortium").glob("site-*")):
                convert_site(site, work / "converted" / site.name)
                index_directory(client, work / "converted" / site.name / "dicom",
                                site=site.name, prefix=PREFIX)
            cohort = resolve_cohort(args.cohort)
            series_index, _ = index_names(PREFIX)
            settings = TrainingSettings()
            patients = list(list_patients(client, cohort, prefix=PREFIX))
            sources = [f for patient in patients
                       for files in series_files(client, series_index, choose_sample(
                           patient, anchor=settings.anchor).series).values() for f in files]
            source_mb = sum(os.path.getsize(f) for f in sources) / 1e6
            every_series = [f for patient in patients for uids in [
                {s["series_instance_uid"] for s in patient["series"]}]
                for files in series_files(client, series_index, uids).values() for f in files]
            dicom_mb = sum(os.path.getsize(f) for f in every_series) / 1e6

            def copy(out: Path) -> int:
                out.mkdir(parents=True)
                for n, source in enumerate(sources):
                    shutil.copyfile(source, out / f"{n}.dcm")
                return len(patients)

            def dicom(out: Path) -> int:
                return export_cohort(client, cohort, out, prefix=PREFIX, secret=SECRET).patients

            def unified(out: Path, workers: int | None = None) -> int:
                return export_training(client, cohort, out, secret=SECRET, prefix=PREFIX,
                                       settings=settings, workers=workers).patients

            rows = [("copy (baseline)", source_mb, *_best(args.repeat, copy, work / "copy")),
                    ("dicom", dicom_mb, *_best(args.repeat, dicom, work / "dicom")),
                    ("unified, 1 process", source_mb, *_best(
                        args.repeat, lambda out: unified(out, workers=1), work / "serial")),
                    ("unified", source_mb, *_best(args.repeat, unified, work / "unified"))]
            resumed_out = work / "unified" / f"run-{args.repeat - 1}"
            start = time.perf_counter()
            resumed = unified(resumed_out)
            rows.append(("unified, resumed", source_mb, time.perf_counter() - start, resumed,
                         _size(resumed_out)))
    finally:
        server.stop()

    print(f"{args.sites} sites x {args.patients_per_site} patients, cohort {args.cohort}: "
          f"{rows[0][3]} patients; the samples' {len(sources)} source files hold "
          f"{source_mb:.1f} MB, all {len(every_series)} files of their series {dicom_mb:.1f} MB "
          f"(what the DICOM export reads); best of {args.repeat} runs; {os.cpu_count()} cores")
    print(f"{'path':<20}{'seconds':>9}{'patients/s':>12}{'read MB/s':>11}{'MB written':>12}"
          f"{'written MB/s':>14}{'x copy':>8}")
    baseline = rows[0][2]
    for name, read_mb, seconds, patients, written in rows:
        print(f"{name:<20}{seconds:>9.2f}{patients / seconds:>12.1f}{read_mb / seconds:>11.1f}"
              f"{written / 1e6:>12.1f}{written / 1e6 / seconds:>14.1f}{seconds / baseline:>8.1f}")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
