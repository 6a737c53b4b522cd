"""Step ``srcohort-convert``: one site export -> DICOM images and SRs (``srcohort convert``)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from srcohort_workflow.kaapana_compat import SrcohortStep, required


class SrcohortConvertOperator(SrcohortStep):
    """Convert the export at ``workflow_form.site_dir`` into ``<run>/<operator_out_dir>/``.

    Output: ``dicom/`` for the index step, ``quarantine/`` and ``conversion-report.json`` for the
    site admin, who fixes what was set aside and runs the DAG again (outputs are overwritten in
    place). XCom: the site id and how many inputs were converted or quarantined.
    """

    step_name = "srcohort-convert"
    script = 'srcohort convert "$SITE_DIR" --out "$WORKFLOW_DIR/$OPERATOR_OUT_DIR" --json'

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.convert.site import convert_site
        # Airflow's LocalExecutor runs tasks in forks of daemonic processes, which may not start
        # the converter's worker processes: convert on one core there, on all cores elsewhere.
        workers = 1 if multiprocessing.current_process().daemon else None
        report = convert_site(Path(required(settings, "site_dir")), out_dir, workers=workers)
        return {"site": report.site, **report.counts()}
