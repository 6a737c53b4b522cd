"""Evidence and patient/study context shared by every SR family.

highdicom takes patient and study of a new SR from its first evidence instance. Registry data
often exists for patients without any image; for them a *context* dataset supplies patient and
study attributes without claiming to be evidence (``record_evidence`` off and no evidence
sequence), so the SR stays truthful about what it references.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from pydicom.dataset import Dataset

from srcohort import codes
from srcohort.uids import derived_uid



class PatientContext(Dataset):
    """Patient and study attributes standing in for evidence; never written as a reference."""


def patient_context(site: str, patient_id: str, *, patient_name: str = "",
                    birth_date: dt.date | None = None, sex: str = "",
                    study_date: dt.date | None = None) -> PatientContext:
    """A dataset that carries patient and study identity for a patient without images."""
    ds = PatientContext()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = birth_date.strftime("%Y%m%d") if birth_date else ""
    ds.PatientSex = sex
    ds.StudyInstanceUID = derived_uid(site, patient_id, "registry-study")
    ds.StudyDate = study_date.strftime("%Y%m%d") if study_date else ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"  # required by highdicom, then dropped
    ds.SOPInstanceUID = derived_uid(site, patient_id, "registry-context")
    ds.SeriesInstanceUID = derived_uid(site, patient_id, "registry-context-series")
    return ds


def is_context_only(evidence: Sequence[Dataset]) -> bool:
    """True when ``evidence`` is a patient context, not instances to reference."""
    return len(evidence) == 1 and isinstance(evidence[0], PatientContext)


def finish(sr: Dataset, evidence: Sequence[Dataset], *, private_codes: bool) -> None:
    """Drop a context dataset from the evidence sequences and declare the private scheme.

    Text comes from hospital tables and image headers in any language; UTF-8 (ISO_IR 192)
    encodes all of it, so every SR declares it.
    """
    sr.SpecificCharacterSet = "ISO_IR 192"
    if is_context_only(evidence):
        for keyword in ("CurrentRequestedProcedureEvidenceSequence",
                        "PertinentOtherEvidenceSequence"):
            if keyword in sr:
                delattr(sr, keyword)
    if private_codes:
        sr.CodingSchemeIdentificationSequence = [codes.private_scheme_item()]
