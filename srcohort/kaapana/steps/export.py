"""Step ``export``: a dataset or a cohort, de-identified, into the project bucket.

The selection is the Kaapana dataset the workflow was started on (``data_form.identifiers``:
its patients, srcohort.kaapana.cohorts.dataset_cohort) or, without one,
``workflow_form.cohort``. Files come from GetInputOperator's copy in the run folder where it
made one, else by WADO-RS from the PACS (srcohort.kaapana.files). The export itself is
srcohort's (srcohort.export.run: the unified training layout and/or de-identified DICOM,
verified for PHI); it goes zipped to ``srcohort/exports/<run id>/<name>.zip`` of the project
bucket, with its summary beside it. The count and the export are entered in the project's
audit log, as the user who started the workflow; the card of a unified export cites that
entry. Runs in the project's namespace with the project user's token, so it reads only the
project's own indices.

The pseudonymisation secret comes from ``$SRCOHORT_SECRET`` (the operators map it from the
project namespace's Secret ``srcohort-pseudonym``), never from the run conf.
"""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

from srcohort.audit.audited import count_patients
from srcohort.export.run import OUTPUT_FORMATS, export_formats
from srcohort.export.split import SplitFractions
from srcohort.export.training import TrainingSettings
from srcohort.kaapana.bucket import FOLDER
from srcohort.kaapana.cohorts import cohort_setting, dataset_cohort
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.files import PacsFiles, batch_series
from srcohort.kaapana.platform import Platform

SECRET_ENV = "SRCOHORT_SECRET"


def run(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    project = pod.project
    secret = pod.get(SECRET_ENV)
    if not secret:
        raise KaapanaError(f"${SECRET_ENV} is not set: create the Secret srcohort-pseudonym "
                           f"(key secret) in namespace {project.kubernetes_namespace}")
    data_form = pod.form("data_form")
    if data_form.get("identifiers"):
        cohort = dataset_cohort(str(data_form.get("dataset_name") or "dataset"),
                                data_form["identifiers"])
    else:
        cohort = cohort_setting(pod.setting("cohort"))
    output_format = str(pod.setting("output_format") or "unified")
    if output_format not in OUTPUT_FORMATS:
        raise KaapanaError(f"workflow_form.output_format must be one of "
                           f"{', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    try:
        split = SplitFractions.parse(str(pod.setting("split") or "70/15/15"))
    except ValueError as exc:
        raise KaapanaError(f"workflow_form.split: {exc}") from None
    local = batch_series(pod.batch_inputs()) if pod.get("OPERATOR_IN_DIR") else {}
    locate = PacsFiles(platform.dicomweb, pod.out_dir / "pacs", local)
    prefix = platform.prefix(project)
    out = pod.out_dir / "export"
    counts = count_patients(platform.opensearch, cohort, prefix=prefix, actor=platform.actor)
    summary = export_formats(platform.opensearch, cohort, out, output_format=output_format,
                             prefix=prefix, secret=secret.encode("utf-8"),
                             settings=TrainingSettings(split=split), locate=locate,
                             actor=platform.actor)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", cohort.name)
    shutil.make_archive(str(pod.out_dir / name), "zip", out)
    key = f"{FOLDER}/exports/{pod.require('RUN_ID', 'set by KaapanaBaseOperator')}"
    bucket = platform.bucket(project)
    summary.update(counts=counts, fetched_from_pacs=len(locate.fetched),
                   archive=f"{bucket.bucket}/{key}/{name}.zip")
    bucket.put_file(pod.out_dir / f"{name}.zip", f"{key}/{name}.zip")
    (pod.out_dir / "export.json").write_text(json.dumps(summary, indent=1, default=str), "utf-8")
    bucket.put_file(pod.out_dir / "export.json", f"{key}/export.json")
    return summary
