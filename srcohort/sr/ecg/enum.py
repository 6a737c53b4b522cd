"""Value sets of the ECG report family."""

from __future__ import annotations

from enum import Enum

from pydicom.sr.coding import Code

from srcohort import codes


class EcgFinding(Enum):
    """Coded ECG statements, spelled as ``srcohort.sources.ecg.model.FINDINGS`` spells them.

    Readers of every vendor format reduce their statements to these names; the report writes
    each as the coded finding an index query can match, whatever the source's wording was.
    """

    LBBB = "LBBB"
    RBBB = "RBBB"
    AF = "AF"
    AV_BLOCK_1 = "AV_BLOCK_1"
    SINUS_RHYTHM = "SINUS_RHYTHM"
    LVH = "LVH"

    @property
    def code(self) -> Code:
        return codes.ECG_FINDINGS[self.value]
