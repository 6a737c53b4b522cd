"""Kaapana workflow ``srcohort-convert-index``: one site export -> DICOM + SR -> OpenSearch.

Run it once per site export (and again after fixing what the conversion report quarantined:
both steps overwrite their earlier results in place).
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
from srcohort_workflow.SrcohortConvertOperator import SrcohortConvertOperator  # noqa: E402
from srcohort_workflow.SrcohortIndexOperator import SrcohortIndexOperator  # noqa: E402

dag = srcohort_dag("srcohort-convert-index", {
    "site_dir": form_field(
        "Site export folder", "Folder of one site export (mapping.yaml, tables, images), as the "
        "processing steps see it; in Kaapana below /kaapana/mounted/data.", required=True),
    "site": form_field(
        "Site id", "Site id stored with every indexed series; use the export's mapping.yaml "
        "site.", required=True),
    "index_prefix": index_prefix_field("Prefix of the indices to write."),
})

convert = SrcohortConvertOperator(dag=dag)
index = SrcohortIndexOperator(dag=dag, input_operator=convert)
convert >> index
end_with_cleaner(dag, index)
