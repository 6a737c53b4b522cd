"""Series indexed from a PACS: where to fetch them instead of which files they came from.

Kaapana keeps DICOM in its PACS; a workflow's copies live in run folders that Kaapana cleans
up. A series document indexed from such a copy therefore stores no file paths but its DICOMweb
address (the UIDs are in the document anyway), and exporting it means fetching it again
(srcohort.kaapana.files).
"""

from __future__ import annotations

from typing import Any


def series_url(dicomweb: str, study_uid: str, series_uid: str) -> str:
    return f"{dicomweb.rstrip('/')}/studies/{study_uid}/series/{series_uid}"


def locate_in_pacs(docs: dict[str, dict[str, Any]], dicomweb: str) -> None:
    """Replace the file paths of series documents by their DICOMweb address."""
    for doc in docs.values():
        doc["files"] = []
        doc["retrieve"] = {"dicomweb": series_url(dicomweb, doc["study_instance_uid"],
                                                  doc["series_instance_uid"])}
