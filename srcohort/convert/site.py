"""Convert one site export (docs/site-exports.md) into a DICOM folder plus a conversion report.

Images pass through unchanged (only re-filed by UID); registry, procedure, landmark and
measurement tables become SRs that reference the patient's CT. Bad input is quarantined with
its reason and never stops the rest; outputs are written under UIDs named by their content
(``outputs``), so a rerun rewrites the same files with the same objects, and whatever an earlier
run wrote that this one no longer makes is moved to ``superseded/``.
"""

from __future__ import annotations

import functools
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from pydicom.dataset import Dataset

from srcohort.convert.outputs import dicom_path, store, supersede
from srcohort.convert.patients import PatientInputs, build_patient
from srcohort.convert.report import ConversionReport, Quarantine
from srcohort.convert.signals import UNKNOWN_PATIENT, convert_ecgs, convert_segmentations
from srcohort.logs import get_logger, progress
from srcohort.parallel import cpu_budget, fork_map
from srcohort.sources.images import Series, scan_series
from srcohort.sources.mapping import SiteMapping, load_mapping
from srcohort.sources.tables import RowError, TableRecord, read_table

log = get_logger(__name__)
IMAGE_MODALITIES = {"CT"}


def convert_site(site_dir: Path, out_dir: Path, *, workers: int | None = None
                 ) -> ConversionReport:
    """Convert ``site_dir`` into ``out_dir``/dicom; write ``out_dir``/conversion-report.json."""
    mapping = load_mapping(site_dir)
    report = ConversionReport(site=mapping.site)
    quarantine = Quarantine(out_dir / "quarantine", site_dir, report)
    dicom_root = out_dir / "dicom"
    series, bad_files = scan_series(mapping.images)
    for error in bad_files:
        quarantine.add(error)
    _copy_images(series.values(), dicom_root, site_dir, report)
    patients, segmentations = collect_patients(mapping, series, quarantine)
    _build_all(patients, dicom_root, site_dir, report, quarantine, workers)
    write = functools.partial(store, dicom_root)
    convert_ecgs(mapping, patients, write, report, quarantine)
    convert_segmentations(mapping, patients, segmentations, write, report, quarantine)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {path for outcome in report.outcomes for path in outcome.outputs}
    for path, replaced_by in supersede(dicom_root, written, out_dir / "superseded"):
        report.superseded(path, replaced_by)
    report.write(out_dir / "conversion-report.json")
    log.info("site converted", extra={"site": mapping.site, **report.counts()})
    return report


def _copy_images(series: Iterable[Series], root: Path, site_dir: Path,
                 report: ConversionReport) -> None:
    for entry in series:
        for path, header in zip(entry.files, entry.headers):
            target = dicom_path(root, header)
            if not target.exists() or target.stat().st_size != path.stat().st_size:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            report.converted(path, site_dir, outputs=[str(target.relative_to(root))])


def collect_patients(mapping: SiteMapping, series: dict[str, Series], quarantine: Quarantine
                      ) -> tuple[dict[str, PatientInputs], list[TableRecord]]:
    """Join images and table rows by patient id; rows of unknown patients are set aside.

    Returns the patients and the segmentation rows of known patients.
    """
    patients: dict[str, PatientInputs] = {}

    def patient(pid: str) -> PatientInputs:
        return patients.setdefault(pid, PatientInputs(mapping.site, mapping.institution, pid))

    for entry in sorted(series.values(), key=lambda s: (s.patient_id, s.study_uid, s.uid)):
        if entry.modality in IMAGE_MODALITIES and not patient(entry.patient_id).ct_headers:
            patient(entry.patient_id).ct_headers = entry.headers
    tables = {name: _read(spec_name=name, mapping=mapping, quarantine=quarantine)
              for name in ("registry", "procedures", "landmarks", "measurements",
                           "segmentations")}
    for row in tables["registry"]:
        target = patient(row.values["patient_id"])
        if target.registry is not None:
            quarantine.add(RowError(row.file, row.line, f"second registry row for patient "
                                    f"(first at line {target.registry.line})",
                                    row.values["patient_id"]))
        else:
            target.registry = row
    known: dict[str, list[TableRecord]] = defaultdict(list)
    for name in ("procedures", "landmarks", "measurements", "segmentations"):
        for row in tables[name]:
            pid = row.values["patient_id"]
            if pid not in patients:
                quarantine.add(RowError(row.file, row.line, UNKNOWN_PATIENT, pid))
            else:
                known[name].append(row)
    for name in ("procedures", "landmarks", "measurements"):
        for row in known[name]:
            getattr(patients[row.values["patient_id"]], name).append(row)
    return patients, known["segmentations"]


def _read(*, spec_name: str, mapping: SiteMapping, quarantine: Quarantine
          ) -> list[TableRecord]:
    spec = mapping.tables.get(spec_name)
    if spec is None:
        return []
    records, errors = read_table(spec)
    for error in errors:
        quarantine.add(error)
    return records


def _build_all(patients: dict[str, PatientInputs], root: Path, site_dir: Path,
               report: ConversionReport, quarantine: Quarantine, workers: int | None) -> None:
    """Build SRs patient by patient, in worker processes when more than one core is free (the
    first patient in this process, so the workers inherit highdicom's tables and prototypes)."""
    jobs = [(inputs, root) for _, inputs in sorted(patients.items())]
    chunksize = max(1, len(jobs) // (4 * (workers or cpu_budget())))
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


def _build_and_write(job: tuple[PatientInputs, Path]
                     ) -> tuple[list[tuple[str, list[tuple[Path, int]]]], list[RowError]]:
    """Worker: build one patient's SRs, write them, return paths and their source rows."""
    inputs, root = job
    try:
        result = build_patient(inputs)
    except Exception as exc:  # one patient's unexpected data must not stop the site
        rows = ([inputs.registry] if inputs.registry else []) + inputs.procedures + \
            inputs.landmarks + inputs.measurements
        reason = f"SR could not be built: {exc.__class__.__name__}: {exc}"
        return [], [RowError(r.file, r.line, reason, inputs.patient_id) for r in rows]
    outputs = [(store(root, sr), [(r.file, r.line) for r in sources])
               for sr, sources in result.reports]
    return outputs, result.errors
