"""Step ``import``: site-export zips -> DICOM, SR, SEG, ECG -> the platform's PACS.

Inputs: the zips Kaapana's ``LocalVolumeMountOperator`` copied from Data Upload into
``$WORKFLOW_DIR/$OPERATOR_IN_DIR``, and ``workflow_form.bucket_object`` (keys in the project
bucket, comma-separated). Each zip is unpacked safely (srcohort.kaapana.archive) and converted
(srcohort.convert.site); every object written is sent by C-STORE with the AE titles that file
it under the project and ``workflow_form.dataset``, except image series that the PACS already
holds. The conversion report, the quarantine and a summary go to the project bucket below
``srcohort/imports/<run id>/<upload>/``, where the project's members read them.

Runs in the services namespace (only there is the Airflow-side copy of the upload visible, as
for Kaapana's own import-dicoms-from-data-upload), hence as the ``system`` user.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pydicom
from pydicom.misc import is_dicom

from srcohort.convert.report import ConversionReport
from srcohort.convert.site import convert_site
from srcohort.kaapana.archive import UnsafeArchive, site_folder, unpack
from srcohort.kaapana.bucket import FOLDER, ProjectBucket
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pacs import Receiver, ae_titles, send
from srcohort.kaapana.platform import Platform
from srcohort.logs import get_logger
from srcohort.sources.mapping import MappingError
from srcohort.study.load import StudyError

log = get_logger(__name__)

DEFAULT_DATASET = "srcohort"


def run(platform: Platform) -> dict[str, Any]:
    pod = platform.pod
    project = pod.project
    dataset = str(pod.setting("dataset") or DEFAULT_DATASET)
    calling, called = ae_titles(project.name, dataset)
    bucket = platform.bucket(project)
    uploads = _uploads(platform, bucket)
    if not uploads:
        raise KaapanaError("nothing to import: choose a zip in Data Upload or name an object "
                           "of the project bucket in bucket_object")
    receiver = Receiver.from_pod(pod)
    prefix = f"{FOLDER}/imports/{pod.require('RUN_ID', 'set by KaapanaBaseOperator')}"
    results = [_import(platform, upload, bucket, f"{prefix}/{_name(upload)}",
                       receiver, calling, called) for upload in uploads]
    summary = {"project": project.name, "dataset": dataset, "calling_aet": calling,
               "called_aet": called, "bucket": f"{bucket.bucket}/{prefix}", "uploads": results}
    failed = [r for r in results if r["status"] != "imported"]
    if failed:
        # Everything else was imported and reported; the run still fails so it is noticed.
        raise KaapanaError("; ".join(f"{r['upload']}: {r['reason']}" for r in failed)
                           + f" (reports in {bucket.bucket}/{prefix})")
    return summary


def _name(upload: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", upload.stem) or "upload"


def _uploads(platform: Platform, bucket: ProjectBucket) -> list[Path]:
    pod = platform.pod
    found: list[Path] = []
    if pod.get("OPERATOR_IN_DIR") and pod.in_dir.is_dir():
        found += sorted(p for p in pod.in_dir.iterdir() if p.is_file()
                        and p.suffix.lower() == ".zip")
    keys = [k.strip() for k in str(pod.setting("bucket_object") or "").split(",") if k.strip()]
    for key in keys:
        found.append(bucket.get_file(key, pod.out_dir / "from-bucket" / Path(key).name))
    return found


def _import(platform: Platform, upload: Path, bucket: ProjectBucket, prefix: str,
            receiver: Receiver, calling: str, called: str) -> dict[str, Any]:
    work = platform.pod.out_dir / "imports" / _name(upload)
    shutil.rmtree(work, ignore_errors=True)        # a rerun starts from the upload again
    result: dict[str, Any] = {"upload": upload.name, "status": "imported"}
    try:
        unpacked = unpack(upload, work / "upload")
        site_dir = site_folder(unpacked.folder)
    except (UnsafeArchive, KaapanaError) as exc:
        result.update(status="refused", reason=str(exc))
        _put_json(bucket, work / "import.json", f"{prefix}/import.json", result)
        log.warning("upload refused", extra=result)
        return result
    result["refused_members"] = unpacked.refused
    converted = work / "converted"
    try:
        report = convert_site(site_dir, converted)       # workers: the pod's CPU quota
    except (MappingError, StudyError) as exc:
        result.update(status="refused", reason=str(exc))
        _put_json(bucket, work / "import.json", f"{prefix}/import.json", result)
        return result
    objects = _objects(report, site_dir, converted / "dicom")
    in_pacs = sorted({o["series"] for o in objects if o["passthrough"]
                      and platform.dicomweb.has_series(o["study"], o["series"])})
    to_send = [Path(o["path"]) for o in objects if o["series"] not in in_pacs]
    sent = send(to_send, receiver, calling, called) if to_send else None
    result.update(site=report.site, counts=report.counts(),
                  objects=len(objects), sent=len(sent.sent) if sent else 0,
                  already_in_pacs=in_pacs, failed=sent.failed if sent else [])
    if result["failed"]:
        result.update(status="failed", reason=f"{len(result['failed'])} objects were not "
                      f"stored by {receiver.host}:{receiver.port}")
    bucket.put_file(converted / "conversion-report.json", f"{prefix}/conversion-report.json")
    if (converted / "quarantine").is_dir():
        bucket.put_tree(converted / "quarantine", f"{prefix}/quarantine")
    _put_json(bucket, work / "import.json", f"{prefix}/import.json", result)
    log.info("upload imported", extra={k: v for k, v in result.items() if k != "failed"})
    return result


def _objects(report: ConversionReport, site_dir: Path, dicom_root: Path) -> list[dict[str, Any]]:
    """Every object the conversion wrote, with its UIDs and whether it is an input passed
    through unchanged (an image series of the export, which the PACS may already hold)."""
    objects: dict[str, dict[str, Any]] = {}     # by path: rows of one SR share their output
    for outcome in report.outcomes:
        source = site_dir / outcome.input
        source_uid = None
        if outcome.line is None and source.is_file() and is_dicom(source):
            source_uid = str(pydicom.dcmread(source, stop_before_pixels=True,
                                             specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
        for rel in outcome.outputs:
            path = dicom_root / rel
            if str(path) in objects:
                continue
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
                "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"])
            objects[str(path)] = {"path": str(path), "series": str(ds.SeriesInstanceUID),
                                  "study": str(ds.StudyInstanceUID),
                                  "passthrough": str(ds.SOPInstanceUID) == source_uid}
    return list(objects.values())


def _put_json(bucket: ProjectBucket, path: Path, key: str, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1), "utf-8")
    bucket.put_file(path, key)
