"""OPS code families that decide the outcome label."""

from __future__ import annotations

from enum import Enum


class OpsFamily(Enum):
    """Prefixes of the German procedure classification (OPS) that the outcome depends on."""

    TAVI = "5-35a.0"          # transcatheter aortic valve implantation
    PACEMAKER = "5-377"       # implantation of a pacemaker or defibrillator

    def matches(self, code: str) -> bool:
        return code.strip().startswith(self.value)
