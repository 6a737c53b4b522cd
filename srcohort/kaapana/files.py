"""Files of series kept in Kaapana's PACS, for an export (a ``FileLocator``).

A series indexed from the PACS has no paths in the index, only its DICOMweb address
(srcohort.index.retrieve). A workflow that exports it takes the copy GetInputOperator left in
the run folder (``batch/<SeriesInstanceUID>/<operator dir>/``) where there is one, and fetches
the rest by WADO-RS into the step's own folder; series indexed from files keep their paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from opensearchpy import OpenSearch

from srcohort.export.selection import series_sources
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pacs import DicomWeb
from srcohort.logs import get_logger

log = get_logger(__name__)


def batch_series(folders: Iterable[Path]) -> dict[str, list[str]]:
    """Files per series of GetInputOperator's layout (the folder above each is the UID)."""
    return {folder.parent.name: sorted(str(p) for p in folder.rglob("*") if p.is_file())
            for folder in folders}


class PacsFiles:
    """Where an export finds each series: the run's copy, the indexed paths, or WADO-RS."""

    def __init__(self, dicomweb: DicomWeb, cache: Path, local: dict[str, list[str]]) -> None:
        self.dicomweb = dicomweb
        self.cache = cache
        self.local = local
        self.fetched: list[str] = []

    def __call__(self, client: OpenSearch, series_index: str, uids: Iterable[str]
                 ) -> dict[str, list[str]]:
        files: dict[str, list[str]] = {}
        for uid, doc in sorted(series_sources(client, series_index, uids).items()):
            if self.local.get(uid):
                files[uid] = self.local[uid]
            elif doc.get("files") and all(Path(f).is_file() for f in doc["files"]):
                files[uid] = sorted(doc["files"])
            elif doc.get("retrieve", {}).get("dicomweb"):
                files[uid] = self._fetch(uid, doc["retrieve"]["dicomweb"])
            else:
                raise KaapanaError(f"series {uid}: its files are gone and the index does not "
                                   f"say where it is kept; index it from the PACS again")
        return files

    def _fetch(self, uid: str, url: str) -> list[str]:
        folder = self.cache / uid
        done = sorted(str(p) for p in folder.glob("*.dcm")) if folder.is_dir() else []
        if not done:
            done = sorted(str(p) for p in self.dicomweb.download(url, folder))
            self.fetched.append(uid)
            log.info("fetched", extra={"series": uid, "files": len(done)})
        return done
