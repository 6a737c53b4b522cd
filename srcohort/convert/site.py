"""Convert one site export (docs/site-exports.md) into a DICOM folder plus a conversion report.

Images pass through unchanged (only re-filed by UID); registry, procedure, landmark and
measurement tables become SRs that reference the patient's CT. Bad input is quarantined with
its reason and never stops the rest; outputs are written under UIDs named by their content
(``outputs``), so a rerun rewrites the same files with the same objects, and whatever an earlier
run wrote that this one no longer makes is moved to ``superseded/``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable


from srcohort.convert.outputs import store, supersede, uid_path
from srcohort.convert.patients import PatientInputs, build_patient, with_ct
from srcohort.convert.report import REPORT, ConversionReport, Quarantine
from srcohort.files import copy_atomic, file_sha256
from srcohort.convert.signals import UNKNOWN_PATIENT, convert_ecgs, convert_segmentations
from srcohort.logs import get_logger, progress
from srcohort.parallel import fork_map
from srcohort.resources import cpu_count
from srcohort.sources import identifiers
from srcohort.sources.images import Series, scan_series
from srcohort.sources.mapping import SEGMENTATIONS, SiteMapping, load_mapping
from srcohort.sources.tables import RowError, TableRecord, read_table
from srcohort.study.model import Study

log = get_logger(__name__)
IMAGE_MODALITIES = {"CT"}


def convert_site(site_dir: Path, out_dir: Path, *, workers: int | None = None,
                 today: dt.date | None = None) -> ConversionReport:
    """Convert ``site_dir`` into ``out_dir``/dicom; write ``out_dir``/conversion-report.json.

    ``today`` (default: the clock's) bounds the dates a table may hold. The report says
    ``running`` until the run ends, so a run that dies never leaves a report that looks
    finished (nor the report of an earlier run).
    """
    mapping = load_mapping(site_dir)
    report_path = out_dir / REPORT
    ConversionReport(mapping.site, state="running").write(report_path)
    report = _convert(mapping, out_dir, workers, today or dt.date.today())
    written = {path for outcome in report.outcomes for path in outcome.outputs}
    for path, replaced_by in supersede(out_dir / "dicom", written, out_dir / "superseded"):
        report.superseded(path, replaced_by)
    report.state = "complete"
    report.write(report_path)
    log.info("site converted", extra={"site": mapping.site, **report.counts()})
    return report


def validate_site(site_dir: Path, *, workers: int | None = None, today: dt.date | None = None
                  ) -> ConversionReport:
    """What converting ``site_dir`` would do, input by input, with nothing written anywhere:
    the same reading, checks, joins and SR building as ``convert_site``."""
    report = _convert(load_mapping(site_dir), None, workers, today or dt.date.today())
    log.info("site validated", extra={"site": report.site, **report.counts()})
    return report


def _convert(mapping: SiteMapping, out_dir: Path | None, workers: int | None, today: dt.date
             ) -> ConversionReport:
    """The conversion; with ``out_dir`` None a dry run that writes nothing."""
    site_dir = mapping.root
    report = ConversionReport(site=mapping.site)
    quarantine = Quarantine(None if out_dir is None else out_dir / "quarantine", site_dir,
                            report)
    dicom_root = None if out_dir is None else out_dir / "dicom"
    series: dict[str, Series] = {}
    if mapping.images is not None:
        series, bad_files, duplicates = scan_series(mapping.images, site_dir, workers=workers)
        for error in bad_files:
            quarantine.add(error)
        for duplicate in duplicates:
            report.duplicate(duplicate.file, site_dir, duplicate.same_as)
    _copy_images(series.values(), dicom_root, site_dir, report)
    patients, segmentations = collect_patients(mapping, series, quarantine, today)
    _build_all(mapping.study, patients, dicom_root, site_dir, report, quarantine, workers)
    write = functools.partial(store, dicom_root)
    convert_ecgs(mapping, patients, write, report, quarantine)
    convert_segmentations(mapping, patients, segmentations, write, report, quarantine)
    return report


def _copy_images(series: Iterable[Series], root: Path | None, site_dir: Path,
                 report: ConversionReport) -> None:
    """Images pass through byte for byte (each checked by ``scan_series``), filed by UID;
    ``root`` None: nothing is copied (a dry run)."""
    for entry in series:
        for path, uid, digest in zip(entry.files, entry.instance_uids, entry.digests):
            target = uid_path(root or Path(), entry.study_uid, entry.uid, uid)
            if root is not None and not (target.is_file() and target.stat().st_size == path.stat().st_size
                    and file_sha256(target) == digest):
                copy_atomic(path, target)
            report.converted(path, site_dir, outputs=[str(target.relative_to(root or Path()))])


def collect_patients(mapping: SiteMapping, series: dict[str, Series], quarantine: Quarantine,
                     today: dt.date) -> tuple[dict[str, PatientInputs], list[TableRecord]]:
    """Join images and table rows by patient id; rows of unknown patients are set aside.

    A patient is known by images or by a row of a table that lists patients (a registry).
    Returns the patients and the segmentation rows of known patients.
    """
    patients: dict[str, PatientInputs] = {}

    def patient(pid: str) -> PatientInputs:
        return patients.setdefault(pid, PatientInputs(mapping.site, mapping.institution, pid))

    for entry in sorted(series.values(), key=lambda s: (s.patient_id, s.study_uid, s.uid)):
        if entry.modality in IMAGE_MODALITIES and patient(entry.patient_id).ct is None:
            patient(entry.patient_id).ct = entry
    tables: dict[str, list[TableRecord]] = {}
    for name, spec in mapping.tables.items():
        tables[name], errors = read_table(spec, today)
        for error in errors:
            quarantine.add(error)
            if spec.declared.lists_patients:    # a row refused for a value still names its patient
                _listed(error, patient)
    listing = [name for name, spec in mapping.tables.items() if spec.declared.lists_patients]
    for name in listing:
        first: dict[str, TableRecord] = {}
        for row in tables[name]:
            pid = row.values["patient_id"]
            if pid in first:
                quarantine.add(RowError(row.file, row.line, f"second row of table '{name}' for "
                                        f"patient (first at line {first[pid].line})", pid))
                continue
            first[pid] = row
            patient(pid).tables[name] = [row]
    known: dict[str, list[TableRecord]] = defaultdict(list)
    for name in (n for n in tables if n not in listing):
        for row in tables[name]:
            pid = row.values["patient_id"]
            if pid not in patients:
                quarantine.add(RowError(row.file, row.line, UNKNOWN_PATIENT, pid))
            elif name == SEGMENTATIONS.name:
                known[name].append(row)
            else:
                patients[pid].tables.setdefault(name, []).append(row)
    return patients, known[SEGMENTATIONS.name]


def _listed(error: RowError, patient: Callable[[str], PatientInputs]) -> None:
    """Know the patient of a refused registry row when its id is valid: the site lists the
    patient, so the patient's other data (procedures, ECGs) is kept."""
    try:
        patient(identifiers.patient_id(error.patient_id))
    except ValueError:
        pass


def _build_all(study: Study, patients: dict[str, PatientInputs], root: Path | None,
               site_dir: Path,
               report: ConversionReport, quarantine: Quarantine, workers: int | None) -> None:
    """Build SRs patient by patient, in worker processes when more than one core is free (the
    first patient in this process, so the workers inherit highdicom's tables and prototypes).
    Each patient's CT headers are read by the process that builds the patient and dropped
    with its SRs, so no process holds more than one patient's."""
    jobs = [(study, inputs, root) for _, inputs in sorted(patients.items())]
    chunksize = max(1, len(jobs) // (4 * (workers or cpu_count())))
    with fork_map(_build_and_write, jobs, workers=workers, chunksize=chunksize) as results:
        written: dict[tuple[Path, int], list[str]] = defaultdict(list)
        for outputs, errors in progress(results, total=len(jobs), what="patients", logger=log):
            for error in errors:
                quarantine.add(error)
            for path, sources in outputs:
                for source in sources:
                    written[source].append(path)
    for (file, line), paths in sorted(written.items()):
        report.converted(file, site_dir, line, outputs=paths)


def _build_and_write(job: tuple[Study, PatientInputs, Path | None]
                     ) -> tuple[list[tuple[str, list[tuple[Path, int]]]], list[RowError]]:
    """Worker: build one patient's SRs, write them, return paths and their source rows."""
    study, inputs, root = job
    try:
        result = build_patient(study, with_ct(inputs))
    except Exception as exc:  # one patient's unexpected data must not stop the site
        rows = inputs.all_rows
        reason = f"SR could not be built: {exc.__class__.__name__}: {exc}"
        return [], [RowError(r.file, r.line, reason, inputs.patient_id) for r in rows]
    outputs = [(store(root, sr), [(r.file, r.line) for r in sources])
               for sr, sources in result.reports]
    return outputs, result.errors
