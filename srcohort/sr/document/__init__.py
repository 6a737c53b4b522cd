"""Documents a study declares (``kind: document``): a root container whose sections and items
are written from one patient's record, node by node as the declaration says."""

from srcohort.sr.document.content import DeclaredDocument
from srcohort.sr.document.sop import declared_sr

__all__ = ["DeclaredDocument", "declared_sr"]
