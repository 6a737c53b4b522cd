"""Tiny but standard-conformant CT series for the synthetic consortium.

The converter, the index and the de-identification step must meet what a scanner writes, so
every slice carries all Type 1 and Type 2 attributes of the CT Image IOD and passes dciodvfy.
The matrix is kept at 16x16 and a few slices so a whole consortium is written in seconds. The
pixels show a crude chest with a contrast-filled aortic root where the landmarks lie, so a
viewer shows something sensible at the annotated positions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from srcohort.uids import derived_uid

RESCALE_INTERCEPT = -1024.0
HU_AIR, HU_TISSUE, HU_CONTRAST = -1000, 40, 350
IMPLEMENTATION_UID = UID(derived_uid("srcohort", "demo", "implementation"))
IMPLEMENTATION_NAME = "SRCOHORT_DEMO"


@dataclass(frozen=True)
class Geometry:
    """An axial volume in LPS patient coordinates: slice ``k`` at ``origin + k*slice_spacing*z``.

    Rows run along +y and columns along +x, so the slice normal (row x column direction) is +z
    and the positions of consecutive slices advance along it, as PS3.3 C.7.6.2 requires for a
    consistent volume.
    """

    origin: tuple[float, float, float]
    pixel_spacing: float
    slice_spacing: float
    size: int = 16
    slices: int = 4

    def position(self, k: int) -> tuple[float, float, float]:
        """ImagePositionPatient (centre of the first voxel) of slice ``k``."""
        x, y, z = self.origin
        return x, y, z + k * self.slice_spacing

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        """(min, max) per LPS axis of the voxel centres: where a landmark may lie."""
        x, y, z = self.origin
        extent = (self.size - 1) * self.pixel_spacing
        return (x, x + extent), (y, y + extent), (z, z + (self.slices - 1) * self.slice_spacing)


@dataclass(frozen=True)
class CTStudy:
    """Everything that distinguishes one patient's planning CT; UIDs derive from ``uid_parts``."""

    uid_parts: tuple[str, ...]
    patient_id: str
    patient_name: str
    birth_date: dt.date
    sex: str
    study_date: dt.date
    study_time: str
    accession_number: str
    referring_physician: str
    institution: str
    manufacturer: str
    model: str
    series_description: str
    geometry: Geometry
    lumen_center: tuple[float, float]
    lumen_radius: float
    study_description: str = "CT TAVI planning"
    body_part: str = "HEART"

    def uid(self, *parts: str) -> str:
        """The UID named by ``uid_parts`` and ``parts``."""
        return derived_uid(*self.uid_parts, *parts)

    @property
    def study_uid(self) -> str:
        return self.uid("study")

    @property
    def series_uid(self) -> str:
        return self.uid("ct-series")

    @property
    def frame_of_reference_uid(self) -> str:
        return self.uid("frame-of-reference")

    def sop_instance_uid(self, k: int) -> str:
        return self.uid("ct-instance", str(k))


def ct_series(study: CTStudy) -> list[FileDataset]:
    """The slices of ``study``'s CT series, ready for ``save_as(..., enforce_file_format=True)``."""
    return [_slice(study, k) for k in range(study.geometry.slices)]


def _slice(study: CTStudy, k: int) -> FileDataset:
    ds = FileDataset("", Dataset(), file_meta=_file_meta(study.sop_instance_uid(k)),
                     preamble=b"\0" * 128)
    for module in (_sop_common, _patient, _study, _series, _frame_of_reference, _equipment,
                   _image):
        module(ds, study, k)
    _pixels(ds, study)
    return ds


def _file_meta(sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_NAME
    return meta


def _sop_common(ds: Dataset, study: CTStudy, k: int) -> None:
    ds.SpecificCharacterSet = "ISO_IR 100"      # Latin-1: German names carry umlauts
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = study.sop_instance_uid(k)
    ds.InstanceCreationDate = _da(study.study_date)
    ds.InstanceCreationTime = study.study_time


def _patient(ds: Dataset, study: CTStudy, _k: int) -> None:
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = _da(study.birth_date)
    ds.PatientSex = study.sex
    ds.PatientAge = f"{_age(study.birth_date, study.study_date):03d}Y"   # Patient Study module


def _study(ds: Dataset, study: CTStudy, _k: int) -> None:
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = _da(study.study_date)
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyID = study.accession_number[-8:]
    ds.AccessionNumber = study.accession_number
    ds.StudyDescription = study.study_description


def _series(ds: Dataset, study: CTStudy, _k: int) -> None:
    ds.Modality = "CT"
    ds.SeriesInstanceUID = study.series_uid
    ds.SeriesNumber = 2
    ds.SeriesDate = _da(study.study_date)
    ds.SeriesTime = study.study_time
    ds.SeriesDescription = study.series_description
    ds.BodyPartExamined = study.body_part
    ds.PatientPosition = "HFS"


def _frame_of_reference(ds: Dataset, study: CTStudy, _k: int) -> None:
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""


def _equipment(ds: Dataset, study: CTStudy, _k: int) -> None:
    ds.Manufacturer = study.manufacturer
    ds.ManufacturerModelName = study.model
    ds.InstitutionName = study.institution


def _image(ds: Dataset, study: CTStudy, k: int) -> None:
    geometry = study.geometry
    position = geometry.position(k)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = k + 1
    ds.AcquisitionNumber = 1
    ds.ContentDate = _da(study.study_date)
    ds.ContentTime = study.study_time
    ds.AcquisitionDate = _da(study.study_date)
    ds.AcquisitionTime = study.study_time
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.PixelSpacing = [_ds(geometry.pixel_spacing)] * 2
    ds.SliceThickness = _ds(geometry.slice_spacing)
    ds.SliceLocation = _ds(position[2])
    ds.KVP = 100
    ds.ConvolutionKernel = "Bv40"
    ds.RescaleIntercept = _ds(RESCALE_INTERCEPT)
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 300      # VOI LUT: a contrast-CT angio window
    ds.WindowWidth = 1200
    ds.WindowCenterWidthExplanation = "ANGIO"


def _pixels(ds: Dataset, study: CTStudy) -> None:
    """Air outside an elliptic chest, soft tissue inside, contrast in the aortic root."""
    g = study.geometry
    axis = np.arange(g.size) * g.pixel_spacing
    x = g.origin[0] + axis[np.newaxis, :]
    y = g.origin[1] + axis[:, np.newaxis]
    (x0, x1), (y0, y1), _ = g.bounds()
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) * 0.4
    hu = np.full((g.size, g.size), HU_AIR, dtype=np.int16)
    hu[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1] = HU_TISSUE
    lx, ly = study.lumen_center
    hu[(x - lx) ** 2 + (y - ly) ** 2 <= study.lumen_radius ** 2] = HU_CONTRAST
    stored = (hu - RESCALE_INTERCEPT).astype("<i2")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = g.size
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = stored.tobytes()


def _da(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _ds(value: float) -> str:
    """A DS string without float noise, so identical geometry gives identical bytes."""
    return f"{value:.6g}"


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
