"""Per-patient SR building: canonical records of one patient -> SR datasets.

Pure with respect to the file system, so it runs in worker processes and in tests alike; UIDs
derive from site, patient and object kind, so converting twice gives the same instances.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from srcohort import codes
from srcohort.sources.tables import Record, RowError, TableRecord
from srcohort.sr.evidence import patient_context
from srcohort.sr.history import CardiovascularPatientHistory, PatientHistoryReport
from srcohort.sr.history.enum import SmokingStatus
from srcohort.sr.measurement import (Landmark, PlanningMeasurement, PlanningMeasurementReport,
                                     TaviPlanningReport)
from srcohort.sr.procedure import ProcedureOutcomeReport, TaviProcedureOutcome
from srcohort.sr.procedure.utils import derive_outcome
from srcohort.uids import derived_uid


@dataclass
class PatientInputs:
    """Everything a site has about one patient, after table parsing."""

    site: str
    institution: str
    patient_id: str
    ct_headers: list[Dataset] = field(default_factory=list)   # first CT series, sorted
    registry: TableRecord | None = None
    procedures: list[TableRecord] = field(default_factory=list)
    landmarks: list[TableRecord] = field(default_factory=list)
    measurements: list[TableRecord] = field(default_factory=list)


@dataclass
class PatientResult:
    """SRs built for one patient, the inputs each came from, and rows that had to be set aside."""

    reports: list[tuple[Dataset, list[TableRecord]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def build_patient(inputs: PatientInputs) -> PatientResult:
    """Build history, procedure outcome and planning SRs for whatever the patient has."""
    result = PatientResult()
    evidence = inputs.ct_headers or [_context(inputs)]
    if inputs.registry is not None:
        result.reports.append((_history(inputs, evidence), [inputs.registry]))
    if inputs.procedures:
        outcome = derive_outcome((r.values["code"], r.values["date"]) for r in inputs.procedures)
        if outcome is not None:
            report = ProcedureOutcomeReport(
                evidence, TaviProcedureOutcome(outcome), institution=inputs.institution,
                **_uids(inputs, "procedure-outcome"))
            result.reports.append((report, inputs.procedures))
    rows = inputs.landmarks + inputs.measurements
    if rows and not inputs.ct_headers:
        result.errors += [RowError(r.file, r.line, "patient id matches no images: landmarks and "
                                   "measurements need the patient's CT", inputs.patient_id)
                          for r in rows]
        return result
    measurements, errors = _measurements(inputs.measurements)
    result.errors += errors
    if inputs.landmarks or measurements:
        planning = TaviPlanningReport(
            key=f"{inputs.site}/{inputs.patient_id}",
            frame_of_reference_uid=inputs.ct_headers[0].FrameOfReferenceUID,
            landmarks=[Landmark(r.values["landmark"], r.values["x"], r.values["y"],
                                r.values["z"]) for r in inputs.landmarks],
            measurements=measurements)
        report = PlanningMeasurementReport(evidence, planning, institution=inputs.institution,
                                           **_uids(inputs, "planning"))
        used = inputs.landmarks + [r for r in inputs.measurements
                                   if not any(e.line == r.line for e in errors)]
        result.reports.append((report, used))
    return result


def _history(inputs: PatientInputs, evidence: list[Dataset]) -> PatientHistoryReport:
    values: Record = inputs.registry.values if inputs.registry else {}
    history = CardiovascularPatientHistory(
        diabetes=_flag(values.get("diabetes")), lbbb=_flag(values.get("lbbb")),
        smoking=SmokingStatus(values["smoking"]) if values.get("smoking") else None,
        prosthesis=values.get("prosthesis"), prosthesis_size_mm=values.get("prosthesis_size"),
        tavi_date=values.get("tavi_date"),
        source=f"{inputs.registry.file.name} line {inputs.registry.line}" if inputs.registry
        else None)
    return PatientHistoryReport(evidence, history, institution=inputs.institution,
                                **_uids(inputs, "history"))


def _measurements(rows: list[TableRecord]) -> tuple[list[PlanningMeasurement], list[RowError]]:
    """Convert each value to its canonical UCUM unit; an unknown unit sets the row aside."""
    done: list[PlanningMeasurement] = []
    errors: list[RowError] = []
    for row in rows:
        name, unit = row.values["measurement"], (row.values.get("unit") or "").strip()
        canonical = codes.MEASUREMENTS[name][1]
        factor = codes.UNIT_FACTORS[canonical].get(unit)
        if factor is None:
            errors.append(RowError(row.file, row.line, f"unit {unit!r} cannot be converted to "
                                   f"{canonical!r} for {name}", row.values["patient_id"]))
        else:
            done.append(PlanningMeasurement(name, row.values["value"] * factor))
    return done, errors


def _flag(value: str | None) -> bool | None:
    return None if value is None else value == "yes"


def _uids(inputs: PatientInputs, kind: str) -> dict[str, str]:
    return {"series_instance_uid": derived_uid(inputs.site, inputs.patient_id, kind, "series"),
            "sop_instance_uid": derived_uid(inputs.site, inputs.patient_id, kind, "instance")}


def _context(inputs: PatientInputs) -> Dataset:
    values = inputs.registry.values if inputs.registry else {}
    tavi: dt.date | None = values.get("tavi_date")
    return patient_context(inputs.site, inputs.patient_id, birth_date=values.get("birth_date"),
                           sex=values.get("sex") or "", study_date=tavi)
