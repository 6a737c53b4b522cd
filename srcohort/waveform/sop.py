"""The DICOM ECG waveform instance of one ``EcgRecording``.

A resting ECG belongs next to the patient's CT: given the CT (``study``), the waveform takes
patient and study attributes from it and joins that study; without one it carries the
recording's own identity in a study of its own. The 12-lead ECG IOD is preferred because
viewers and PACS handle it best; recordings it cannot hold (more than 13 leads, more than 16384
samples) become General ECG. Everything is derived from the inputs, so writing twice gives the
same bytes.
"""

from __future__ import annotations

import datetime as dt

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from srcohort.logs import get_logger
from srcohort.sources.ecg.model import EcgFormatError, EcgRecording
from srcohort.uids import derived_uid
from srcohort.waveform.content import annotations, rhythm_group
from srcohort.waveform.enum import ECG_IODS, EcgIod

log = get_logger(__name__)

SERIES_NUMBER = 9201
SERIES_DESCRIPTION = "Resting ECG"
# Patient and study attributes a given study supplies (Patient, General Study modules).
STUDY_KEYWORDS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                  "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
                  "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription")
TYPE2_STUDY_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                        "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                        "AccessionNumber")


def choose_iod(recording: EcgRecording) -> EcgIod:
    """The first ECG IOD (12-lead, then General) whose content constraints the recording meets."""
    shape = (len(recording.leads), recording.samples, recording.sampling_rate)
    for iod in ECG_IODS:
        if iod.fits(*shape):
            return iod
    raise EcgFormatError(
        f"ECG of patient {recording.patient_id!r} fits no ECG waveform IOD: {shape[0]} leads, "
        f"{shape[1]} samples at {shape[2]:g} Hz (General ECG allows at most "
        f"{ECG_IODS[-1].max_channels} leads sampled at 200 to 1000 Hz)")


def ecg_dataset(recording: EcgRecording, *, study: Dataset | None, series_instance_uid: str,
                sop_instance_uid: str, institution: str = "") -> Dataset:
    """A 12-lead or General ECG Waveform instance for ``save_as(enforce_file_format=True)``."""
    iod = choose_iod(recording)
    acquired = _acquired(recording, study)
    ds = Dataset()
    ds.file_meta = _file_meta(iod.sop_class_uid, sop_instance_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"   # names from any site, in any language
    ds.SOPClassUID = iod.sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    if study is None:
        _own_study(ds, recording, acquired, series_instance_uid)
    else:
        _joined_study(ds, recording, study)
    ds.Modality = "ECG"
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDate, ds.SeriesTime = _da(acquired), _tm(acquired)
    ds.SeriesDescription = SERIES_DESCRIPTION
    ds.Manufacturer = recording.manufacturer
    if recording.manufacturer_model_name:
        ds.ManufacturerModelName = recording.manufacturer_model_name
    if institution:
        ds.InstitutionName = institution
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = _da(acquired), _tm(acquired)
    ds.AcquisitionDateTime = _dt(acquired)
    ds.AcquisitionContextSequence = []
    ds.WaveformSequence = [rhythm_group(recording)]
    items = annotations(recording)
    if items:
        ds.WaveformAnnotationSequence = items
    log.debug("ecg waveform", extra={"patient_id": str(ds.PatientID), "leads": len(recording.leads),
                                     "sop_class": iod.sop_class_uid.name})
    return ds


def _acquired(recording: EcgRecording, study: Dataset | None) -> dt.datetime:
    """Acquisition DateTime is Type 1; without it the study's date and time stand in."""
    if recording.acquired is not None:
        return recording.acquired
    day = str(study.get("StudyDate", "")) if study is not None else ""
    if len(day) == 8:
        clock = (str(study.get("StudyTime", "")) + "000000")[:6]  # type: ignore[union-attr]
        return dt.datetime.strptime(day + clock, "%Y%m%d%H%M%S")
    raise EcgFormatError(f"ECG of patient {recording.patient_id!r} has no acquisition date and "
                         "time, which the ECG waveform IODs require")


def _own_study(ds: Dataset, recording: EcgRecording, acquired: dt.datetime,
               series_instance_uid: str) -> None:
    """Patient from the recording; the ECG is a study of its own, identified by its series."""
    ds.PatientName = recording.patient_name
    ds.PatientID = recording.patient_id
    ds.PatientBirthDate = _da(recording.birth_date) if recording.birth_date else ""
    ds.PatientSex = recording.sex
    ds.StudyInstanceUID = derived_uid(series_instance_uid, "ecg-study")
    ds.StudyDate, ds.StudyTime = _da(acquired), _tm(acquired)
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.StudyDescription = SERIES_DESCRIPTION


def _joined_study(ds: Dataset, recording: EcgRecording, study: Dataset) -> None:
    """Patient and study from the given study, so the ECG joins it."""
    for keyword in STUDY_KEYWORDS:
        if keyword in study:
            setattr(ds, keyword, study[keyword].value)
    for keyword in TYPE2_STUDY_KEYWORDS:
        if keyword not in ds:
            setattr(ds, keyword, "")
    if str(ds.PatientID) != recording.patient_id:
        log.warning("ecg patient id differs from the study's", extra={
            "recording_patient_id": recording.patient_id, "study_patient_id": str(ds.PatientID),
            "study_instance_uid": str(ds.StudyInstanceUID)})


def _file_meta(sop_class_uid: UID, sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _da(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def _tm(value: dt.datetime) -> str:
    return value.strftime("%H%M%S")


def _dt(value: dt.datetime) -> str:
    """DICOM DT with the UTC offset when the source stated one."""
    return value.strftime("%Y%m%d%H%M%S%z")
