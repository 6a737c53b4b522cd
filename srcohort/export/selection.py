"""Which of a patient's objects make up its training sample, and where their files are.

A training pipeline wants one CT, one ECG and the CT's segmentations per patient. Several of a
kind are common (a follow-up CT, a pre- and post-procedure ECG), so the rule is fixed and
documented rather than left to file order: the latest series on or before the anchor event
(the procedure whose outcome a model predicts: what it may see), else the earliest after it,
else, with no event, the latest; ties broken by Series Instance UID. Segmentations are those whose SEG
references the chosen CT series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from opensearchpy import OpenSearch, helpers

Document = dict[str, Any]


@dataclass(frozen=True)
class Sample:
    """Series Instance UIDs of a patient's training sample."""

    ct: str | None
    ecg: str | None
    segs: tuple[str, ...] = field(default=())

    @property
    def series(self) -> set[str]:
        return {uid for uid in (self.ct, self.ecg, *self.segs) if uid}


def sample_rank(item: Document, anchor: str, uid_key: str = "series_instance_uid") -> tuple:
    """Sort key of the rule above for a series or an annotation (smallest is chosen): both
    carry ``days_from`` and ``study_date`` from the patient roll-up."""
    offset = item.get("days_from", {}).get(anchor)
    uid = item.get(uid_key, "")
    if offset is None:
        date = int((item.get("study_date") or "0").replace("-", ""))
        return (2, -date, uid)                                  # the latest first
    return (0, -offset, uid) if offset <= 0 else (1, offset, uid)


def choose_series(series: Sequence[Document], modality: str, anchor: str) -> str | None:
    candidates = [s for s in series if s.get("modality") == modality]
    if not candidates:
        return None
    return min(candidates, key=lambda s: sample_rank(s, anchor))["series_instance_uid"]


def choose_sample(patient: Document, *, anchor: str) -> Sample:
    """The sample of a patient document (patients index) by the rule above."""
    ct = choose_series(patient.get("series", []), "CT", anchor)
    ecg = choose_series(patient.get("series", []), "ECG", anchor)
    segs = sorted({a["series_instance_uid"] for a in patient.get("annotations", [])
                   if a.get("kind") == "SEG" and ct in a.get("referenced_series", [])})
    return Sample(ct, ecg, tuple(segs))


FileLocator = Callable[[OpenSearch, str, Iterable[str]], dict[str, list[str]]]
"""Where the files of series are: ``(client, series index, uids) -> {uid: [paths]}``."""


def series_sources(client: OpenSearch, series_index: str, uids: Iterable[str]
                   ) -> dict[str, Document]:
    """``files`` and ``retrieve`` (srcohort.index.retrieve) of each series, one request."""
    wanted = sorted(set(uids))
    if not wanted:
        return {}
    found = client.mget(index=series_index, body={"ids": wanted},
                        _source_includes=["files", "retrieve"])
    docs = {doc["_id"]: doc["_source"] for doc in found["docs"] if doc.get("found")}
    missing = [uid for uid in wanted if uid not in docs]
    if missing:
        raise LookupError(f"series {', '.join(missing)} are in the patients index but not in "
                          f"{series_index}: re-index the site")
    return docs


def series_files(client: OpenSearch, series_index: str, uids: Iterable[str]
                 ) -> dict[str, list[str]]:
    """File paths per series, from the series index (documents are keyed by the series UID).

    The default ``FileLocator``; a series indexed from a PACS has no paths and is refused
    here (srcohort.kaapana.files fetches those).
    """
    docs = series_sources(client, series_index, uids)
    in_pacs = [uid for uid, doc in sorted(docs.items())
               if not doc.get("files") and doc.get("retrieve")]
    if in_pacs:
        raise LookupError(f"series {', '.join(in_pacs[:5])} are kept in a PACS, not in files: "
                          f"export them with Kaapana's srcohort-export workflow")
    return {uid: sorted(doc["files"]) for uid, doc in docs.items()}


def patient_series(client: OpenSearch, series_index: str, patient_key: str) -> list[Document]:
    """All series documents of one patient, ordered by modality and UID (stable export paths)."""
    hits = helpers.scan(client, index=series_index,
                        query={"query": {"term": {"patient_key": patient_key}}})
    return sorted((hit["_source"] for hit in hits),
                  key=lambda d: (d["modality"], d["series_instance_uid"]))
