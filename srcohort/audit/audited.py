"""Index runs, counts and lists that leave their audit entry: what the CLI, the demo and the
Airflow steps call instead of the bare functions (exports: ``srcohort.export.run``; federated
releases: ``srcohort.federated.release``)."""

from __future__ import annotations

from pathlib import Path

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor, Clock, utc_now
from srcohort.audit.log import record
from srcohort.cohort.definition import Cohort
from srcohort.cohort import run
from srcohort.index import indexer


def index_directory(client: OpenSearch, dicom_dir: Path, *, site: str, prefix: str,
                    actor: Actor, pacs: str | None = None, clock: Clock = utc_now
                    ) -> indexer.IndexStats:
    """Index ``dicom_dir`` and record the run (the snapshot of every later entry points at it).

    ``pacs``: the files are a copy of series kept in the PACS at this DICOMweb URL
    (``indexer.index_directory``); the entry then names the PACS, not the transient copy.
    The entry keeps the numbers, not the unreadable files' names (paths may carry UIDs)."""
    stats = indexer.index_directory(client, dicom_dir, site=site, prefix=prefix, pacs=pacs)
    summary = {"site": site, "series": stats.series, "deleted": stats.deleted,
               "patients": stats.patients, "errors": len(stats.errors)}
    record(client, prefix=prefix, action="index", actor=actor, result=summary,
           output=pacs or Path(dicom_dir).resolve(), details=summary, clock=clock)
    return stats


def count_patients(client: OpenSearch, cohort: Cohort, *, prefix: str, actor: Actor,
                   clock: Clock = utc_now) -> dict[str, int]:
    counts = run.count_patients(client, cohort, prefix=prefix)
    record(client, prefix=prefix, action="count", actor=actor, cohort=cohort, result=counts,
           details={"total": counts["total"]}, clock=clock)
    return counts


def list_patients(client: OpenSearch, cohort: Cohort, *, prefix: str, actor: Actor,
                  clock: Clock = utc_now) -> list[dict]:
    """The cohort's patient documents; the entry records the digest of the listed keys."""
    patients = list(run.list_patients(client, cohort, prefix=prefix))
    record(client, prefix=prefix, action="list", actor=actor, cohort=cohort,
           result=[p["patient_key"] for p in patients], details={"patients": len(patients)},
           clock=clock)
    return patients
