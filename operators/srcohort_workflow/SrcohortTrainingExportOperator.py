"""Step ``srcohort-training-export``: the site's cohort as the unified training dataset.

The same layout at every site (srcohort.export.training): NIfTI CT and masks, ECG arrays,
a Parquet table of features and labels, a split, a manifest and a Croissant card; optionally
the de-identified DICOM as well. The step fails, and the export stays without its COMPLETE
marker, when the PHI verification finds an identifying value of the sources in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowException

from srcohort_workflow.cohort_settings import (COHORT_SCRIPT, DEFAULT_COHORT, DEFAULT_SECRET_ENV,
                                               load_cohort_setting, pseudonym_secret,
                                               secret_env_vars)
from srcohort_workflow.kaapana_compat import (INDEX_PREFIX, SrcohortStep, opensearch_client,
                                              required, run_actor)


class SrcohortTrainingExportOperator(SrcohortStep):
    """Export ``workflow_form.cohort`` to ``<run>/<operator_out_dir>/{unified,dicom}/``.

    XCom: patients, files, bytes, label balance and split sizes of the unified export, and the
    DICOM export's patients and files when ``output_format`` asks for DICOM.
    """

    step_name = "srcohort-training-export"
    defaults = {"cohort": DEFAULT_COHORT, "index_prefix": INDEX_PREFIX,
                "secret_env": DEFAULT_SECRET_ENV, "split": "70/15/15",
                "output_format": "unified"}
    script = f"""\
out="$WORKFLOW_DIR/$OPERATOR_OUT_DIR"
mkdir -p "$out"
{COHORT_SCRIPT}
srcohort export "$cohort" --out "$out" --format "$OUTPUT_FORMAT" --split "$SPLIT" \\
  --prefix "$INDEX_PREFIX" --secret-env "$SECRET_ENV" --json"""

    def container_secrets(self) -> list[Any]:
        return secret_env_vars()

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.export.run import OUTPUT_FORMATS, export_formats
        from srcohort.export.split import SplitFractions
        from srcohort.export.training import TrainingSettings
        try:
            split = SplitFractions.parse(required(settings, "split"))
        except ValueError as error:
            raise AirflowException(f"workflow_form.split: {error}") from None
        output_format = required(settings, "output_format")
        if output_format not in OUTPUT_FORMATS:
            raise AirflowException(f"workflow_form.output_format must be one of "
                                   f"{', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
        return export_formats(
            opensearch_client(), load_cohort_setting(required(settings, "cohort")), out_dir,
            output_format=output_format, prefix=str(settings["index_prefix"]),
            secret=pseudonym_secret(required(settings, "secret_env")),
            settings=TrainingSettings(split=split), actor=run_actor(self, settings, out_dir))
