"""Codes of the ECG report family: the skeleton of TID 3700 (its title and section headings, as
highdicom spells the skeleton of TID 1500) and, from the template's declaration, its findings,
measurements and sexes (srcohort/templates/tid3700-ecg-report.yaml)."""

from __future__ import annotations

from pydicom.sr.coding import Code

from srcohort.sources.ecg.model import FINDING_TERMS, MEASUREMENTS
from srcohort.study.load import template_vocabulary

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
QUANTITATIVE_ANALYSIS = Code("122144", "DCM", "Quantitative Analysis")
ECG_GLOBAL_MEASUREMENTS = Code("122158", "DCM", "ECG Global Measurements")
QUALITATIVE_ANALYSIS = Code("122145", "DCM", "Qualitative Analysis")
ECG_FINDING = Code("271921002", "SCT", "Electrocardiogram finding")
SUMMARY = Code("55112-7", "LN", "Summary")

FINDINGS: dict[str, Code] = {name: term.concept for name, term in FINDING_TERMS.items()}
MEASUREMENT_CODES: dict[str, Code] = {name: term.concept for name, term in MEASUREMENTS.items()}
SEXES: dict[str, Code] = {name: term.concept for name, term in
                          template_vocabulary("3700", "sex").terms.items()}
