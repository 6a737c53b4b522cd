"""TID 1500 content for TAVI planning: landmarks as points, measurements as NUM groups.

Each landmark is a TID 1410 planar ROI group whose region is a SCOORD3D POINT in the CT's frame
of reference, so a viewer can place it without the source image list. Measurements are TID 1501
groups, one per finding site, with UCUM units; the converter has already converted site units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes as dcm_codes

from srcohort import codes
from srcohort.uids import derived_uid

DEVICE_NAME = "srcohort converter"


@dataclass(frozen=True)
class Landmark:
    """A named point (canonical name, see ``codes.LANDMARKS``) in patient coordinates (mm)."""

    name: str
    x: float
    y: float
    z: float


@dataclass(frozen=True)
class PlanningMeasurement:
    """A value in the canonical unit of ``codes.MEASUREMENTS[name]``."""

    name: str
    value: float


class TaviPlanningReport(hd.sr.MeasurementReport):
    """TID 1500 Measurement Report of the TAVI planning CT."""

    def __init__(self, *, key: str, frame_of_reference_uid: str,
                 landmarks: Sequence[Landmark], measurements: Sequence[PlanningMeasurement]
                 ) -> None:
        groups: list = [_landmark_group(key, frame_of_reference_uid, lm) for lm in landmarks]
        groups += _measurement_groups(key, measurements)
        device = hd.sr.DeviceObserverIdentifyingAttributes(
            uid=derived_uid("srcohort", "device"), name=DEVICE_NAME)
        context = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
            observer_type=dcm_codes.cid270.Device, observer_identifying_attributes=device))
        super().__init__(observation_context=context, procedure_reported=codes.CT_UNSPECIFIED,
                         imaging_measurements=groups)


def _landmark_group(key: str, frame_of_reference_uid: str, landmark: Landmark
                    ) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    region = hd.sr.ImageRegion3D(graphic_type=hd.sr.GraphicTypeValues3D.POINT,
                                 graphic_data=np.array([[landmark.x, landmark.y, landmark.z]]),
                                 frame_of_reference_uid=frame_of_reference_uid)
    tracking = hd.sr.TrackingIdentifier(uid=derived_uid(key, "landmark", landmark.name),
                                        identifier=landmark.name)
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, referenced_region=region,
        finding_type=codes.LANDMARKS[landmark.name])


def _measurement_groups(key: str, measurements: Sequence[PlanningMeasurement]
                        ) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    by_site: dict[str, list[hd.sr.Measurement]] = {}
    sites = {}
    for item in measurements:
        concept, unit, meaning, site = codes.MEASUREMENTS[item.name]
        sites[site.value] = site
        by_site.setdefault(site.value, []).append(hd.sr.Measurement(
            name=concept, value=item.value, unit=hd.sr.CodedConcept(unit, "UCUM", meaning)))
    return [hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=derived_uid(key, "measurements", value),
                                                     identifier=f"{sites[value].meaning}"),
        finding_type=sites[value], measurements=group) for value, group in by_site.items()]
