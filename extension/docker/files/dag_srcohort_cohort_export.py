"""Kaapana workflow ``srcohort-cohort-export``: count a cohort per site and export it.

The cohort is a saved definition shipped with srcohort (by name) or a definition pasted as YAML
text; the export is de-identified with pseudonyms keyed by the site's secret.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:  # In Kaapana the operator package sits next to this file, on Airflow's DAG path.
    import srcohort_workflow  # noqa: F401
except ImportError:  # In the repository it is in ../operators.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operators"))

from srcohort_workflow.dag_defaults import (end_with_cleaner, form_field,  # noqa: E402
                                            index_prefix_field, srcohort_dag)
from srcohort_workflow.cohort_settings import DEFAULT_COHORT  # noqa: E402
from srcohort_workflow.SrcohortCohortExportOperator import SrcohortCohortExportOperator  # noqa: E402,E501

dag = srcohort_dag("srcohort-cohort-export", {
    "cohort": form_field(
        "Cohort", "Name of a saved cohort (e.g. tavi-self-expanding) or a whole cohort "
        "definition as YAML text (docs/cohorts.md).", default=DEFAULT_COHORT, required=True),
    "index_prefix": index_prefix_field("Prefix of the indices to query, as given to "
                                       "srcohort-convert-index."),
    "secret_env": form_field(
        "Pseudonym secret variable", "Name of the environment variable that holds the site's "
        "pseudonymisation secret (never the secret itself).",
        default=SrcohortCohortExportOperator.defaults["secret_env"]),
})

export = SrcohortCohortExportOperator(dag=dag)
end_with_cleaner(dag, export)
