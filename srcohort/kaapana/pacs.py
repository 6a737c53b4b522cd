"""The platform's PACS: C-STORE into it as Kaapana's dcmsend container does, DICOMweb out of it.

Sending (``data-processing/kaapana-plugin/processing-containers/dcmtk-dcmsend/files/start.py``
and ``KP/operators/DcmSendOperator.py``, Kaapana 0.6.0): dcmtk's ``dcmsend`` to
``ctp-dicom-service.<services>.svc:11112``, calling AE ``kp-<dataset>``, called AE
``kp-<project name>``; CTP files the objects under that project and dataset (it writes the
called AE into (0012,0020) and the calling AE into (0012,0010)). The pod needs the label
``network-access-ctp: "true"`` for the project namespace's network policy to let it through.

Reading: QIDO-RS and WADO-RS at ``$DICOM_WEB_FILTER_URL`` with the bearer token in both
``Authorization`` and ``x-forwarded-access-token``, as kaapanapy's ``HelperDcmWeb`` sends it;
``check_if_series_in_archive`` there counts a 200 with a non-empty answer as present.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from io import BytesIO
from pathlib import Path
from typing import Callable, Sequence

import requests
from pydicom import dcmread

from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Pod
from srcohort.logs import get_logger

log = get_logger(__name__)

PREFIX = "kp-"
CTP_PORT = 11112
# PS3.5 6.2: AE is at most 16 characters of the default repertoire without backslash and
# control characters; leading and trailing spaces are not significant.
AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
FILES_PER_ASSOCIATION = 500
SEND_TIMEOUT_SECONDS = 3600


def ae_titles(project_name: str, dataset: str) -> tuple[str, str]:
    """``(calling, called)`` AE titles that file objects under ``dataset`` of the project:
    dcmtk-dcmsend's rule, ``kp-`` prefixed unless already there."""
    calling = dataset if dataset.startswith(PREFIX) else f"{PREFIX}{dataset}"
    called = project_name if project_name.startswith(PREFIX) else f"{PREFIX}{project_name}"
    for role, title in (("calling (dataset)", calling), ("called (project)", called)):
        if not AE_TITLE.match(title) or title != title.strip():
            raise KaapanaError(f"{role} AE title {title!r} is not a DICOM AE title (at most "
                               f"16 characters, no backslash): choose a shorter dataset name")
    return calling, called


@dataclass(frozen=True)
class Receiver:
    """Where C-STORE goes: the platform's CTP unless ``PACS_HOST``/``PACS_PORT`` say else."""

    host: str
    port: int

    @classmethod
    def from_pod(cls, pod: Pod) -> Receiver:
        return cls(pod.get("PACS_HOST") or f"ctp-dicom-service.{pod.services_namespace}.svc",
                   int(pod.get("PACS_PORT") or CTP_PORT))


@dataclass
class SendResult:
    sent: list[str] = field(default_factory=list)         # SOP Instance UIDs stored
    failed: list[dict[str, str]] = field(default_factory=list)  # file and status


def send(files: Sequence[Path], receiver: Receiver, calling: str, called: str) -> SendResult:
    """C-STORE ``files`` with dcmsend; each file's outcome is read from dcmsend's report."""
    result = SendResult()
    for start in range(0, len(files), FILES_PER_ASSOCIATION):
        chunk = [str(path) for path in files[start:start + FILES_PER_ASSOCIATION]]
        with tempfile.TemporaryDirectory(prefix="srcohort-dcmsend-") as tmp:
            report = Path(tmp) / "report.txt"
            command = ["dcmsend", "--no-halt", "-aet", calling, "-aec", called,
                       "--create-report-file", str(report), receiver.host, str(receiver.port),
                       *chunk]
            try:
                done = subprocess.run(command, capture_output=True, text=True,
                                      timeout=SEND_TIMEOUT_SECONDS, check=False)
            except FileNotFoundError:
                raise KaapanaError("dcmsend not found: the image needs dcmtk") from None
            outcomes = _report_outcomes(report.read_text("utf-8", errors="replace")
                                        if report.exists() else "")
        if not outcomes:
            tail = " ".join((done.stderr or done.stdout).split())[-300:]
            raise KaapanaError(f"dcmsend to {receiver.host}:{receiver.port} as {calling} -> "
                               f"{called} sent nothing (exit {done.returncode}): {tail}")
        for filename, sop_uid, status in outcomes:
            if status.startswith("0x0000"):
                result.sent.append(sop_uid)
            else:
                result.failed.append({"file": filename, "status": status})
    log.info("sent", extra={"receiver": f"{receiver.host}:{receiver.port}", "calling": calling,
                            "called": called, "sent": len(result.sent),
                            "failed": len(result.failed)})
    return result


def _report_outcomes(report: str) -> list[tuple[str, str, str]]:
    """``(file, SOP Instance UID, DIMSE status)`` per file of a dcmsend report file."""
    outcomes = []
    for block in report.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if " : " in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        if "Filename" in fields:
            outcomes.append((fields["Filename"], fields.get("SOP Instance", ""),
                             fields.get("DIMSE Status", "not sent")))
    return outcomes


class DicomWeb:
    """QIDO-RS and WADO-RS of the platform (dicom-web-filter) with the pod's bearer token."""

    def __init__(self, base_url: str, token: Callable[[], str]) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    @classmethod
    def from_pod(cls, pod: Pod, token: Callable[[], str]) -> DicomWeb:
        return cls(pod.get("DICOM_WEB_FILTER_URL")
                   or f"http://dicom-web-filter-service.{pod.services_namespace}.svc:8080", token)

    def _headers(self, accept: str) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}", "x-forwarded-access-token": token,
                "Accept": accept}

    def has_series(self, study_uid: str, series_uid: str) -> bool:
        url = f"{self.base_url}/studies/{study_uid}/series"
        answer = self._get(url, params={"SeriesInstanceUID": series_uid},
                           accept="application/dicom+json")
        return answer.status_code == 200 and bool(answer.content.strip()) and answer.json() != []

    def download(self, url: str, target: Path) -> list[Path]:
        """The instances at a WADO-RS ``url`` (a series) as ``<SOPInstanceUID>.dcm`` files."""
        answer = self._get(url, accept='multipart/related; type="application/dicom"')
        if answer.status_code != 200:
            raise KaapanaError(f"WADO-RS {url} answered {answer.status_code}")
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for part in _multipart(answer.headers.get("Content-Type", ""), answer.content):
            uid = str(dcmread(BytesIO(part), stop_before_pixels=True,
                              specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
            path = target / f"{uid}.dcm"
            path.write_bytes(part)
            written.append(path)
        return written

    def _get(self, url: str, *, params: dict[str, str] | None = None, accept: str
             ) -> requests.Response:
        try:
            answer = requests.get(url, params=params, headers=self._headers(accept), timeout=300)
        except requests.RequestException as exc:
            raise KaapanaError(f"cannot reach DICOMweb at {url}: {type(exc).__name__}") from None
        if answer.status_code in (401, 403):
            raise KaapanaError(f"DICOMweb at {url} refused the pod's token "
                               f"({answer.status_code})")
        return answer


def _multipart(content_type: str, body: bytes) -> list[bytes]:
    """The parts of a ``multipart/related`` answer (WADO-RS), parsed by the standard library."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
    if not message.is_multipart():
        raise KaapanaError(f"WADO-RS answered {content_type!r}, not multipart/related")
    return [part.get_payload(decode=True) for part in message.iter_parts()]
