"""A site's planning CTs at clinical size through convert, index and the unified export.

Per CT size (``--site SLICES:PATIENTS``, default 512 x 512 x 300 for 100 patients and x 600 for
20) it writes a synthetic site (``clinical_site.py``: CTs of 0.7 mm pixels and 1 mm slices, a
label map with 3 to 6 cardiac structures and a 10 s 500 Hz ECG per patient), then runs each
step in a fresh process and prints seconds per patient, CPU seconds per patient and the peak
memory of the step's processes together, against baselines measured in the same run:

* index: pydicom reading every file's header (what indexing did before), one process;
* unified export: dcm2niix (DICOM -> NIfTI) and SimpleITK's multi-threaded linear resampling
  onto the export's own 1 mm grid, compressed as the export compresses, per patient; the
  exported HU are compared with SimpleITK's voxel by voxel (they must agree within rounding);
* SEG: dcmqi's ``itkimage2segimage`` on the same label map and CT; srcohort's SEG is checked
  with dciodvfy.

Peak memory is the largest sum over a step's processes of their proportional set size (PSS:
shared pages split among the processes sharing them, what a pod's cgroup is charged),
sampled every 50 ms, and the largest RSS of one process. Files are evicted from the page cache
(``POSIX_FADV_DONTNEED``, only the benchmark's own) before the index and its baseline, so both
read from disk. Disk: about twice the site's CTs at a time (the site and its converted copy;
the site's images are deleted after conversion, each size before the next).

    .venv/bin/python benchmarks/clinical.py                      # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/clinical.py --quick              # seconds: the smoke test's size
    .venv/bin/python benchmarks/clinical.py --convert-only --site 300:15 --site 300:45
                                                      # the convert's memory against site size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clinical_site  # noqa: E402  (a script beside this one, not a package)
from clinical_site import Size  # noqa: E402

PREFIX = "bench-clinical-"
SECRET = b"clinical-benchmark-secret"
SPACING = (1.0, 1.0, 1.0)
COHORT = "name: clinical-benchmark\ndescription: every patient with a CT\npatients:\n  all:\n" \
         "    - series:\n        modality: CT\n"
SAMPLE_SECONDS = 0.05
TREE_EVERY = 5                  # samples between two walks of /proc for new processes


# --- measuring a process tree ---------------------------------------------------------------

@dataclass
class Usage:
    """What one step cost: wall and CPU seconds, peak memory of all its processes (PSS, MB),
    the largest single process (RSS, MB), and what the step returned."""

    seconds: float
    cpu_seconds: float
    peak_mb: float
    largest_process_mb: float
    result: Any = None
    load: float = field(default_factory=lambda: os.getloadavg()[0])   # the machine's, 1 min


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class TreePeak(threading.Thread):
    """Samples a process and its descendants until ``stop``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.largest_kb = pid, 0, 0
        self._stopped = threading.Event()

    def run(self) -> None:
        samples, pids = 0, [self.pid]
        while not self._stopped.is_set():
            if samples % TREE_EVERY == 0:           # walking /proc costs more than sampling
                tree, pids = _children(), [self.pid]
                for pid in pids:
                    pids.extend(tree.get(pid, []))
            total = 0
            for pid in pids:
                pss, rss = _memory_kb(pid)
                total += pss
                self.largest_kb = max(self.largest_kb, rss)
            self.peak_kb = max(self.peak_kb, total)
            samples += 1
            self._stopped.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def run_step(step: str, **arguments: Any) -> Usage:
    """``step`` (a function below) in a fresh Python process, measured from outside."""
    command = [sys.executable, __file__, "--step", step, json.dumps(arguments)]
    return measure_command(command, parse=True)


def measure_command(command: list[str], *, parse: bool = False) -> Usage:
    """Run ``command``; its wall and CPU seconds (with everything it waited for) and peaks.
    Steps run one after another, so the CPU of ended children before and after is its own."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    sampler = TreePeak(process.pid)
    sampler.start()
    out, _ = process.communicate()
    sampler.stop()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed with exit code {process.returncode}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Usage(seconds, cpu, sampler.peak_kb / 1024, sampler.largest_kb / 1024,
                 json.loads(out.splitlines()[-1]) if parse else None)


def evict(root: Path) -> int:
    """Drop ``root``'s files from the page cache, so the next read comes from disk."""
    files = [path for path in root.rglob("*") if path.is_file()]
    for path in files:
        evict_file(path)
    return len(files)


def evict_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)                    # written pages must be clean to be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# --- the steps, each run in a fresh process ------------------------------------------------

def step_convert(site: str, out: str) -> dict:
    from srcohort.convert.site import convert_site
    report = convert_site(Path(site), Path(out))
    return report.counts()


def step_index(url: str, dicom: str, site: str, workers: int | None = None) -> dict:
    from srcohort.index.connection import connect
    from srcohort.index.indexer import index_directory
    stats = index_directory(connect(url), Path(dicom), site=site, prefix=PREFIX,
                            workers=workers)
    return {"series": stats.series, "patients": stats.patients, "errors": len(stats.errors)}


def step_headers(dicom: str) -> dict:
    """The baseline of indexing: pydicom reads every file's header, one process."""
    import pydicom
    files = sorted(p for p in Path(dicom).rglob("*") if p.is_file())
    for path in files:
        pydicom.dcmread(path, stop_before_pixels=True)
    return {"files": len(files)}


def step_export(url: str, cohort: str, out: str, workers: int | None = None) -> dict:
    """The unified export; the PHI verification at its end is timed on its own (wrapped here,
    the export's code unchanged)."""
    from srcohort.cohort.definition import load_cohort
    from srcohort.export import training
    from srcohort.index.connection import connect
    verify, verified = training.verify_export, []

    def timed(*args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        verify(*args, **kwargs)
        verified.append(time.perf_counter() - start)
    training.verify_export = timed
    result = training.export_training(
        connect(url), load_cohort(Path(cohort)), Path(out), secret=SECRET, prefix=PREFIX,
        settings=training.TrainingSettings(spacing=SPACING), workers=workers)
    return {"patients": result.patients, "files": result.files, "bytes": result.bytes,
            "problems": len(result.problems), "verify_seconds": verified[0]}


def step_resample_baseline(nifti: str, grid: dict, out: str) -> dict:
    """SimpleITK: read dcm2niix's NIfTI, resample it linearly onto ``grid``, round to int16,
    write it gzip-compressed at the export's level."""
    import SimpleITK as sitk
    from srcohort.export.volumes import GZIP_LEVEL
    image = sitk.ReadImage(nifti)
    resampled = sitk.Resample(image, grid["size"], sitk.Transform(), sitk.sitkLinear,
                              grid["origin"], grid["spacing"], grid["direction"], 0.0,
                              sitk.sitkFloat32)
    sitk.WriteImage(sitk.Cast(sitk.Round(resampled), sitk.sitkInt16), out, True, GZIP_LEVEL)
    sitk.WriteImage(resampled, out.replace(".nii.gz", "-float.nii"))     # for the comparison
    return {"threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}


def step_seg(label_map: str, table: str, dicom: str, out: str) -> dict:
    """srcohort's SEG of one label map on its CT (headers read as the converter reads them)."""
    import pydicom
    from srcohort.seg import build_segmentation
    from srcohort.sources.labelmaps import read_label_table
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(Path(dicom).iterdir())]
    start = time.perf_counter()
    seg, _ = build_segmentation(Path(label_map), read_label_table(Path(table)), headers,
                                series_instance_uid="2.25.1", sop_instance_uid="2.25.2")
    seg.save_as(out, enforce_file_format=True)
    return {"seconds": time.perf_counter() - start, "frames": int(seg.NumberOfFrames),
            "segments": len(seg.SegmentSequence)}


STEPS = {"convert": step_convert, "index": step_index, "headers": step_headers,
         "export": step_export, "resample": step_resample_baseline, "seg": step_seg}


# --- one CT size ------------------------------------------------------------------------------

@dataclass
class SizeReport:
    size: str
    patients: int
    files: int
    site_gb: float
    generate_seconds: float
    steps: dict[str, Usage] = field(default_factory=dict)
    baselines: dict[str, Usage] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)


def measure_size(size: Size, patients: int, *, url: str, work: Path, baseline_patients: int,
                 one_worker: bool = False) -> SizeReport:
    """Generate, convert, index and export one site; baselines on ``baseline_patients``; with
    ``one_worker`` the index and the export once more in one process (the memory of a worker
    is the difference)."""
    from srcohort.index.opensearch import index_names
    site_name = f"site-{size.slices}"
    site, converted = work / site_name, work / f"{site_name}-converted"
    ids, report = _write_and_convert(size, patients, site, converted)
    label_map = work / "label-map.nii.gz"       # kept for the SEG comparison: the most segments
    most = max(range(1, patients + 1), key=lambda n: (clinical_site.structures(n), n))
    shutil.copyfile(site / "labelmaps" / f"{ids[most - 1]}.nii.gz", label_map)
    shutil.copyfile(site / "tables" / "labels.csv", work / "labels.csv")
    shutil.rmtree(site)
    dicom = converted / "dicom"
    from srcohort.index.connection import connect
    client = connect(url)
    client.indices.delete(index=f"{PREFIX}*", ignore_unavailable=True)
    report.checks["dicom_files"] = evict(dicom)
    report.steps["index"] = run_step("index", url=url, dicom=str(dicom), site=site_name)
    if one_worker:                      # the same documents again: memory of one worker less
        evict(dicom)
        report.steps["index, 1 worker"] = run_step("index", url=url, dicom=str(dicom),
                                                   site=site_name, workers=1)
    evict(dicom)
    report.baselines["index"] = run_step("headers", dicom=str(dicom))
    cohort = work / "cohort.yaml"
    cohort.write_text(COHORT, "utf-8")
    evict(dicom)                        # the export and its baseline read from disk
    export = work / f"{site_name}-export"
    report.steps["export"] = run_step("export", url=url, cohort=str(cohort), out=str(export))
    if one_worker:
        evict(dicom)
        report.steps["export, 1 worker"] = run_step(
            "export", url=url, cohort=str(cohort), out=str(work / "export-1"), workers=1)
        shutil.rmtree(work / "export-1")
    report.baselines["export"], report.checks["max_hu_difference"] = _export_baseline(
        client, index_names(PREFIX)[0], site_name, export, work, baseline_patients)
    report.steps["seg"], report.baselines["seg"], report.checks["seg"] = _seg_comparison(
        label_map, work / "labels.csv", ids[most - 1], client, index_names(PREFIX)[0], work)
    client.indices.delete(index=f"{PREFIX}*", ignore_unavailable=True)
    for folder in (converted, export):
        shutil.rmtree(folder)
    return report


def measure_convert(size: Size, patients: int, work: Path) -> SizeReport:
    """Generate and convert one site, nothing else: how the convert's memory follows the
    number of files at one CT size, without OpenSearch, the index or the export."""
    site, converted = work / f"site-{size.slices}", work / f"site-{size.slices}-converted"
    _, report = _write_and_convert(size, patients, site, converted)
    for folder in (site, converted):
        shutil.rmtree(folder)
    return report


def _write_and_convert(size: Size, patients: int, site: Path, converted: Path
                       ) -> tuple[list[str], SizeReport]:
    """Write the synthetic site and convert it, measured; its patient ids and the report."""
    start = time.perf_counter()
    ids = clinical_site.write_site(site, site.name, size, patients)
    generated = time.perf_counter() - start
    images = list((site / "images").rglob("*.dcm"))
    site_gb = sum(p.stat().st_size for p in images) / 1e9
    report = SizeReport(size.label, patients, len(images), site_gb, generated)
    print(f"# {size.label}: {patients} patients, {len(images)} CT files ({site_gb:.1f} GB) "
          f"written in {generated:.0f} s", file=sys.stderr, flush=True)
    report.steps["convert"] = run_step("convert", site=str(site), out=str(converted))
    return ids, report


def print_convert(r: SizeReport) -> None:
    usage = r.steps["convert"]
    declared = bounds(r)["convert"]
    print(f"CT {r.size}, {r.patients} patients, {r.files:,} CT files ({r.site_gb:.1f} GB): "
          f"convert {usage.seconds / r.patients:.2f} s/patient, "
          f"{usage.cpu_seconds / r.patients:.2f} CPU s/patient, peak {usage.peak_mb:,.0f} MB "
          f"(all processes), {usage.largest_process_mb:,.0f} MB (one process), load "
          f"{usage.load:.1f}; declared {declared:,} MB", flush=True)


def _ct_series(client: Any, series_index: str) -> list[tuple[str, list[str]]]:
    """(patient id, CT files) of every CT series in the index, by patient."""
    from opensearchpy import helpers
    hits = helpers.scan(client, index=series_index, query={"query": {"term": {"modality": "CT"}}},
                        _source_includes=["patient_id", "files"])
    return sorted((h["_source"]["patient_id"], sorted(h["_source"]["files"])) for h in hits)


def _export_baseline(client: Any, series_index: str, site: str, export: Path, work: Path,
                     count: int) -> tuple[Usage, float]:
    """dcm2niix and SimpleITK for the first ``count`` patients: per patient, the sum of both
    processes' seconds and CPU, the larger of their peaks; and the largest HU difference to
    the export (rounding to int16: at most 0.5)."""
    import nibabel as nib
    import numpy as np
    from srcohort.export.deidentify import Deidentifier
    uses, largest_difference = [], 0.0
    for patient_id, files in _ct_series(client, series_index)[:count]:
        folder = work / "baseline" / patient_id
        folder.mkdir(parents=True)
        for path in files:                   # dcm2niix converts a folder: link the series
            os.symlink(path, folder / Path(path).name)
        for path in files:                   # from disk, as the export read them
            evict_file(Path(path))
        converter = measure_command(["dcm2niix", "-z", "n", "-f", "ct", "-o", str(folder),
                                     str(folder)])
        ours = nib.load(export / "ct" / f"{Deidentifier(SECRET, site).pseudonym(patient_id)}"
                                         ".nii.gz")
        out = folder / "resampled.nii.gz"
        resampler = run_step("resample", nifti=str(folder / "ct.nii"), grid=_grid(ours),
                             out=str(out))
        theirs = np.asanyarray(nib.load(folder / "resampled-float.nii").dataobj)
        assert theirs.shape == ours.shape, (theirs.shape, ours.shape)   # our grid, our order
        largest_difference = max(largest_difference, float(np.abs(
            np.asanyarray(ours.dataobj).astype(np.float32) - theirs).max()))
        uses.append(Usage(converter.seconds + resampler.seconds,
                          converter.cpu_seconds + resampler.cpu_seconds,
                          max(converter.peak_mb, resampler.peak_mb),
                          max(converter.largest_process_mb, resampler.largest_process_mb)))
        shutil.rmtree(folder)
    return _per_patient(uses), largest_difference


def _grid(image: Any) -> dict:
    """The export's grid in ITK's terms (LPS): origin, spacing, direction, size."""
    import numpy as np
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return {"origin": lps[:3, 3].tolist(), "spacing": spacing.tolist(),
            "direction": (lps[:3, :3] / spacing).reshape(-1).tolist(),
            "size": [int(n) for n in image.shape]}


def _per_patient(uses: list[Usage]) -> Usage:
    return Usage(statistics.mean(u.seconds for u in uses),
                 statistics.mean(u.cpu_seconds for u in uses),
                 max(u.peak_mb for u in uses), max(u.largest_process_mb for u in uses),
                 load=statistics.mean(u.load for u in uses))


def _seg_comparison(label_map: Path, table: Path, patient_id: str, client: Any,
                    series_index: str, work: Path) -> tuple[Usage, Usage, dict]:
    """srcohort and dcmqi on the same label map and CT (``patient_id``'s), 3 runs each,
    median; dciodvfy on srcohort's SEG."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.dicom_validators import dciodvfy
    files = dict(_ct_series(client, series_index))[patient_id]
    folder = work / "seg-ct"
    folder.mkdir()
    for path in files:
        os.symlink(path, folder / Path(path).name)
    ours = [run_step("seg", label_map=str(label_map), table=str(table), dicom=str(folder),
                     out=str(work / "seg.dcm")) for _ in range(3)]
    segments = ours[-1].result["segments"]
    metadata = work / "dcmqi.json"
    metadata.write_text(json.dumps(_dcmqi_metadata(segments, table)))
    theirs = [measure_command([str(Path(sys.executable).parent / "itkimage2segimage"),
                               "--inputImageList", str(label_map), "--inputDICOMDirectory",
                               str(folder), "--outputDICOM", str(work / "dcmqi-seg.dcm"),
                               "--inputMetadata", str(metadata), "--skip"])
              for _ in range(3)]
    checks = {"segments": segments, "frames": ours[-1].result["frames"],
              "dciodvfy_errors": dciodvfy(work / "seg.dcm")}
    shutil.rmtree(folder)
    return _median(ours), _median(theirs), checks


def _dcmqi_metadata(segments: int, table: Path) -> dict:
    """dcmqi's segmentation metadata for the label table's first ``segments`` values."""
    from srcohort.sources.labelmaps import read_label_table
    structures = sorted(read_label_table(table).structures.items())[:segments]

    def code(c: Any) -> dict:
        return {"CodeValue": c.value, "CodingSchemeDesignator": c.scheme_designator,
                "CodeMeaning": c.meaning}
    return {"ContentCreatorName": "Benchmark^Clinical", "ClinicalTrialSeriesID": "1",
            "ClinicalTrialTimePointID": "1", "SeriesDescription": "Cardiac structures",
            "SeriesNumber": "9101", "InstanceNumber": "1", "ContentLabel": "CARDIAC",
            "BodyPartExamined": "HEART",
            "segmentAttributes": [[{
                "labelID": value, "SegmentLabel": s.label, "SegmentDescription": s.label,
                "SegmentAlgorithmType": "MANUAL",
                "SegmentedPropertyCategoryCodeSequence": code(s.category),
                "SegmentedPropertyTypeCodeSequence": code(s.property_type)}
                for value, s in structures]]}


def _median(uses: list[Usage]) -> Usage:
    ordered = sorted(uses, key=lambda u: u.seconds)
    return ordered[len(ordered) // 2]


# --- the report ---------------------------------------------------------------------------------

def versions() -> str:
    import SimpleITK as sitk
    from importlib.metadata import version
    dcm2niix = subprocess.run(["dcm2niix", "--version"], capture_output=True, text=True)
    line = next((w for w in (dcm2niix.stdout + dcm2niix.stderr).split() if w.startswith("v1.")),
                "?")
    return (f"dcm2niix {line}, SimpleITK {sitk.Version.VersionString()} "
            f"({sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()} threads), dcmqi "
            f"{version('dcmqi')}, highdicom {version('highdicom')}, pydicom {version('pydicom')}")


def bounds(report: SizeReport) -> dict[str, int]:
    """The memory each step is declared to need at this size (srcohort.resources)."""
    from srcohort.resources import BOUNDS, memory_mb
    matrix, _, slices = (int(v) for v in report.size.split("x"))
    return {step: memory_mb(step, slices=slices, rows=matrix, columns=matrix,
                            files=report.files) for step in ("convert", "index", "export")
            if step in BOUNDS}


def print_report(reports: list[SizeReport]) -> None:
    print_header()
    for report in reports:
        print_size(report)


def print_header() -> None:
    from srcohort.resources import cpu_count
    print(f"clinical benchmark: {cpu_count()} CPUs for srcohort's workers; {versions()}; "
          "load: the machine's 1-minute load average at the end of a step", flush=True)


def print_size(r: SizeReport) -> None:
    """One CT size's figures, ratios, checks and memory bounds."""
    steps, base, n = r.steps, r.baselines, r.patients
    print(f"\nCT {r.size}, {n} patients, {r.files:,} CT files ({r.site_gb:.1f} GB); site "
          f"written in {r.generate_seconds:.0f} s")
    print(f"{'':44}{'s/patient':>10}{'CPU s/pt':>10}{'peak MB':>9}{'1 proc MB':>10}"
          f"{'load':>6}  rate")
    rows = [
        ("convert (SR, ECG, SEG; images copied)", steps["convert"], n, ""),
        ("index", steps["index"], n,
         f"{r.checks['dicom_files'] / steps['index'].seconds:,.0f} files/s"),
        *([("index, 1 worker", steps["index, 1 worker"], n,
            f"{r.checks['dicom_files'] / steps['index, 1 worker'].seconds:,.0f} files/s")]
          if "index, 1 worker" in steps else []),
        ("  baseline: pydicom reads every header", base["index"], n,
         f"{r.checks['dicom_files'] / base['index'].seconds:,.0f} files/s"),
        ("unified export", steps["export"], n, ""),
        *([("unified export, 1 worker", steps["export, 1 worker"], n, "")]
          if "export, 1 worker" in steps else []),
        (f"  baseline: dcm2niix + SimpleITK ({r.checks['baseline_patients']} pt)",
         base["export"], 1, ""),
    ]
    for name, usage, count, rate in rows:
        print(f"{name:44}{usage.seconds / count:>10.2f}{usage.cpu_seconds / count:>10.2f}"
              f"{usage.peak_mb:>9.0f}{usage.largest_process_mb:>10.0f}{usage.load:>6.1f}  "
              f"{rate}")
    verify = steps["export"].result["verify_seconds"]
    print(f"of the unified export: {verify / n:.2f} s/patient the PHI verification "
          f"(every source header read again, one pattern of every patient's values), "
          f"{(steps['export'].seconds - verify) / n:.2f} s/patient the rest")
    export, baseline = steps["export"].seconds / n, base["export"].seconds
    print(f"unified export / baseline per patient: {export / baseline:.2f}x wall, "
          f"{steps['export'].cpu_seconds / n / base['export'].cpu_seconds:.2f}x CPU; "
          f"index / baseline: {base['index'].seconds / steps['index'].seconds:.2f}x "
          f"the files per second; exported HU vs SimpleITK on the same grid: largest "
          f"difference {r.checks['max_hu_difference']:.3f} HU")
    seg, dcmqi, check = steps["seg"], base["seg"], r.checks["seg"]
    print(f"SEG of one label map ({check['segments']} segments, {check['frames']} frames): "
          f"srcohort {seg.seconds:.2f} s ({seg.result['seconds']:.2f} s building), peak "
          f"{seg.peak_mb:.0f} MB; dcmqi itkimage2segimage {dcmqi.seconds:.2f} s, peak "
          f"{dcmqi.peak_mb:.0f} MB ({seg.seconds / dcmqi.seconds:.2f}x); median of 3, "
          f"process start included; dciodvfy errors: {len(check['dciodvfy_errors'])}")
    declared = bounds(r)
    if declared:
        print("declared memory (srcohort.resources, MB) vs measured peak: " + ", ".join(
            f"{step} {mb} vs {steps[step].peak_mb:.0f}" for step, mb in declared.items()))
    sys.stdout.flush()




# --- running it ---------------------------------------------------------------------------------

def measure(url: str, work: Path, sites: list[tuple[Size, int]], baseline_patients: int,
            on_report: Callable[[SizeReport], None] = lambda report: None) -> list[SizeReport]:
    """Every size in turn; ``on_report`` sees each report as soon as its size is done."""
    reports = []
    for n, (size, patients) in enumerate(sites):
        report = measure_size(size, patients, url=url, work=work,
                              baseline_patients=min(baseline_patients, patients),
                              one_worker=n == len(sites) - 1)
        report.checks["baseline_patients"] = min(baseline_patients, patients)
        on_report(report)
        reports.append(report)
    return reports


def _site(text: str) -> tuple[int, int]:
    slices, patients = text.split(":")
    return int(slices), int(patients)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _disk_needed(sites: list[tuple[Size, int]]) -> float:
    """GB at a time: the site's CTs, their converted copy, the export (a quarter of them)."""
    return max(2.3 * size.matrix ** 2 * size.slices * 2 * patients
               for size, patients in sites) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", action="append", type=_site, metavar="SLICES:PATIENTS",
                        help="a CT size and its number of patients (repeatable; default "
                             "300:100 and 600:20)")
    parser.add_argument("--matrix", type=int, default=512, help="rows and columns of a slice")
    parser.add_argument("--quick", action="store_true",
                        help="64 x 64 x 24 slices, 3 patients: the smoke test's size")
    parser.add_argument("--convert-only", action="store_true",
                        help="generate and convert each site, nothing else (no OpenSearch)")
    parser.add_argument("--baseline-patients", type=int, default=5)
    parser.add_argument("--work", type=Path, help="where to write (default: a temp folder)")
    parser.add_argument("--url", help="an OpenSearch to use instead of starting one")
    args = parser.parse_args()
    if args.quick:
        sites = [(Size(64, 24), 3)]
    else:
        sites = [(Size(args.matrix, s), p) for s, p in (args.site or [(300, 100), (600, 20)])]
    from srcohort.logs import configure
    configure()                         # progress of the long steps on stderr, with an ETA
    work = Path(tempfile.mkdtemp(prefix="srcohort-clinical-", dir=args.work))
    free = shutil.disk_usage(work).free / 1e9
    if free < _disk_needed(sites) + 5:
        sys.exit(f"{work}: {free:.0f} GB free, the benchmark needs about "
                 f"{_disk_needed(sites):.0f} GB (fewer --site patients need less)")
    if args.convert_only:
        try:
            print_header()
            for size, patients in sites:
                print_convert(measure_convert(size, patients, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    server_dir = Path(tempfile.mkdtemp(prefix="srcohort-clinical-opensearch-"))
    from srcohort.server import LocalOpenSearch
    server = None if args.url else LocalOpenSearch(server_dir, port=_free_port(), heap_mb=1024)
    try:
        url = args.url or server.start(timeout=300)
        print_header()
        measure(url, work, sites, args.baseline_patients, on_report=print_size)
    finally:
        if server is not None:
            server.stop()
        for directory in (work, server_dir):
            shutil.rmtree(directory, ignore_errors=True)


def child(step: str, arguments: str) -> None:
    """A step in this fresh process: progress to stderr, the result as JSON on stdout."""
    from srcohort.logs import configure
    configure()
    print(json.dumps(STEPS[step](**json.loads(arguments))))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--step":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
