"""TID 1500 Measurement Reports a study declares (``kind: measurement_report``), written with
highdicom's ``MeasurementReport`` from table rows.

A declaration's groups say how rows become measurement groups: ``point`` rows become TID 1410
groups whose region is a SCOORD3D POINT in the CT's frame of reference (a viewer places it
without the source image list), ``measurements`` rows (one value each) become TID 1501 groups,
one per finding, with each value converted from the site's unit to the UCUM unit its term
declares; ``row`` rows become one TID 1501 group each, with their finding site, numbers and
coded evaluations.

The content of a report is the largest tree srcohort writes, and highdicom's classes take longer
to build it than everything else a patient needs. Its shape (which groups, which concepts)
repeats from patient to patient, so a report is built by highdicom once per shape and later
reports are copies with tracking UIDs, coordinates and values set where highdicom sets them
(``measurement_report``; inside ``items.highdicom_only()`` every report is built by highdicom).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dcm_codes
from pydicom.sr.coding import Code

from srcohort import units
from srcohort.sources.tables import RowError, TableRecord
from srcohort.sr import items
from srcohort.study.model import GroupDecl, Study, Template, Term, code_of
from srcohort.uids import derived_uid

DEVICE_NAME = "srcohort converter"


@dataclass(frozen=True)
class Measured:
    concept: Code
    value: float
    unit: str


@dataclass(frozen=True)
class Group:
    """One measurement group of a report: what its rows say, before highdicom builds it."""

    kind: str                                   # point | measurements
    finding: Code
    tracking: str
    tracking_uid: str
    point: tuple[float, float, float] | None = None
    measurements: tuple[Measured, ...] = ()
    finding_site: Code | None = None
    evaluations: tuple[tuple[Code, Code], ...] = ()

    @property
    def shape(self) -> tuple:
        """What a prototype of this group is built from, apart from UIDs, points and values."""
        return (self.kind, self.finding, self.tracking, self.finding_site, self.evaluations,
                tuple((m.concept, m.unit, type(m.value)) for m in self.measurements))


def report_groups(study: Study, declared: Template, key: str, tables: dict[str, list[TableRecord]]
                  ) -> tuple[list[Group], list[TableRecord], list[RowError]]:
    """The groups the patient's rows make, the rows used, and the rows set aside (a unit that
    cannot be converted to the term's)."""
    groups: list[Group] = []
    used: list[TableRecord] = []
    errors: list[RowError] = []
    for decl in declared.groups:
        rows = tables.get(decl.table, [])
        columns = study.inputs[decl.table].columns
        if decl.kind == "point":
            terms = columns[str(decl.finding)].vocabulary.terms   # type: ignore[union-attr]
            for row in rows:
                name = str(row.values[str(decl.finding)])
                tracking = str(row.values[str(decl.tracking)])
                groups.append(Group("point", terms[name].concept, tracking,
                                    derived_uid(key, "landmark", tracking),
                                    point=tuple(float(row.values[c]) for c in decl.coordinates)))
                used.append(row)
        elif decl.kind == "measurements":
            made, rows_used, row_errors = _measurement_groups(study, decl, key, rows)
            groups += made
            used += rows_used
            errors += row_errors
        else:
            for row in rows:
                groups.append(_row_group(study, decl, key, row))
                used.append(row)
    return groups, used, errors


def _measurement_groups(study: Study, decl: GroupDecl, key: str, rows: list[TableRecord]
                        ) -> tuple[list[Group], list[TableRecord], list[RowError]]:
    """Rows of one value each -> one group per finding, in the order findings first appear."""
    terms = study.inputs[decl.table].columns[str(decl.measurement)].vocabulary.terms  # type: ignore
    findings = study.vocabularies[str(decl.finding)].terms
    by_finding: dict[str, list[Measured]] = defaultdict(list)
    used: list[TableRecord] = []
    errors: list[RowError] = []
    for row in rows:
        term = terms[str(row.values[str(decl.measurement)])]
        site_unit = str(row.values.get(str(decl.unit)) or "")
        factor = units.factor(site_unit, str(term.attributes["unit"]))
        if factor is None:
            errors.append(RowError(row.file, row.line, f"unit {site_unit!r} cannot be converted "
                                   f"to {term.attributes['unit']!r} for {term.name}",
                                   row.values["patient_id"]))
            continue
        by_finding[str(term.attributes["finding"])].append(
            Measured(term.concept, _scaled(row.values[str(decl.value)], factor),
                     str(term.attributes["unit"])))
        used.append(row)
    groups = [Group("measurements", findings[name].concept, findings[name].meaning,
                    derived_uid(key, "measurements", findings[name].code.partition(":")[2]),
                    measurements=tuple(measured)) for name, measured in by_finding.items()]
    return groups, used, errors


def _scaled(value: float, factor: Fraction) -> float:
    """``value`` times an exact factor, as the nearest double (2.3 cm is 23.0 mm)."""
    return value if factor == 1 else float(Fraction(repr(value)) * factor)


def _row_group(study: Study, decl: GroupDecl, key: str, row: TableRecord) -> Group:
    columns = study.inputs[decl.table].columns
    tracking = str(row.values[str(decl.tracking)])
    site = row.values.get(str(decl.finding_site)) if decl.finding_site else None
    measured = tuple(
        Measured(term.concept, float(row.values[column]), str(term.attributes["unit"]))
        for column, term in ((c, _term(study, ref)) for c, ref in decl.numbers)
        if row.values.get(column) is not None)
    evaluations = tuple(
        (_term(study, ref).concept, columns[column].vocabulary.terms[  # type: ignore[union-attr]
            str(row.values[column])].concept)
        for column, ref in decl.codes if row.values.get(column) is not None)
    return Group("measurements", _term(study, str(decl.finding)).concept, tracking,
                 derived_uid(key, decl.table, tracking), measurements=measured,
                 finding_site=None if site is None else
                 columns[str(decl.finding_site)].vocabulary.terms[str(site)].concept,  # type: ignore
                 evaluations=evaluations)


def _term(study: Study, ref: str) -> Term:
    vocabulary, _, term = ref.partition(".")
    return study.vocabularies[vocabulary].terms[term]


class DeclaredMeasurementReport(hd.sr.MeasurementReport):
    """TID 1500 Measurement Report with the given groups, the procedure the template declares."""

    def __init__(self, declared: Template, *, frame_of_reference_uid: str,
                 groups: Sequence[Group]) -> None:
        device = hd.sr.DeviceObserverIdentifyingAttributes(
            uid=derived_uid("srcohort", "device"), name=DEVICE_NAME)
        context = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
            observer_type=dcm_codes.cid270.Device, observer_identifying_attributes=device))
        super().__init__(
            observation_context=context,
            procedure_reported=code_of(str(declared.procedure_reported),
                                       declared.procedure_meaning),
            imaging_measurements=[_group(group, frame_of_reference_uid) for group in groups])


def _group(group: Group, frame_of_reference_uid: str) -> hd.sr.Template:
    tracking = hd.sr.TrackingIdentifier(uid=group.tracking_uid, identifier=group.tracking)
    if group.kind == "point":
        assert group.point is not None
        region = hd.sr.ImageRegion3D(graphic_type=hd.sr.GraphicTypeValues3D.POINT,
                                     graphic_data=np.array([group.point]),
                                     frame_of_reference_uid=frame_of_reference_uid)
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_region=region, finding_type=group.finding)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, finding_type=group.finding,
        finding_sites=[hd.sr.FindingSite(group.finding_site)] if group.finding_site else None,
        measurements=[hd.sr.Measurement(name=m.concept, value=m.value,
                                        unit=hd.sr.CodedConcept(m.unit, "UCUM", m.unit))
                      for m in group.measurements] or None,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=name, value=value)
                                 for name, value in group.evaluations] or None)


# -- the fast path ----------------------------------------------------------------------------
_SHAPES: items.Prototypes[tuple, DeclaredMeasurementReport] = items.Prototypes(size=64)


@dataclass(frozen=True)
class _Slots:
    """Where a report of one shape holds what differs from patient to patient, as positions in
    Content Sequences: found once per shape instead of searched per report."""

    container: int                                  # Imaging Measurements, in the root
    uids: tuple[int, ...]                           # per group: its tracking UID item
    regions: tuple[int | None, ...]                 # per group: its SCOORD3D item, if any
    numbers: tuple[tuple[int, ...], ...]            # per group: its NUM items, in order

    @classmethod
    def of(cls, report: DeclaredMeasurementReport) -> _Slots:
        root = items.content_items(report[0])
        (container,) = [i for i, item in enumerate(root) if item.ValueType == "CONTAINER"]
        groups = [items.content_items(group) for group in items.content_items(root[container])]

        def where(group: list[Dataset], value_type: str) -> list[int]:
            return [i for i, item in enumerate(group) if item.ValueType == value_type]
        return cls(container, tuple(where(g, "UIDREF")[0] for g in groups),
                   tuple((where(g, "SCOORD3D") or [None])[0] for g in groups),
                   tuple(tuple(where(g, "NUM")) for g in groups))


_SLOTS: dict[tuple, _Slots] = {}     # by shape, as _SHAPES (emptied beyond its size)


def measurement_report(declared: Template, *, frame_of_reference_uid: str,
                       groups: Sequence[Group]) -> DeclaredMeasurementReport:
    """``DeclaredMeasurementReport(...)``, copied from the one highdicom built for the same
    shape, with what differs set the way highdicom sets it: tracking UIDs, points and their
    frame of reference, measured values."""
    shape = (declared.template, tuple(group.shape for group in groups))

    def revalue(report: DeclaredMeasurementReport) -> None:
        slots = _SLOTS.get(shape)
        if slots is None:
            if len(_SLOTS) >= _SHAPES.size:
                _SLOTS.clear()
            slots = _SLOTS[shape] = _Slots.of(report)
        content = items.content_items(items.content_items(report[0])[slots.container])
        for index, group in enumerate(groups):
            group_items = items.content_items(content[index])
            items.set_value(group_items[slots.uids[index]], "UID", group.tracking_uid)
            region = slots.regions[index]
            if region is not None and group.point is not None:
                items.set_value(group_items[region], "GraphicData", list(group.point))
                items.set_value(group_items[region], "ReferencedFrameOfReferenceUID",
                                frame_of_reference_uid)
            for position, measured in zip(slots.numbers[index], group.measurements):
                items.set_num_value(group_items[position], measured.value)

    return _SHAPES.copy(shape, lambda: DeclaredMeasurementReport(
        declared, frame_of_reference_uid=frame_of_reference_uid, groups=groups), revalue)
