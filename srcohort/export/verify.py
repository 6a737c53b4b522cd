"""The last step of every export: prove that nothing identifying is in it.

The identifying values are gathered per patient from the sources the export was made from
(the DICOM headers of every exported series, and the index documents: patient id, dates), then
every exported file is scanned for them (``phi_scan``). A finding fails the export, which then
never gets its COMPLETE marker.

Dates need care: a patient's shifted date may by chance equal another patient's real date.
So a file that belongs to one patient (its pseudonym names the file or a folder above it) is
checked against every patient's names, ids and UIDs but only its own patient's dates; files
shared by all patients (tables, manifests, the card) hold no shifted dates and are checked
against all values.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Iterable, Iterator, Mapping, Sequence

import pydicom
from pydicom.dataset import Dataset

from srcohort.export.phi_scan import PhiFinding, kind_of, phi_values, scan_file
from srcohort.logs import get_logger
from srcohort.parallel import fork_map

log = get_logger(__name__)
_DATE = re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}")


@dataclass(frozen=True)
class Subject:
    """One exported patient: its index document and the source files its export came from."""

    patient: dict
    sources: Sequence[str]


class PhiFound(RuntimeError):
    """Identifying values of the sources were found in the export."""

    def __init__(self, root: Path, findings: Sequence[PhiFinding]) -> None:
        self.findings = list(findings)
        where = sorted({f"{Path(f.path).relative_to(root)} ({f.where}: {kind_of(f.value)} of "
                        f"the sources, {f.value!r})" for f in findings})
        super().__init__(f"{root}: {len(findings)} identifying value(s) of the sources found in "
                         f"{', '.join(where[:5])}{' ...' if len(where) > 5 else ''}; "
                         "the export is not marked complete")


def verify_export(root: Path, subjects: Mapping[str, Subject]) -> None:
    """Raise ``PhiFound`` when a source value appears under ``root``; ``subjects`` by pseudonym."""
    with fork_map(_subject_values, list(subjects.values())) as values:
        own = dict(zip(subjects, values))
    findings = scan_per_patient(root, own)
    if findings:
        raise PhiFound(root, findings)


def scan_per_patient(root: Path, own: Mapping[str, AbstractSet[str]]) -> list[PhiFinding]:
    """Every file under ``root`` scanned for the identifying values ``own`` gives per
    pseudonym: names, ids and UIDs of every patient, dates only of the file's own patient (a
    file named after, or filed below, its pseudonym) and of every patient in shared files."""
    everything = frozenset().union(*own.values())    # built and hashed once for all files

    def scan(path: Path) -> list[PhiFinding]:   # one matcher for all values; dates per file
        alias = _owner(path.relative_to(root), own)
        return [f for f in scan_file(path, everything)
                if alias is None or not _DATE.fullmatch(f.value) or f.value in own[alias]]

    files = sorted(p for p in root.rglob("*") if p.is_file())
    with fork_map(scan, files, chunksize=16) as results:
        findings = [finding for found in results for finding in found]
    log.info("export verified", extra={"files": len(files), "values_checked": len(everything),
                                       "findings": len(findings)})
    return findings


def _subject_values(subject: Subject) -> set[str]:
    return phi_values(_headers(subject.sources)) | phi_values(_document_datasets(subject.patient))


def _owner(rel: Path, aliases: Mapping[str, object]) -> str | None:
    """The pseudonym a file belongs to: a folder or the file's stem named after it."""
    stem = rel.name.split(".")[0]
    return next((part for part in (*rel.parts[:-1], stem) if part in aliases), None)


def _headers(paths: Iterable[str]) -> Iterator[Dataset]:
    for path in paths:
        yield pydicom.dcmread(path, stop_before_pixels=True)


def _document_datasets(patient: dict) -> Iterator[Dataset]:
    """The index document's identifying values as a dataset per value, so one rule
    (``phi_values``) decides what counts as identifying for both sources."""
    ds = Dataset()
    ds.PatientID = patient["patient_id"]
    yield ds
    dates = [*patient.get("events", {}).values(),
             *(s.get("study_date") for s in patient.get("series", [])),
             *(d.get("value") for a in patient.get("annotations", []) for d in a.get("dates", []))]
    for value in sorted({str(d)[:10] for d in dates if d}):
        ds = Dataset()
        ds.StudyDate = dt.date.fromisoformat(value).strftime("%Y%m%d")
        yield ds
