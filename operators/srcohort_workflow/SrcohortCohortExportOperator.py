"""Step ``srcohort-cohort-export``: count a cohort per site, then export it de-identified.

``srcohort cohort count`` and ``srcohort export --format dicom`` in one step, so the counts and
the exported files come from the same state of the index; both are entered in the site's audit
log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srcohort_workflow.cohort_settings import (COHORT_SCRIPT, DEFAULT_SECRET_ENV,
                                               load_cohort_setting, pseudonym_secret,
                                               secret_env_vars)
from srcohort_workflow.kaapana_compat import (INDEX_PREFIX, SrcohortStep, opensearch_client,
                                              required, run_actor)


class SrcohortCohortExportOperator(SrcohortStep):
    """Count and export ``workflow_form.cohort`` into ``<run>/<operator_out_dir>/``.

    Output: ``dicom/data/<pseudonym>/...`` and ``dicom/manifest/`` (see srcohort.export.exporter),
    as the container's ``srcohort export --format dicom`` writes them. XCom: the cohort's name,
    its patient counts per site plus ``total``, and the exported patients and files.
    """

    step_name = "srcohort-cohort-export"
    defaults = {"index_prefix": INDEX_PREFIX, "secret_env": DEFAULT_SECRET_ENV}
    script = f"""\
out="$WORKFLOW_DIR/$OPERATOR_OUT_DIR"
mkdir -p "$out"
{COHORT_SCRIPT}
srcohort cohort count "$cohort" --prefix "$INDEX_PREFIX" --json
srcohort export "$cohort" --out "$out" --format dicom --prefix "$INDEX_PREFIX" \\
  --secret-env "$SECRET_ENV" --json"""

    def container_secrets(self) -> list[Any]:
        return secret_env_vars()

    def run_step(self, settings: dict[str, Any], in_dir: Path | None, out_dir: Path
                 ) -> dict[str, Any]:
        from srcohort.audit.audited import count_patients
        from srcohort.export.run import export_formats
        secret = pseudonym_secret(required(settings, "secret_env"))
        cohort = load_cohort_setting(required(settings, "cohort"))
        prefix = str(settings["index_prefix"])
        client = opensearch_client()
        actor = run_actor(self, settings, out_dir)
        counts = count_patients(client, cohort, prefix=prefix, actor=actor)
        result = export_formats(client, cohort, out_dir, output_format="dicom", prefix=prefix,
                                secret=secret, actor=actor)["dicom"]
        return {"cohort": cohort.name, "counts": counts, "patients": result["patients"],
                "files": result["files"], "manifest": result["manifest_path"]}
