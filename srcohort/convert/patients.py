"""Per-patient SR building: canonical records of one patient -> SR datasets.

Pure with respect to the file system, so it runs in worker processes and in tests alike; UIDs
derive from site, patient and object kind, so converting twice gives the same instances.

A planning report's content is the largest tree srcohort writes, and highdicom's TID 1500
classes take longer to build it than everything else a patient needs. Its shape (which
landmarks, which measurements) repeats from patient to patient, so ``TaviPlanningReport`` builds
it once per shape and later reports are copies with coordinates, values and tracking UIDs set.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from srcohort import codes
from srcohort.sources.tables import Record, RowError, TableRecord
from srcohort.sr import items
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
        planning = _planning(
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


_PLANNING_SHAPES: items.Prototypes[tuple, TaviPlanningReport] = items.Prototypes(size=64)


@dataclass(frozen=True)
class _Slots:
    """Where a planning report of one shape holds what differs from patient to patient, as
    positions in Content Sequences: found once per shape instead of searched per report."""

    container: int                                  # Imaging Measurements, in the root
    landmarks: tuple[tuple[int, int, int], ...]     # group, tracking UID, image region
    sites: tuple[tuple[int, int, str], ...]         # group, tracking UID, finding site value
    numbers: tuple[tuple[int, int], ...]            # group, NUM item: one per measurement

    @classmethod
    def of(cls, report: TaviPlanningReport, landmarks: int,
           measurements: list[PlanningMeasurement]) -> _Slots:
        """Landmark groups come first, in order; a measurement group's tracking UID derives
        from its finding site; NUM items of one concept take that concept's values in order."""
        root = items.content_items(report[0])
        (container,) = [i for i, item in enumerate(root) if item.ValueType == "CONTAINER"]
        groups = [list(enumerate(items.content_items(group)))
                  for group in items.content_items(root[container])]

        def find(group: list[tuple[int, Dataset]], value_type: str) -> tuple[int, Dataset]:
            (found,) = [(i, item) for i, item in group if item.ValueType == value_type]
            return found
        numbers: dict[Code, list[tuple[int, int]]] = defaultdict(list)
        for g, group in enumerate(groups[landmarks:], start=landmarks):
            for i, item in group:
                if item.ValueType == "NUM":
                    numbers[Code(item.name.value, item.name.scheme_designator, "")].append((g, i))
        return cls(
            container,
            tuple((g, find(group, "UIDREF")[0], find(group, "SCOORD3D")[0])
                  for g, group in enumerate(groups[:landmarks])),
            tuple((g, find(group, "UIDREF")[0], find(group, "CODE")[1].value.value)
                  for g, group in enumerate(groups[landmarks:], start=landmarks)),
            tuple(numbers[codes.MEASUREMENTS[m.name][0]].pop(0) for m in measurements))


_SLOTS: dict[tuple, _Slots] = {}     # by shape, as _PLANNING_SHAPES (emptied beyond its size)


def _planning(*, key: str, frame_of_reference_uid: str, landmarks: list[Landmark],
              measurements: list[PlanningMeasurement]) -> TaviPlanningReport:
    """``TaviPlanningReport(...)``, copied from the one highdicom built for the same shape, with
    what differs set the way ``TaviPlanningReport`` sets it: tracking UIDs, points and their
    frame of reference, measured values."""
    shape = (tuple(lm.name for lm in landmarks),
             tuple((m.name, type(m.value)) for m in measurements))

    def revalue(report: TaviPlanningReport) -> None:
        slots = _SLOTS.get(shape)
        if slots is None:
            if len(_SLOTS) >= _PLANNING_SHAPES.size:
                _SLOTS.clear()
            slots = _SLOTS[shape] = _Slots.of(report, len(landmarks), measurements)
        groups = items.content_items(items.content_items(report[0])[slots.container])
        for (g, uid, region), landmark in zip(slots.landmarks, landmarks):
            group = items.content_items(groups[g])
            items.set_value(group[uid], "UID", derived_uid(key, "landmark", landmark.name))
            items.set_value(group[region], "GraphicData",
                            np.array([[landmark.x, landmark.y, landmark.z]]).flatten().tolist())
            items.set_value(group[region], "ReferencedFrameOfReferenceUID",
                            frame_of_reference_uid)
        for g, uid, site in slots.sites:
            items.set_value(items.content_items(groups[g])[uid], "UID",
                            derived_uid(key, "measurements", site))
        for (g, i), measurement in zip(slots.numbers, measurements):
            items.set_num_value(items.content_items(groups[g])[i], measurement.value)

    return _PLANNING_SHAPES.copy(shape, lambda: TaviPlanningReport(
        key=key, frame_of_reference_uid=frame_of_reference_uid, landmarks=landmarks,
        measurements=measurements), revalue)


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
