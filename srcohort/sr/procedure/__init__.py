"""TAVI procedure outcome (pacemaker after TAVI) derived from coded procedures (OPS)."""

from srcohort.sr.procedure.content import TaviProcedureOutcome
from srcohort.sr.procedure.sop import ProcedureOutcomeReport

__all__ = ["ProcedureOutcomeReport", "TaviProcedureOutcome"]
