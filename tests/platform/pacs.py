"""Orthanc in the role of Kaapana's CTP + dcm4chee (test-only).

Kaapana 0.6 receives DICOM at ``ctp-dicom-service.<services>.svc:11112`` (CTP's
``DicomImportService``, ``services/flow/ctp/ctp-chart/templates/configmap.yaml``), which accepts
any called AE title and writes the called AE into (0012,0020) (the project) and the calling AE
into (0012,0010) (the dataset) before the data reaches dcm4chee; workflows read it back through
DICOMweb (dicom-web-filter, ``$DICOM_WEB_FILTER_URL``). Orthanc from Debian stands in: it
accepts any called AE (``DicomCheckCalledAet: false``), records both AE titles of every stored
instance (metadata ``RemoteAET`` and ``CalledAET``) and answers QIDO-RS/WADO-RS under
``/dicom-web``. It does not rewrite (0012,0020)/(0012,0010); ``ctp_file`` does that to a copy
where a test needs what CTP hands on.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pydicom

from tests.platform.service import ServerProcess

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def available() -> bool:
    return Path(ORTHANC).is_file() and DICOMWEB_PLUGIN.is_file()


class Pacs(ServerProcess):
    """One Orthanc with its storage, index and config in ``root``."""

    def __init__(self, root: Path, dicom_port: int, http_port: int) -> None:
        super().__init__(root, "orthanc")
        self.dicom_port = dicom_port
        self.http_port = http_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self, timeout: float = 60.0) -> Pacs:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "srcohort-test-pacs", "DicomAet": "KAAPANA",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "DicomServerEnabled": True, "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "HttpServerEnabled": True, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "SaveJobs": False, "StableAge": 1,
        }
        (self.root / "orthanc.json").write_text(json.dumps(config), "utf-8")
        self.spawn([ORTHANC, str(self.root / "orthanc.json")], None,
                   lambda: bool(self.get("/system")), timeout)
        return self

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as answer:
            return json.loads(answer.read())

    def series_uids(self) -> set[str]:
        """Every SeriesInstanceUID stored, found by QIDO-RS."""
        with urllib.request.urlopen(f"{self.dicomweb}/series", timeout=30) as answer:
            body = answer.read()
        return {item["0020000E"]["Value"][0] for item in json.loads(body or b"[]")}

    def instance_aets(self) -> dict[str, tuple[str, str]]:
        """SOPInstanceUID -> (calling AE, called AE) as Orthanc recorded them."""
        found = {}
        for orthanc_id in self.get("/instances"):
            sop = self.get(f"/instances/{orthanc_id}/simplified-tags")["SOPInstanceUID"]
            meta = self.get(f"/instances/{orthanc_id}/metadata?expand")
            found[sop] = (meta.get("RemoteAET", ""), meta.get("CalledAET", ""))
        return found

    def filed_under(self, called_aet: str) -> dict[str, int]:
        """Series stored with this called AE (CTP's project) and their instance counts."""
        series: dict[str, int] = {}
        for instance in self.get("/instances?expand"):
            meta = self.get(f"/instances/{instance['ID']}/metadata?expand")
            if meta.get("CalledAET") == called_aet:
                uid = self.get(f"/series/{instance['ParentSeries']}")["MainDicomTags"][
                    "SeriesInstanceUID"]
                series[uid] = series.get(uid, 0) + 1
        return series

    def export_series(self, series_uid: str, target: Path) -> list[Path]:
        """The stored files of one series, as GetInputOperator downloads them."""
        [orthanc_id] = [r for r in self.post("/tools/lookup", series_uid.encode())
                        if r["Type"] == "Series"]
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for instance in self.get(f"/series/{orthanc_id['ID']}/instances"):
            with urllib.request.urlopen(f"{self.url}/instances/{instance['ID']}/file",
                                        timeout=60) as answer:
                path = target / f"{instance['MainDicomTags']['SOPInstanceUID']}.dcm"
                path.write_bytes(answer.read())
                written.append(path)
        return written

    def post(self, path: str, data: bytes) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())


def ctp_file(source: Path, target: Path, *, called_aet: str, calling_aet: str) -> None:
    """A copy of ``source`` as CTP passes it on: called AE in (0012,0020), calling AE in
    (0012,0010) (ctp-chart configmap: calledAETTag / callingAETTag)."""
    ds = pydicom.dcmread(source)
    ds.ClinicalTrialProtocolID = called_aet
    ds.ClinicalTrialSponsorName = calling_aet
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)


def clean(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
