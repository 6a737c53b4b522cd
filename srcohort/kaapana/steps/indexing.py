"""Step ``index``: series from the PACS -> the project's srcohort indices.

Input: GetInputOperator's layout, ``$WORKFLOW_DIR/batch/<SeriesInstanceUID>/$OPERATOR_IN_DIR``
(get-input/files/get_input.py), filled either

* for a dataset chosen in a project (``data_form`` with ``dataset_name``): the project is
  ``project_form``'s, and the step runs in the project's namespace with the project user's
  token; or
* on arrival, by Kaapana's ``LocalAutoTriggerOperator`` (the ``*trigger_rule.json`` shipped
  with the DAGs; ``fetch_method: copy`` into the ``LocalGetInputDataOperator`` folder): that
  run conf has no ``project_form``, so each series' project is the one CTP wrote into
  (0012,0020) (``kp-<project>``; none: ``admin``, as Kaapana's LocalAddToDatasetOperator
  falls back), looked up in the AII. That run is a service run in the services namespace,
  whose system user also sets up a project's indices and roles when they are missing.

The documents keep the series' UIDs and DICOMweb address, not the run folder's paths, which
Kaapana cleans up after the run. Each project's run is entered in its audit log.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pydicom

from srcohort.audit.audited import index_directory
from srcohort.kaapana import aii
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pacs import PREFIX
from srcohort.kaapana.platform import Platform
from srcohort.kaapana.pod import Project
from srcohort.kaapana.project import ensure_project_scope
from srcohort.logs import get_logger

log = get_logger(__name__)


def run(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    folders = pod.batch_inputs()
    if not folders:
        raise KaapanaError(f"no series below {pod.workflow_dir}/batch/*/"
                           f"{pod.get('OPERATOR_IN_DIR')}: the input operator fetched nothing")
    if pod.form("project_form"):
        groups = {pod.project: folders}
    else:
        groups = _by_project(platform, folders)
    results = []
    for project, members in sorted(groups.items(), key=lambda item: item[0].name):
        staging = _stage(pod.out_dir / "series" / project.name, members)
        stats = index_directory(platform.opensearch, staging, site=platform.site,
                                prefix=platform.prefix(project), actor=platform.actor,
                                pacs=platform.dicomweb.base_url)
        results.append({"project": project.name, "series": stats.series,
                        "patients": stats.patients, "unreadable": stats.errors})
    return {"site": platform.site, "projects": results}


def _by_project(platform: Platform, folders: list[Path]) -> dict[Project, list[Path]]:
    """Series grouped by the project CTP filed them under; each project's scope ensured."""
    named: dict[str, list[Path]] = defaultdict(list)
    for folder in folders:
        named[_project_name(folder)].append(folder)
    groups: dict[Project, list[Path]] = {}
    for name, members in named.items():
        project = aii.project(platform.pod, name) or aii.project(platform.pod, aii.ADMIN_PROJECT)
        if project is None:
            raise KaapanaError(f"Kaapana's AII knows neither project {name!r} nor "
                               f"{aii.ADMIN_PROJECT!r}")
        ensure_project_scope(platform.opensearch, project, platform.index_prefix)
        groups.setdefault(project, []).extend(members)
    return groups


def _project_name(folder: Path) -> str:
    """The project of a series from (0012,0020) of its first file, ``kp-`` removed."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True,
                                 specific_tags=["ClinicalTrialProtocolID"])
        except pydicom.errors.InvalidDicomError:
            continue
        value = str(ds.get("ClinicalTrialProtocolID", "")).strip().lower()
        return value[len(PREFIX):] if value.startswith(PREFIX) else (value or aii.ADMIN_PROJECT)
    return aii.ADMIN_PROJECT


def _stage(staging: Path, folders: list[Path]) -> Path:
    """One folder holding the given series' files (hard links: the input stays intact for a
    retry of the task)."""
    shutil.rmtree(staging, ignore_errors=True)
    for folder in folders:
        target = staging / folder.parent.name
        for path in folder.rglob("*"):
            if path.is_file():
                destination = target / path.relative_to(folder)
                destination.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, destination)
                except OSError:
                    shutil.copyfile(path, destination)
    return staging
