"""Step ``srcohort-federated-combine``: the coordinator's view, from aggregate files only.

It reads nothing but the site aggregates (``*.json``) of its input folder: in a consortium the
coordinator collects those files from every site's run; in one site's run it shows that site's
published table and plots exactly as the coordinator will see them. Without an aggregate (the
site's release waits for approval) there is nothing to combine and the step is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowSkipException

from srcohort_workflow.kaapana_compat import SrcohortStep


class SrcohortFederatedCombineOperator(SrcohortStep):
    """Write ``federated.json``, ``upset.png`` and ``label-balance.png``. XCom: the table."""

    step_name = "srcohort-federated-combine"
    needs_input = True
    script = """\
out="$WORKFLOW_DIR/$OPERATOR_OUT_DIR"
mkdir -p "$out"
set -- "$WORKFLOW_DIR/$OPERATOR_IN_DIR"/*.json
if [ -e "$1" ]; then
  srcohort federated combine "$@" --out "$out" --json
else
  echo "no site aggregate: the release waits for approval (srcohort federated ledger)"
fi"""

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.federated import combine_files
        aggregates = sorted(in_dir.glob("*.json")) if in_dir else []
        if not aggregates:
            raise AirflowSkipException(f"no site aggregate (*.json) in {in_dir}: the release "
                                       f"waits for approval (srcohort federated ledger)")
        combined = combine_files(aggregates, out_dir)
        return {"sites": len(aggregates), "table": combined.table()}
