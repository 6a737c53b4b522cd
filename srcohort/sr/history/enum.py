"""Value sets of the patient history family."""

from __future__ import annotations

from enum import Enum

from pydicom.sr.coding import Code

from srcohort import codes


class SmokingStatus(Enum):
    """Tobacco smoking behaviour, as the canonical vocabulary spells it."""

    CURRENT = "current"
    FORMER = "former"
    NEVER = "never"

    @property
    def code(self) -> Code:
        return codes.SMOKING[self.value]
