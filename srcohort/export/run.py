"""One entry point for the CLI and the Airflow step: which export formats go where.

``unified`` (the training layout, training.py) goes to ``<out>/unified``, ``dicom`` (the
de-identified DICOM with manifests, exporter.py) to ``<out>/dicom``; ``both`` writes both from
the same state of the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

from srcohort.cohort.definition import Cohort
from srcohort.export.exporter import export_cohort
from srcohort.export.selection import FileLocator, series_files
from srcohort.export.training import TrainingSettings, export_training

OUTPUT_FORMATS = ("unified", "dicom", "both")


def export_formats(client: OpenSearch, cohort: Cohort, out_dir: Path, *, output_format: str,
                   prefix: str, secret: bytes,
                   settings: TrainingSettings = TrainingSettings(),
                   locate: FileLocator = series_files) -> dict[str, Any]:
    """Run the exports ``output_format`` asks for; return their summaries by format."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output format {output_format!r}: expected one of {OUTPUT_FORMATS}")
    summary: dict[str, Any] = {"cohort": cohort.name, "cohort_sha256": cohort.digest}
    if output_format in ("unified", "both"):
        result = export_training(client, cohort, out_dir / "unified", secret=secret,
                                 prefix=prefix, settings=settings, locate=locate)
        summary["unified"] = {k: v for k, v in result.to_dict().items() if k != "problems"}
        summary["unified"]["problems"] = len(result.problems)
    if output_format in ("dicom", "both"):
        summary["dicom"] = export_cohort(client, cohort, out_dir / "dicom", prefix=prefix,
                                         secret=secret, locate=locate).to_dict()
    return summary
