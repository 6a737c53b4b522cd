"""De-identification of exported DICOM (first slice of PS3.15 Annex E).

Replaces patient identity by the pseudonym, removes the identifying attributes below and all
private tags. Dates and UIDs stay; the full Basic Profile with date shifting is tracked as a
separate issue.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

# Type 2 attributes the IODs require to be present: emptied (PS3.15 action Z), not removed.
EMPTY = ("PatientBirthDate", "ReferringPhysicianName", "AccessionNumber", "StudyID")
# Type 1 in some IODs (SEG's Enhanced General Equipment): replaced by a dummy (action D).
DUMMY = {"DeviceSerialNumber": "0"}
REMOVE = (
    "PatientBirthTime", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
    "MedicalRecordLocator", "EthnicGroup", "Occupation", "PatientComments", "AdditionalPatientHistory",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
    "RequestingPhysician", "StationName",
    "VerifyingObserverSequence", "AuthorObserverSequence",
)


def deidentify(ds: Dataset, pseudonym: str) -> Dataset:
    """Modify ``ds`` in place and return it."""
    ds.remove_private_tags()
    for keyword in REMOVE:
        if keyword in ds:
            delattr(ds, keyword)
    for keyword in EMPTY:
        if keyword in ds:
            setattr(ds, keyword, "")
    for keyword, value in DUMMY.items():
        if keyword in ds:
            setattr(ds, keyword, value)
    ds.PatientID = pseudonym
    ds.PatientName = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "srcohort: HMAC pseudonym, identifiers removed"
    return ds
