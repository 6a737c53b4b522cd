"""Benchmark of SR construction: highdicom's constructors against srcohort's fast path.

Content is the demo consortium (``generate_consortium``, 8 sites x 20 patients by default),
assembled per patient as ``convert_site`` assembles it. Per SR family (history, procedure
outcome, TID 1500 planning, and all three together) it prints SRs per second for

* the baseline: every content item, template and SR built by highdicom's constructors
  (``items.highdicom_only()``: plain ``hd.sr.ComprehensiveSR`` / ``Comprehensive3DSR`` with the
  same content), one process;
* srcohort's path: a fresh process's first pass (its prototypes still to be built), one warm
  process, and all cores: a fresh pool per run whose workers are forked once this process holds
  the prototypes and get the patients at fork (what convert/site.py does through
  ``srcohort.parallel.fork_map``: the first patient in this process, then workers forked after
  it that inherit the jobs), and, for
  comparison, the same pool with every chunk's inputs pickled (how site.py sent them before it
  adopted the fork hand-over);

with the speed-up of each over the baseline, per wall-clock second and per CPU second (the
machine may be shared: CPU seconds show what each path costs whatever else runs). Then what
costs the same on both paths (pydicom writing a file, pickling a patient's inputs, a pool's
start-up), ECG conversions and report SRs, SEGs per second, and peak memory. Every rate is the
best of ``--repeat`` runs in this run on this machine, baseline included.

    .venv/bin/python benchmarks/convert.py --sites 8 --patients-per-site 20 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import pickle
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable, TypeVar

from pydicom.dataset import Dataset

from srcohort.convert.patients import PatientInputs, build_patient, with_ct
from srcohort.convert.report import ConversionReport, Quarantine
from srcohort.convert.site import collect_patients
from srcohort.demo.consortium import generate_consortium
from srcohort.seg import build_segmentation
from srcohort.sources.ecg.model import EcgFormatError, EcgRecording
from srcohort.sources.ecg.read import read_ecg
from srcohort.sources.images import scan_series
from srcohort.sources.labelmaps import LabelMapError, LabelTable, read_label_table
from srcohort.sources.mapping import SiteMapping, load_mapping
from srcohort.sources.tables import TableRecord
from srcohort.sr import items
from srcohort.sr.ecg import EcgReport, EcgReportSR
from srcohort.study.load import load_study
from srcohort.waveform.sop import ecg_dataset

STUDY = load_study("tavi")


def _only(*tables: str) -> Callable[[PatientInputs], PatientInputs]:
    """The patient with only these tables: what one template family is written from."""
    return lambda p: replace(p, tables={t: rows for t, rows in p.tables.items() if t in tables})


FAMILIES: dict[str, Callable[[PatientInputs], PatientInputs]] = {
    "history (TID 3802)": _only("registry"),
    "procedure outcome": _only("procedures"),
    "planning (TID 1500)": _only("landmarks", "measurements"),
    "all three": lambda p: p,
}
_INHERITED: list[PatientInputs] = []     # a pool worker's patients, set at fork
T = TypeVar("T")


def _site_inputs(consortium: Path, scratch: Path
                 ) -> list[tuple[SiteMapping, dict[str, PatientInputs], list[TableRecord]]]:
    sites = []
    for site_dir in sorted(consortium.glob("site-*")):
        mapping = load_mapping(site_dir)
        report = ConversionReport(mapping.site)
        series, _, _ = scan_series(mapping.images, site_dir)
        patients, segmentations = collect_patients(
            mapping, series, Quarantine(scratch / site_dir.name, site_dir, report),
            dt.date.today())
        sites.append((mapping, {pid: with_ct(inputs) for pid, inputs in patients.items()},
                      segmentations))
    return sites


def _build(patients: list[PatientInputs]) -> int:
    return sum(len(build_patient(STUDY, inputs).reports) for inputs in patients)


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (pool workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _rates(run: Callable[[], int], repeat: int) -> tuple[float, float]:
    """Best items per wall-clock second and per CPU second of ``repeat`` runs."""
    wall = cpu = 0.0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _cpu_seconds()
        count = run()
        wall = max(wall, count / (time.perf_counter() - start))
        cpu = max(cpu, count / max(_cpu_seconds() - start_cpu, 1e-9))
    return wall, cpu


def _adopt(patients: list[PatientInputs]) -> None:
    _INHERITED[:] = patients


def _build_inherited(part: range) -> int:
    return _build([_INHERITED[i] for i in part])


def _pool_rates(patients: list[PatientInputs], workers: int, repeat: int, *,
                pickled: bool) -> tuple[float, float]:
    """SRs per second of a fresh pool (start-up included) over ``4 * workers`` chunks."""
    chunks = 4 * workers

    def run() -> int:
        if pickled:
            with ProcessPoolExecutor(workers) as pool:
                return sum(pool.map(_build, [patients[i::chunks] for i in range(chunks)]))
        with ProcessPoolExecutor(workers, initializer=_adopt, initargs=(patients,)) as pool:
            return sum(pool.map(_build_inherited,
                                [range(i, len(patients), chunks) for i in range(chunks)]))
    return _rates(run, repeat)


def _write_ms(patients: list[PatientInputs]) -> float:
    """Milliseconds per SR for pydicom to write it (the same bytes on both paths)."""
    srs = [sr for inputs in patients for sr, _ in build_patient(STUDY, inputs).reports]
    start = time.perf_counter()
    for sr in srs:
        sr.save_as(io.BytesIO(), enforce_file_format=True)
    return (time.perf_counter() - start) * 1000 / max(1, len(srs))


def _families(patients: list[PatientInputs], repeat: int) -> None:
    cores = os.cpu_count() or 1
    work = {family: [subset(inputs) for inputs in patients]
            for family, subset in FAMILIES.items()}
    baseline = {}
    with items.highdicom_only():
        _build(work["all three"])                   # highdicom loads its standard tables
        for family, inputs in work.items():
            baseline[family] = _rates(lambda: _build(inputs), repeat)
    # before this process builds any prototype: a fresh worker's first pass
    rates = {family: [_pool_rates(inputs, 1, 1, pickled=False)]
             for family, inputs in work.items()}
    for family, inputs in work.items():
        _build(inputs)
        rates[family] += [_rates(lambda: _build(inputs), repeat),
                          _pool_rates(inputs, cores, repeat, pickled=False),
                          _pool_rates(inputs, cores, repeat, pickled=True)]
    header = (f"{'family':20} {'SRs':>4} {'baseline':>8} {'fresh process':>15} "
              f"{'1 process':>15} {f'{cores} processes':>15} {'(pickled)':>15}")
    for clock, title in enumerate(("per wall-clock second", "per CPU second (all processes; "
                                   "what each path costs whatever else runs)")):
        print(f"SRs {title}, best of {repeat} runs; x = over the baseline; {cores} cores")
        print(header + (f" {'write ms/SR':>11}" if clock == 0 else ""))
        for family, inputs in work.items():
            base = baseline[family][clock]
            cells = " ".join(f"{rate[clock]:8.0f} {rate[clock] / base:5.1f}x"
                             for rate in rates[family])
            write = f" {_write_ms(inputs):11.2f}" if clock == 0 else ""
            print(f"{family:20} {_build(inputs):4d} {base:8.1f} {cells}{write}")
    print("fresh process: a worker forked before any prototype existed (its first pass, pool "
          f"start-up included); {cores} processes: workers forked once this process held the "
          "prototypes, patients handed over at fork, as site.py does; (pickled): the same "
          "with every chunk's inputs pickled, site.py's former hand-over, for comparison")


def _fixed_costs(patients: list[PatientInputs]) -> None:
    start = time.perf_counter()
    for inputs in patients:
        pickle.loads(pickle.dumps(inputs))
    pickling = (time.perf_counter() - start) * 1000 / len(patients)
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(abs, range(cores)))
    print(f"fixed costs: pickling one patient's inputs {pickling:.2f} ms (site.py no longer "
          f"pays it: workers inherit the jobs at fork); starting and stopping a pool of {cores} "
          f"{(time.perf_counter() - start) * 1000:.0f} ms (site.py starts one per site)")


def _usable(jobs: list[T], convert: Callable[[T], object], errors: tuple[type, ...]
            ) -> list[T]:
    """The jobs that convert; the demo's injected faults are quarantined by the converter."""
    usable = []
    for job in jobs:
        try:
            convert(job)
        except errors:
            continue
        usable.append(job)
    return usable


def _each(jobs: list[T], convert: Callable[[T], object]) -> int:
    for job in jobs:
        convert(job)
    return len(jobs)


def _ecgs(sites: list[tuple[SiteMapping, dict[str, PatientInputs], list[TableRecord]]],
          repeat: int) -> None:
    def waveform(job: tuple[SiteMapping, Path]) -> tuple[SiteMapping, EcgRecording, Dataset]:
        mapping, path = job
        recording = read_ecg(path)
        return mapping, recording, ecg_dataset(
            recording, study=None, institution=mapping.institution,
            series_instance_uid="2.25.1", sop_instance_uid="2.25.2")

    def report(job: tuple[SiteMapping, EcgRecording, Dataset]) -> None:
        mapping, recording, wave = job
        EcgReportSR(wave, EcgReport(recording, wave), site=mapping.site,
                    institution=mapping.institution)

    def convert(job: tuple[SiteMapping, Path]) -> None:
        report(waveform(job))
    with items.highdicom_only():
        files = _usable([(mapping, path) for mapping, _, _ in sites if mapping.ecg is not None
                         for path in sorted(mapping.ecg.rglob("*")) if path.is_file()],
                        convert, (EcgFormatError, ValueError))
        waveforms = [waveform(job) for job in files]
        baseline, _ = _rates(lambda: _each(files, convert), repeat)
        baseline_sr, _ = _rates(lambda: _each(waveforms, report), repeat)
    fast, _ = _rates(lambda: _each(files, convert), repeat)
    fast_sr, _ = _rates(lambda: _each(waveforms, report), repeat)
    print(f"ECGs ({len(files)} files, 1 process, per wall-clock second): conversion (read, "
          f"waveform, report SR) baseline {baseline:.1f}/s, srcohort {fast:.1f}/s, "
          f"{fast / baseline:.1f}x; report SR alone baseline {baseline_sr:.1f}/s, srcohort "
          f"{fast_sr:.1f}/s, {fast_sr / baseline_sr:.1f}x")


def _segs(sites: list[tuple[SiteMapping, dict[str, PatientInputs], list[TableRecord]]],
          repeat: int) -> None:
    def convert(job: tuple[SiteMapping, LabelTable, TableRecord, list[Dataset]]) -> None:
        mapping, table, row, ct = job
        build_segmentation(mapping.root / str(row.values["file"]), table, ct,
                           series_instance_uid="2.25.1", sop_instance_uid="2.25.2")
    jobs = _usable([(mapping, read_label_table(mapping.label_table), row,
                     patients[row.values["patient_id"]].ct_headers)
                    for mapping, patients, rows in sites if mapping.label_table is not None
                    for row in rows], convert, (LabelMapError, ValueError))
    rate, _ = _rates(lambda: _each(jobs, convert), repeat)
    print(f"SEGs (highdicom Segmentation, not changed here; {len(jobs)} label maps, "
          f"1 process): {rate:.1f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--patients-per-site", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs per rate (best is shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_consortium(root / "consortium", sites=args.sites,
                            patients_per_site=args.patients_per_site, seed=1)
        sites = _site_inputs(root / "consortium", root / "quarantine")
        patients = [inputs for _, found, _ in sites for _, inputs in sorted(found.items())]
        print(f"{len(sites)} sites, {len(patients)} patients")
        _families(patients, args.repeat)
        _fixed_costs(patients)
        _ecgs(sites, args.repeat)
        _segs(sites, args.repeat)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: this process {own:.0f} MB, largest pool worker {workers:.0f} MB")


if __name__ == "__main__":
    main()
