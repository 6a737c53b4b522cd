"""De-identification of exported DICOM (first slice of PS3.15 Annex E).

Replaces patient identity by the pseudonym, removes the identifying attributes below and all
private tags. Dates and UIDs stay; the full Basic Profile with date shifting is tracked as a
separate issue.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

REMOVE = (
    "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
    "MedicalRecordLocator", "EthnicGroup", "Occupation", "PatientComments", "AdditionalPatientHistory",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
    "RequestingPhysician", "AccessionNumber", "StationName", "DeviceSerialNumber",
    "VerifyingObserverSequence", "AuthorObserverSequence",
)


def deidentify(ds: Dataset, pseudonym: str) -> Dataset:
    """Modify ``ds`` in place and return it."""
    ds.remove_private_tags()
    for keyword in REMOVE:
        if keyword in ds:
            delattr(ds, keyword)
    ds.PatientID = pseudonym
    ds.PatientName = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "srcohort: pseudonym (HMAC-SHA256), identifying attributes removed"
    return ds
