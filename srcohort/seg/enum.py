"""Canonical cardiac structures and their segmentation codes.

Site label tables name structures in this vocabulary (``LEFT_VENTRICLE``, ...); each maps to a
Segmented Property Category (CID 7150) and Type. Standard codes are taken from pydicom's code
dictionary, so each one exists in DICOM's tables under that meaning; only a structure with no
standard code uses the private scheme (docs/segmentations.md lists which and why).
"""

from __future__ import annotations

from enum import Enum

from pydicom.sr.codedict import codes as dicom_codes
from pydicom.sr.coding import Code

from srcohort import codes

ANATOMICAL_STRUCTURE = dicom_codes.SCT.AnatomicalStructure                     # CID 7150
MORPHOLOGICALLY_ABNORMAL_STRUCTURE = dicom_codes.SCT.MorphologicallyAbnormalStructure   # CID 7150


class Structure(Enum):
    """A segmentable structure: (category, type) codes; the member name is the canonical name."""

    LEFT_VENTRICLE = (ANATOMICAL_STRUCTURE, dicom_codes.SCT.LeftVentricle)
    RIGHT_VENTRICLE = (ANATOMICAL_STRUCTURE, dicom_codes.SCT.RightVentricle)
    LEFT_ATRIUM = (ANATOMICAL_STRUCTURE, dicom_codes.SCT.LeftAtrium)
    RIGHT_ATRIUM = (ANATOMICAL_STRUCTURE, dicom_codes.SCT.RightAtrium)
    LEFT_VENTRICULAR_OUTFLOW_TRACT = (ANATOMICAL_STRUCTURE,
                                      dicom_codes.SCT.LeftVentricleOutflowTract)
    AORTIC_VALVE = (ANATOMICAL_STRUCTURE, dicom_codes.SCT.AorticValve)
    AORTIC_ROOT = (ANATOMICAL_STRUCTURE, dicom_codes.SCT.AorticRoot)
    ASCENDING_AORTA = (ANATOMICAL_STRUCTURE, dicom_codes.SCT.AscendingAorta)
    MEMBRANOUS_SEPTUM = (ANATOMICAL_STRUCTURE, codes.private(
        "MEMBRANOUS_SEPTUM", "Membranous part of interventricular septum"))
    CALCIFICATION = (MORPHOLOGICALLY_ABNORMAL_STRUCTURE, dicom_codes.SCT.PathologicCalcification)

    @property
    def category(self) -> Code:
        return self.value[0]

    @property
    def property_type(self) -> Code:
        return self.value[1]

    @property
    def label(self) -> str:
        """Segment Label as viewers show it and dashboards filter it: ``Left Ventricle``."""
        return self.name.replace("_", " ").title()

    @property
    def is_private(self) -> bool:
        """Whether the SEG must declare srcohort's private coding scheme for this structure."""
        return self.property_type.scheme_designator == codes.PRIVATE_SCHEME
