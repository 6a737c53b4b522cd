"""Kaapana workflow ``srcohort-federated-export``: one site's part of a federated study.

Every site runs the same cohort definition: its k-suppressed aggregate (the only thing that
leaves the site, audited against the site's earlier releases and recorded in its release ledger
and audit log), the coordinator's view of it, and the de-identified, unified training export
that stays at the site for the federated training to read. While the release waits for a
person's approval the coordinator's view is skipped; the export still runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:  # In Kaapana the operator package sits next to this file, on Airflow's DAG path.
    import srcohort_workflow  # noqa: F401
except ImportError:  # In the repository it is in ../operators.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operators"))

from srcohort_workflow.cohort_settings import DEFAULT_COHORT  # noqa: E402
from srcohort_workflow.dag_defaults import (end_with_cleaner, form_field,  # noqa: E402
                                            index_prefix_field, srcohort_dag)
from srcohort_workflow.SrcohortFederatedCombineOperator import (  # noqa: E402
    SrcohortFederatedCombineOperator,
)
from srcohort_workflow.SrcohortFederatedSiteOperator import (  # noqa: E402
    SrcohortFederatedSiteOperator,
)
from srcohort_workflow.SrcohortTrainingExportOperator import (  # noqa: E402
    SrcohortTrainingExportOperator,
)

DEFAULTS = {**SrcohortFederatedSiteOperator.defaults, **SrcohortTrainingExportOperator.defaults}

dag = srcohort_dag("srcohort-federated-export", {
    "cohort": form_field(
        "Cohort", "Name of a saved cohort (e.g. tavi-self-expanding) or a whole cohort "
        "definition as YAML text (docs/cohorts.md); every site runs the same one.",
        default=DEFAULT_COHORT, required=True),
    "site": form_field("Site name", "How this site is named in the consortium's table.",
                       default=DEFAULTS["site"], required=True),
    "k": form_field("Smallest published count (k)", "Counts below k are suppressed in the "
                    "aggregate that leaves the site (docs/federated.md).", default=DEFAULTS["k"]),
    "split": form_field("Train/val/test split", "Fractions, e.g. 70/15/15; each patient's "
                        "split is stable across re-exports.", default=DEFAULTS["split"]),
    "output_format": form_field(
        "Output format", "unified (NIfTI, ECG arrays, Parquet, Croissant card), dicom "
        "(de-identified DICOM) or both.", default=DEFAULTS["output_format"],
        choices=("unified", "dicom", "both")),
    "index_prefix": index_prefix_field("Prefix of this site's indices, as given to "
                                       "srcohort-convert-index."),
    "secret_env": form_field(
        "Pseudonym secret variable", "Name of the environment variable that holds the site's "
        "pseudonymisation secret (never the secret itself).", default=DEFAULTS["secret_env"]),
})

site = SrcohortFederatedSiteOperator(dag=dag)
combine = SrcohortFederatedCombineOperator(dag=dag, input_operator=site)
export = SrcohortTrainingExportOperator(dag=dag, trigger_rule="none_failed")
site >> combine >> export
end_with_cleaner(dag, export)
