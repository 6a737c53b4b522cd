"""The SR instance shared by the families: Comprehensive (3D) SR with srcohort's conventions.

Every family's ``sop.py`` subclasses one of these and names only its series number and
description, so manufacturer, the private coding scheme declaration, the character set and the
handling of context-only evidence are the same for every SR srcohort writes.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import highdicom as hd
from highdicom.sr.templates import Template
from pydicom.dataset import Dataset

from srcohort import __version__
from srcohort.sr.evidence import finish, is_context_only

MANUFACTURER = "srcohort"


class _SrcohortSR:
    """Mixin: build the SR with srcohort's attributes, then finish it (evidence, codes)."""

    SERIES_NUMBER: ClassVar[int]
    SERIES_DESCRIPTION: ClassVar[str]

    def __init__(self, evidence: Sequence[Dataset], content: Template, *,
                 series_instance_uid: str, sop_instance_uid: str, institution: str = "") -> None:
        super().__init__(  # type: ignore[call-arg]
            evidence=evidence, content=content, series_instance_uid=series_instance_uid,
            series_number=self.SERIES_NUMBER, sop_instance_uid=sop_instance_uid,
            instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
            institution_name=institution or None,
            record_evidence=not is_context_only(evidence),
            series_description=self.SERIES_DESCRIPTION, software_versions=__version__)
        finish(self, evidence, private_codes=True)  # type: ignore[arg-type]


class SrcohortComprehensiveSR(_SrcohortSR, hd.sr.ComprehensiveSR):
    """Comprehensive SR: text, codes, numbers, dates and 2D coordinates."""


class SrcohortComprehensive3DSR(_SrcohortSR, hd.sr.Comprehensive3DSR):
    """Comprehensive 3D SR, needed for SCOORD3D (landmarks in the CT's frame of reference)."""
