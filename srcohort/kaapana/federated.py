"""Federated runs through Kaapana's federated framework: the central instance's side.

Kaapana 0.6 (``data-processing/base-images/base-python-cpu/files/kaapana_federated/
kaapana_federated/KaapanaFederatedTraining.py``, ``KaapanaFederatedTrainingBase``) runs a
federated workflow from a central DAG whose conf carries the remote workflow's forms as
``external_schema_<form>``. The central container

1. splits the conf: ``external_schema_*`` (prefix removed) and ``project_form`` go to the sites;
   the federated folder is ``<remote_dag_id>/<run id>``;
2. asks its backend for the registered sites (``POST /client/get-kaapana-instances``, by
   ``instance_names``; each answer carries the site's ``fernet_key``);
3. creates one job per site (``PUT /client/workflow_jobs`` with ``federated``, ``dag_id``,
   ``conf_data``, ``username``, ``instance_names``, ``workflow_id``), waits for each
   (``GET /client/job?job_id=``: ``finished`` or ``failed``);
4. fetches what each site's federated operators uploaded into the project bucket,
   ``<federated dir>/<round>/<instance>/from_client/<operator>.tar`` (the backend presigns
   these names, kaapana-backend ``workflows/utils.py`` ``add_minio_urls``), each tar encrypted
   with the site's Fernet key (``HelperFederated.federated_sharing_decorator``).

srcohort needs one round and no model, so instead of subclassing that class (and inheriting
its model-weight machinery and its own Minio sessions) this module speaks the same protocol,
and opens each tar refusing any member that would leave its folder.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from srcohort.kaapana.backend import call
from srcohort.kaapana.bucket import ProjectBucket
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Pod
from srcohort.logs import get_logger

log = get_logger(__name__)

POLL_SECONDS = 10.0


@dataclass(frozen=True)
class FederatedRun:
    """The central run's conf, split as KaapanaFederatedTrainingBase splits it."""

    remote_conf: dict[str, Any]
    federated_dir: str
    username: str | None
    workflow_id: str | None

    @classmethod
    def from_conf(cls, conf: dict[str, Any], run_id: str) -> FederatedRun:
        remote = {key.removeprefix("external_schema_"): value for key, value in conf.items()
                  if key.startswith("external_schema_")}
        if "project_form" in conf:
            remote["project_form"] = conf["project_form"]
        federated = dict(remote.get("federated_form") or {})
        if not federated.get("remote_dag_id"):
            raise KaapanaError("the run conf has no external_schema_federated_form."
                               "remote_dag_id: start the workflow as a federated one")
        folder = federated.pop("federated_folder", federated["remote_dag_id"])
        federated_dir = f"{folder}/{federated.get('federated_dir', run_id)}"
        federated.update(federated_dir=federated_dir, federated_round=0,
                         from_previous_dag_run=None, before_previous_dag_run=None)
        remote["federated_form"] = federated
        form = conf.get("workflow_form") or {}
        return cls(remote, federated_dir, form.get("username"), form.get("workflow_id"))

    @property
    def operators(self) -> list[str]:
        return list(self.remote_conf["federated_form"].get("federated_operators") or [])


class Backend:
    """The central instance's kaapana-backend client routes the framework uses."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod

    def sites(self, instance_names: list[str]) -> list[dict[str, Any]]:
        return call(self.pod, "POST", "/client/get-kaapana-instances",
                    json={"instance_names": instance_names})

    def start_job(self, run: FederatedRun, instance: str) -> int:
        jobs = call(self.pod, "PUT", "/client/workflow_jobs", json={
            "federated": True, "dag_id": run.remote_conf["federated_form"]["remote_dag_id"],
            "conf_data": run.remote_conf, "username": run.username,
            "instance_names": [instance], "workflow_id": run.workflow_id})
        return int(jobs[0]["id"])

    def job(self, job_id: int) -> dict[str, Any]:
        return call(self.pod, "GET", "/client/job", params={"job_id": job_id})


def run_sites(pod: Pod, run: FederatedRun, poll: float = POLL_SECONDS,
              deadline_seconds: float = 24 * 3600) -> dict[str, str]:
    """Start the remote workflow at every registered site and wait: instance -> Fernet key."""
    backend = Backend(pod)
    sites = backend.sites(list(run.remote_conf.get("instance_names") or []))
    if not sites:
        raise KaapanaError("no remote instance is registered for this federated run "
                           "(Kaapana's Instance Overview)")
    jobs = {site["instance_name"]: backend.start_job(run, site["instance_name"])
            for site in sites}
    log.info("federated jobs", extra={"jobs": jobs})
    pending = dict(jobs)
    deadline = time.monotonic() + deadline_seconds
    while pending:
        for instance, job_id in list(pending.items()):
            status = backend.job(job_id).get("status")
            if status == "finished":
                del pending[instance]
            elif status == "failed":
                raise KaapanaError(f"the srcohort job at {instance} failed (job {job_id})")
        if pending:
            if time.monotonic() > deadline:
                raise KaapanaError(f"no answer from {', '.join(sorted(pending))}")
            time.sleep(poll)
    return {site["instance_name"]: site["fernet_key"] for site in sites}


def fetch_results(bucket: ProjectBucket, run: FederatedRun, keys: dict[str, str],
                  target: Path) -> dict[str, list[Path]]:
    """Download, decrypt and unpack every site's upload: instance -> files written."""
    found: dict[str, list[Path]] = {}
    for instance, key in sorted(keys.items()):
        prefix = f"{run.federated_dir}/0/{instance}"
        for name in bucket.keys(prefix):
            operator = PurePosixPath(name).name.removesuffix(".tar")
            if not name.endswith(".tar") or "from_server" in name or \
                    operator not in run.operators:
                continue
            encrypted = bucket.get_file(name, target / ".download" / instance / f"{operator}.tar")
            found.setdefault(instance, []).extend(
                _unpack(_decrypt(encrypted.read_bytes(), key, instance), target / instance))
    return found


def _decrypt(data: bytes, key: str, instance: str) -> bytes:
    if key == "deactivated":               # HelperFederated's switch for unencrypted transfer
        return data
    try:
        return Fernet(key.encode()).decrypt(data)
    except (InvalidToken, ValueError):
        raise KaapanaError(f"the upload of {instance} does not decrypt with its registered "
                           f"Fernet key") from None


def _unpack(data: bytes, folder: Path) -> list[Path]:
    written = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts:
                raise KaapanaError(f"a site's upload names {member.name!r}, outside its folder")
            target = folder.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = tar.extractfile(member)
            assert extracted is not None
            target.write_bytes(extracted.read())
            written.append(target)
    return written
