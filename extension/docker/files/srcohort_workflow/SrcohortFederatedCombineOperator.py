"""Step ``srcohort-federated-combine``: the coordinator's view, from aggregate files only.

It reads nothing but the site aggregates (``*.json``) of its input folder: in a consortium the
coordinator collects those files from every site's run; in one site's run it shows that site's
published table and plots exactly as the coordinator will see them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowException

from srcohort_workflow.kaapana_compat import SrcohortStep


class SrcohortFederatedCombineOperator(SrcohortStep):
    """Write ``federated.json``, ``upset.png`` and ``label-balance.png``. XCom: the table."""

    step_name = "srcohort-federated-combine"
    needs_input = True
    script = """\
out="$WORKFLOW_DIR/$OPERATOR_OUT_DIR"
mkdir -p "$out"
srcohort federated combine "$WORKFLOW_DIR/$OPERATOR_IN_DIR"/*.json --out "$out" --json"""

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.federated import combine_files
        aggregates = sorted(in_dir.glob("*.json")) if in_dir else []
        if not aggregates:
            raise AirflowException(f"no site aggregate (*.json) in {in_dir}")
        combined = combine_files(aggregates, out_dir)
        return {"sites": len(aggregates), "table": combined.table()}
