"""Coded concepts used across the pipeline, in one place.

Standard codes come from SNOMED CT (SCT), DICOM (DCM), LOINC (LN) and UCUM. Where no standard
code exists the concept lives in the private scheme ``99SRCOHORT``; every SR that uses it
declares the scheme in its Coding Scheme Identification Sequence (see ``private_scheme_item``),
and docs/codes.md lists its codes.

The canonical vocabulary of site exports (``SAPIEN3``, ``current``, ``LCC_HINGE``, ...) maps to
codes here; site mapping files translate each hospital's spelling into that vocabulary.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

PRIVATE_SCHEME = "99SRCOHORT"
PRIVATE_SCHEME_UID = "2.25.58116745000839245085346640600583658003"  # UUID-derived (PS3.5 B.2)
PRIVATE_SCHEME_NAME = "srcohort private codes"


def private(value: str, meaning: str) -> Code:
    """A concept of the private scheme: for things no standard terminology names yet."""
    return Code(value, PRIVATE_SCHEME, meaning)


def private_scheme_item() -> Dataset:
    """One Coding Scheme Identification Sequence item that declares ``99SRCOHORT``."""
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeUID = PRIVATE_SCHEME_UID
    item.CodingSchemeName = PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = "srcohort project"
    return item


def concept_key(item: Dataset) -> str:
    """``SCHEME:VALUE`` of a coded entry (long and URN code values included): the form codes
    take in the index and in cohort definitions."""
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue") or ""
    return f"{item.get('CodingSchemeDesignator', '')}:{value}"


YES = Code("373066001", "SCT", "Yes")
NO = Code("373067005", "SCT", "No")
UNKNOWN = Code("261665006", "SCT", "Unknown")

# Document titles and sections
HISTORY = Code("11329-0", "LN", "History general")
PROBLEM_LIST = Code("11450-4", "LN", "Problem list")
SOCIAL_HISTORY = Code("29762-2", "LN", "Social history")
PAST_SURGICAL_HISTORY = Code("10167-5", "LN", "Past surgical history")
PROCEDURE_REPORT = Code("28570-0", "LN", "Procedure note")

# Patient history findings
DIABETES_MELLITUS = Code("73211009", "SCT", "Diabetes mellitus")
LEFT_BUNDLE_BRANCH_BLOCK = Code("63467002", "SCT", "Left bundle branch block")
TOBACCO_SMOKING_BEHAVIOR = Code("365981007", "SCT", "Tobacco smoking behavior")
SMOKING = {
    "current": Code("77176002", "SCT", "Smoker"),
    "former": Code("8517006", "SCT", "Ex-smoker"),
    "never": Code("266919005", "SCT", "Never smoked tobacco"),
}

# The imaging procedure a TID 1500 report is about (CID 100 Quantitative Diagnostic Imaging
# Procedures has no cardiac CT entry; PixelMed's validator checks membership).
CT_UNSPECIFIED = Code("25045-6", "LN", "CT unspecified body region")

# Procedures and outcome
PROCEDURE_REPORTED = Code("121058", "DCM", "Procedure reported")
TAVI = Code("725351001", "SCT", "Transcatheter aortic valve replacement")
PACEMAKER_IMPLANTATION = Code("307280005", "SCT", "Implantation of cardiac pacemaker")
PROCEDURE_DATE = private("PROCEDURE_DATE", "Procedure date")
PACEMAKER_DATE = private("PACEMAKER_DATE", "Pacemaker implantation date")
SOURCE_PROCEDURE_CODES = private("SOURCE_PROC_CODES", "Source procedure codes")
SOURCE_DOCUMENT = private("SOURCE_DOCUMENT", "Source document")

# Prosthesis
HEART_VALVE_PROSTHESIS = Code("25510005", "SCT", "Heart valve prosthesis")
PROSTHESIS_FAMILY = private("PROSTHESIS_FAMILY", "Prosthesis family")
PROSTHESIS_SIZE = private("PROSTHESIS_SIZE", "Prosthesis nominal size")
BALLOON_EXPANDABLE = private("BALLOON_EXPANDABLE", "Balloon-expandable transcatheter valve")
SELF_EXPANDING = private("SELF_EXPANDING", "Self-expanding transcatheter valve")
PROSTHESES: dict[str, tuple[Code, Code]] = {
    "SAPIEN3": (private("SAPIEN3", "Edwards SAPIEN 3"), BALLOON_EXPANDABLE),
    "MYVAL": (private("MYVAL", "Meril Myval"), BALLOON_EXPANDABLE),
    "EVOLUT": (private("EVOLUT", "Medtronic Evolut"), SELF_EXPANDING),
    "ACURATE": (private("ACURATE", "Boston Scientific ACURATE neo2"), SELF_EXPANDING),
    "PORTICO": (private("PORTICO", "Abbott Portico"), SELF_EXPANDING),
}

# Anatomy, landmarks and measurements (TID 1500)
AORTIC_VALVE_RING = Code("77583004", "SCT", "Aortic valve ring")
AORTIC_ROOT = Code("8128003", "SCT", "Aortic root")
MEMBRANOUS_SEPTUM = private("MEMBRANOUS_SEPTUM", "Membranous part of interventricular septum")
LANDMARKS: dict[str, Code] = {
    "LCC_HINGE": private("LCC_HINGE", "Left coronary cusp hinge point"),
    "RCC_HINGE": private("RCC_HINGE", "Right coronary cusp hinge point"),
    "NCC_HINGE": private("NCC_HINGE", "Non-coronary cusp hinge point"),
    "LM_OSTIUM": Code("1256091001", "SCT", "Ostium of left main coronary artery"),
    "RCA_OSTIUM": Code("56789007", "SCT", "Ostium of right coronary artery"),
}
# canonical name -> (concept, UCUM unit code, unit meaning, finding site)
MEASUREMENTS: dict[str, tuple[Code, str, str, Code]] = {
    "ANNULUS_DIAMETER": (Code("81827009", "SCT", "Diameter"), "mm", "millimeter", AORTIC_VALVE_RING),
    "ANNULUS_PERIMETER": (Code("131191004", "SCT", "Perimeter"), "mm", "millimeter", AORTIC_VALVE_RING),
    "ANNULUS_AREA": (Code("42798000", "SCT", "Area"), "mm2", "square millimeter", AORTIC_VALVE_RING),
    "MS_LENGTH": (private("MS_LENGTH", "Membranous septum length"), "mm", "millimeter",
                  MEMBRANOUS_SEPTUM),
    "CALCIUM_VOLUME": (Code("122660", "DCM", "Calcium Volume"), "mm3", "cubic millimeter", AORTIC_ROOT),
    "AGATSTON": (Code("112055", "DCM", "Agatston"), "1", "no units", AORTIC_ROOT),
}
# Site unit spellings the converter accepts, and the factor to the canonical UCUM unit above.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "mm": {"mm": 1.0, "cm": 10.0},
    "mm2": {"mm2": 1.0, "cm2": 100.0},
    "mm3": {"mm3": 1.0, "cm3": 1000.0, "ml": 1000.0},
    "1": {"1": 1.0, "": 1.0, "AU": 1.0},
}

# ---------------------------------------------------------------------------------------------
# ECG report (TID 3700). Sources: pydicom.sr.codedict (generated from PS3.16) unless noted.
# ---------------------------------------------------------------------------------------------
# DICOM (CID 7000, PixelMed's tables) spells the title 11524-0; LOINC itself has 11524-6
# ("EKG study"). DICOM readers match the DICOM spelling, so the SR uses it.
ECG_REPORT = Code("11524-0", "LN", "ECG Report")
ENGLISH = Code("en", "RFC5646", "English")                                 # CID 5000 (PixelMed)
CURRENT_PROCEDURE_DESCRIPTIONS = Code("55111-9", "LN", "Current Procedure Descriptions")
PROCEDURE_DATETIME = Code("122146", "DCM", "Procedure DateTime")
SOURCE_OF_MEASUREMENT = Code("121112", "DCM", "Source of Measurement")
PATIENT_CHARACTERISTICS = Code("121118", "DCM", "Patient Characteristics")
SUBJECT_AGE = Code("121033", "DCM", "Subject Age")
SUBJECT_SEX = Code("121032", "DCM", "Subject Sex")
BODY_HEIGHT = Code("8302-2", "LN", "Body height")                # LOINC, FHIR vital signs
BODY_WEIGHT = Code("29463-7", "LN", "Body weight")               # LOINC, FHIR vital signs
SEXES = {"M": Code("M", "DCM", "Male"), "F": Code("F", "DCM", "Female"),
         "O": Code("121102", "DCM", "Other sex")}                 # CID 7455
QUANTITATIVE_ANALYSIS = Code("122144", "DCM", "Quantitative Analysis")
ECG_GLOBAL_MEASUREMENTS = Code("122158", "DCM", "ECG Global Measurements")
QUALITATIVE_ANALYSIS = Code("122145", "DCM", "Qualitative Analysis")
ECG_FINDING = Code("271921002", "SCT", "Electrocardiogram finding")
SUMMARY = Code("55112-7", "LN", "Summary")
# Global measurements by the canonical names of srcohort.sources.ecg.model.MEASUREMENT_UNITS:
# intervals from CID 3228 "ECG Timing Measurement", QTc from CID 3227, axes from CID 3229.
# Heart rate is LOINC's (pydicom codedict): TID 3713's own MDC ventricular rate code could not
# be verified here.
ECG_MEASUREMENTS: dict[str, Code] = {
    "heart_rate": Code("8867-4", "LN", "Heart rate"),
    "rr_interval": Code("2:16168", "MDC", "RR interval global"),
    "pr_interval": Code("2:15872", "MDC", "PR interval global"),
    "qrs_duration": Code("2:16156", "MDC", "QRS duration global"),
    "qt_interval": Code("2:16160", "MDC", "QT interval global"),
    "qtc_interval": Code("2:15876", "MDC", "QTc interval global"),
    "p_axis": Code("2:16128", "MDC", "P Axis"),
    "qrs_axis": Code("2:16132", "MDC", "QRS axis"),
    "t_axis": Code("2:16136", "MDC", "T axis"),
}
# Findings by the canonical names of srcohort.sources.ecg.model.FINDINGS: CID 3230 "ECG
# Finding", sinus rhythm from CID 3415 "Cardiac Rhythm"; LVH is the SNOMED CT ECG finding
# (not in any DICOM context group; PhysioNet/CinC ECG label mapping).
ECG_FINDINGS: dict[str, Code] = {
    "LBBB": LEFT_BUNDLE_BRANCH_BLOCK,
    "RBBB": Code("59118001", "SCT", "Right bundle branch block"),
    "AF": Code("49436004", "SCT", "Atrial fibrillation"),
    "AV_BLOCK_1": Code("270492004", "SCT", "First degree atrioventricular block"),
    "SINUS_RHYTHM": Code("10:9216", "MDC", "Sinus Rhythm"),
    "LVH": Code("164873001", "SCT", "Electrocardiographic left ventricular hypertrophy"),
}
