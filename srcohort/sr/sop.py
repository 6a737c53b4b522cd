"""The SR instance shared by the families: Comprehensive SR with srcohort's conventions.

Every family's ``sop.py`` subclasses one of these, so series numbering, manufacturer, the
private coding scheme declaration and the handling of context-only evidence are the same for
every SR srcohort writes.
"""

from __future__ import annotations

from typing import Sequence

import highdicom as hd
from highdicom.sr.templates import Template
from pydicom.dataset import Dataset

from srcohort import __version__
from srcohort.sr.evidence import finish, is_context_only

MANUFACTURER = "srcohort"


def sr_kwargs(evidence: Sequence[Dataset], *, series_instance_uid: str, sop_instance_uid: str,
              series_number: int, series_description: str, institution: str) -> dict:
    """Keyword arguments common to every srcohort SR constructor."""
    return dict(series_instance_uid=series_instance_uid,
                series_number=series_number, sop_instance_uid=sop_instance_uid,
                instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
                institution_name=institution or None,
                record_evidence=not is_context_only(evidence),
                series_description=series_description, software_versions=__version__)


class SrcohortComprehensiveSR(hd.sr.ComprehensiveSR):
    """Comprehensive SR that declares the private scheme and tolerates context-only evidence."""

    def __init__(self, evidence: Sequence[Dataset], content: Template, *,
                 private_codes: bool, **kwargs) -> None:
        super().__init__(content=content, evidence=evidence, **kwargs)
        finish(self, evidence, private_codes=private_codes)


class SrcohortComprehensive3DSR(hd.sr.Comprehensive3DSR):
    """Comprehensive 3D SR (needed for SCOORD3D) with the same conventions."""

    def __init__(self, evidence: Sequence[Dataset], content: Template, *,
                 private_codes: bool, **kwargs) -> None:
        super().__init__(content=content, evidence=evidence, **kwargs)
        finish(self, evidence, private_codes=private_codes)
