"""One entry point for the CLI and the Airflow step: which export formats go where.

``unified`` (the training layout, training.py) goes to ``<out>/unified``, ``dicom`` (the
de-identified DICOM with manifests, exporter.py) to ``<out>/dicom``; ``both`` writes both from
the same state of the index. Every export leaves an entry in the site's audit log (the
manifests' digests, the output folder), and the unified export's card cites that entry and
the indexing run the export read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor, Clock, utc_now
from srcohort.audit.log import audit_log, record, reference
from srcohort.cohort.definition import Cohort
from srcohort.export.card import with_audit
from srcohort.export.exporter import export_cohort
from srcohort.export.selection import FileLocator, series_files
from srcohort.export.state import file_sha256, json_bytes, write_atomic
from srcohort.export.training import TrainingSettings, export_training

OUTPUT_FORMATS = ("unified", "dicom", "both")


def export_formats(client: OpenSearch, cohort: Cohort, out_dir: Path, *, output_format: str,
                   prefix: str, secret: bytes,
                   settings: TrainingSettings | None = None,
                   locate: FileLocator = series_files, actor: Actor | None = None,
                   clock: Clock = utc_now) -> dict[str, Any]:
    """Run the exports ``output_format`` asks for, audited as ``actor`` (default: this process's
    user); return their summaries by format and the audit entry's reference. ``locate`` says
    where each series' files are (default: the paths in the series index)."""
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
    manifests = {name: file_sha256(path) for name, path in (
        ("unified", out_dir / "unified" / "manifest.json"),
        ("dicom", Path(summary["dicom"]["manifest_path"]) if "dicom" in summary else None))
        if path is not None and path.is_file()}
    entry = record(client, prefix=prefix, action="export", actor=actor or Actor.current(),
                   cohort=cohort, result=manifests, output=out_dir.resolve(), clock=clock,
                   details={"formats": sorted(manifests), "manifest_sha256": manifests,
                            "patients": {f: summary[f]["patients"] for f in manifests}})
    if "unified" in summary:
        _cite_audit(out_dir / "unified" / "croissant.json", audit_log(client, prefix).index,
                    entry)
    summary["audit"] = reference(entry)
    return summary


def _cite_audit(card_path: Path, log: str, entry: dict[str, Any]) -> None:
    """Add the export's audit entry and the indexing run it read to the finished card."""
    cited = [reference(entry)]
    if entry["snapshot"]["last_index_run"]:
        cited.append(reference(entry["snapshot"]["last_index_run"]))
    card = json.loads(card_path.read_text("utf-8"))
    write_atomic(card_path, json_bytes(with_audit(card, log, cited)))
