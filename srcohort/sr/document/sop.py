"""The SR instance of a declared template: Comprehensive (3D) SR with the declared series."""

from __future__ import annotations

from functools import lru_cache

from srcohort.sr.sop import SrcohortComprehensive3DSR, SrcohortComprehensiveSR, SrcohortSR
from srcohort.study.model import Template

_BASES = {"comprehensive": SrcohortComprehensiveSR, "comprehensive3d": SrcohortComprehensive3DSR}


@lru_cache(maxsize=64)
def declared_sr(template: Template) -> type[SrcohortSR]:
    """The SR class of ``template``: one class per template, so each keeps its own series number
    and description, and its own shell on the fast construction path (``srcohort.sr.sop``)."""
    if template.sop_class not in _BASES:
        raise ValueError(f"{template.origin}: unknown SR class {template.sop_class!r} (known: "
                         f"{', '.join(_BASES)})")
    words = "".join(c if c.isalnum() else " " for c in template.name or template.template).split()
    name = "".join(word[:1].upper() + word[1:] for word in words) + "Report"
    return type(name, (_BASES[template.sop_class],),
                {"SERIES_NUMBER": template.series_number,
                 "SERIES_DESCRIPTION": template.series_description,
                 "__doc__": f"SR of template {template.template} ({template.name})."})
