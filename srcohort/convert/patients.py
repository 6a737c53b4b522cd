"""Per-patient SR building: one patient's inputs -> the SRs the study's templates write.

``build_patient`` is pure with respect to the file system, so it runs in worker processes and
in tests alike; the one file reading, of the patient's CT headers (``with_ct``), happens where
the patient is built, so a process holds one patient's headers at a time, never a site's. UIDs
derive from site, patient and template (and from the content, when written: ``outputs.seal``),
so converting twice gives the same instances. Each template the study declares is written when
the patient has what it is written from (``written_when``): a document template
(``sr.document``) node by node from the record, a measurement report (``sr.measurement``) from
its rows, on the patient's CT, whose frame of reference its points lie in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from srcohort.sources.images import read_headers
from srcohort.sources.tables import RowError, TableRecord
from srcohort.sr.document import DeclaredDocument, declared_sr
from srcohort.sr.evidence import patient_context
from srcohort.sr.measurement import measurement_report, report_groups
from srcohort.study.load import walk_nodes
from srcohort.study.model import Study, Template
from srcohort.study.record import PatientInputs, Record
from srcohort.uids import derived_uid

__all__ = ["PatientInputs", "PatientResult", "build_patient", "with_ct"]


@dataclass
class PatientResult:
    """SRs built for one patient, the inputs each came from, and rows that had to be set aside."""

    reports: list[tuple[Dataset, list[TableRecord]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def with_ct(inputs: PatientInputs) -> PatientInputs:
    """``inputs`` with the headers of its CT series read (the only file reading here), for
    as long as the caller keeps the copy; ValueError naming a file that changed since the scan."""
    if inputs.ct is None or inputs.ct_headers:
        return inputs
    return dataclasses.replace(inputs, ct_headers=read_headers(inputs.ct))


def build_patient(study: Study, inputs: PatientInputs) -> PatientResult:
    """Every SR the study's templates write for what the patient has."""
    result = PatientResult()
    record = Record(study, inputs)
    evidence = inputs.ct_headers or [_context(study, inputs)]
    for template in study.templates:
        if not template.writes or not record.present(template.written_when or
                                                     tuple(g.table for g in template.groups)):
            continue
        if template.kind == "measurement_report":
            _measurement_report(study, template, inputs, evidence, result)
            continue
        sr = declared_sr(template)(evidence, DeclaredDocument(template, record),
                                   institution=inputs.institution,
                                   **_uids(inputs, template.template))
        result.reports.append((sr, _sources(template, record)))
    return result


def _measurement_report(study: Study, template: Template, inputs: PatientInputs,
                        evidence: list[Dataset], result: PatientResult) -> None:
    rows = [row for group in template.groups for row in inputs.rows(group.table)]
    if not inputs.ct_headers:
        result.errors += [RowError(r.file, r.line, "patient id matches no images: "
                                   f"{template.name} needs the patient's CT", inputs.patient_id)
                          for r in rows]
        return
    groups, used, errors = report_groups(study, template, f"{inputs.site}/{inputs.patient_id}",
                                         inputs.tables)
    result.errors += errors
    if groups:
        report = measurement_report(
            template, frame_of_reference_uid=inputs.ct_headers[0].FrameOfReferenceUID,
            groups=groups)
        sr = declared_sr(template)(evidence, report, institution=inputs.institution,
                                   **_uids(inputs, template.template))
        result.reports.append((sr, used))


def _sources(template: Template, record: Record) -> list[TableRecord]:
    """The rows a document was written from: every row of each table a node reads."""
    tables: list[str] = []
    for source in _node_sources(template):
        table = source.split(".")[1] if source.startswith("derived.") else source.split(".")[0]
        if source.startswith("derived."):
            table = record.study.derived[table].table
        tables.append(table)
    return [row for table in dict.fromkeys(tables) for row in record.inputs.rows(table)]


def _node_sources(template: Template) -> list[str]:
    return [s for node in walk_nodes(template) for s in (node.source, *node.when) if s]


def _uids(inputs: PatientInputs, kind: str) -> dict[str, str]:
    return {"series_instance_uid": derived_uid(inputs.site, inputs.patient_id, kind, "series"),
            "sop_instance_uid": derived_uid(inputs.site, inputs.patient_id, kind, "instance")}


def _context(study: Study, inputs: PatientInputs) -> Dataset:
    """Patient and study identity for a patient without images, from the table that lists
    patients: its sex and birth date, and the date of the study's anchor event if a column
    of that table dates it."""
    listed = next((t for t in study.inputs.values() if t.lists_patients), None)
    row = inputs.rows(listed.name)[0].values if listed and inputs.rows(listed.name) else {}
    dates = [v for k, v in row.items() if isinstance(v, dt.date) and k != "birth_date"]
    return patient_context(inputs.site, inputs.patient_id, birth_date=row.get("birth_date"),
                           sex=row.get("sex") or "", study_date=min(dates, default=None))
