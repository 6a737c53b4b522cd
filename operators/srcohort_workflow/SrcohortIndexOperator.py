"""Step ``srcohort-index``: the converted DICOM of one site -> OpenSearch (``srcohort index``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srcohort_workflow.kaapana_compat import (INDEX_PREFIX, SrcohortStep, opensearch_client,
                                              required, run_actor)


class SrcohortIndexOperator(SrcohortStep):
    """Index ``<run>/<input operator's out dir>/dicom`` as belonging to ``workflow_form.site``.

    Writes srcohort's own indices, named ``<index_prefix>series`` and ``<index_prefix>patients``;
    Kaapana's ``project_*`` indices are left alone. XCom: series and patient documents written, unreadable files.
    """

    step_name = "srcohort-index"
    needs_input = True
    defaults = {"index_prefix": INDEX_PREFIX}
    script = ('srcohort index "$WORKFLOW_DIR/$OPERATOR_IN_DIR/dicom" --site "$SITE" '
              '--prefix "$INDEX_PREFIX" --json')

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.audit.audited import index_directory
        assert in_dir is not None  # needs_input: checked when the DAG is built
        site = required(settings, "site")
        stats = index_directory(opensearch_client(), in_dir / "dicom", site=site,
                                prefix=str(settings["index_prefix"]),
                                actor=run_actor(self, settings, out_dir))
        return {"site": site, "series": stats.series, "patients": stats.patients,
                "errors": len(stats.errors)}
