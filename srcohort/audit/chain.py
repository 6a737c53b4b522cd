"""An append-only, hash-chained log kept in one OpenSearch index.

Both the audit log (who counted, listed, exported or released what) and the federated release
ledger are such logs. Each entry carries its position ``seq`` (1, 2, ...), the sha256 of the
entry before it (``prev``) and its own sha256 over everything else (``sha256``), and is written
with ``op_type=create`` under the document id ``seq``: srcohort never overwrites an entry, and two
writers that race for the same position get a conflict instead of one silently replacing the
other (the loser re-reads the head and appends after it).

What the chain detects when it is read back (``verify``): an entry edited in place (its digest no
longer matches), an entry removed from the middle (a gap in ``seq``, or a ``prev`` that no longer
matches), entries reordered. What it cannot detect on its own: the newest entries removed from
the end, or every entry from an edit onwards rewritten by someone who recomputes the digests.
An operator anchors the head outside OpenSearch to catch those (docs/federated.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConflictError, NotFoundError, RequestError

from srcohort.canonical import canonical_json

Entry = dict[str, Any]
GENESIS = "0" * 64              # ``prev`` of the first entry
CHAIN_FIELDS = ("seq", "prev", "sha256")
MAX_RACES = 20                  # appends lost to concurrent writers before giving up
ID_DIGITS = 12                  # document ids sort like the sequence numbers


class ChainError(RuntimeError):
    """The log is damaged: some entry was edited, removed or reordered."""


class ChainMoved(RuntimeError):
    """Another writer appended after the entry an append was conditioned on."""


def entry_digest(entry: Mapping[str, Any]) -> str:
    """sha256 of the entry's canonical JSON without its own digest."""
    body = {key: value for key, value in entry.items() if key != "sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def chained(fields: Mapping[str, Any], head: Mapping[str, Any] | None) -> Entry:
    """The entry that follows ``head`` (None: the first), digest included."""
    if set(CHAIN_FIELDS) & set(fields):
        raise ValueError(f"entry fields may not set {CHAIN_FIELDS}")
    entry: Entry = {**fields, "seq": (head["seq"] + 1) if head else 1,
                    "prev": head["sha256"] if head else GENESIS}
    entry["sha256"] = entry_digest(entry)
    return entry


def verify(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Everything wrong with a log read back in ``seq`` order (empty: intact)."""
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    for entry in entries:
        seq = entry.get("seq")
        if seq != expected_seq:
            problems.append(f"entry {seq}: expected entry {expected_seq} here (an entry was "
                            f"removed or the order changed)")
        if entry.get("prev") != prev:
            problems.append(f"entry {seq}: does not follow the entry before it (prev mismatch)")
        if entry.get("sha256") != entry_digest(entry):
            problems.append(f"entry {seq}: altered after it was written (digest mismatch)")
        expected_seq = (seq + 1) if isinstance(seq, int) else expected_seq + 1
        prev = entry.get("sha256")
    return problems


def index_body(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A chain index: the chain fields and ``properties`` searchable, the rest only stored.

    One shard keeps ``seq`` order cheap; a replica appears as soon as a second node does, since
    losing this index loses the record of what left the site.
    """
    keyword = {"type": "keyword"}
    return {"settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
            "mappings": {"dynamic": False, "properties": {
                "seq": {"type": "long"}, "prev": keyword, "sha256": keyword,
                "time": {"type": "date"}, **properties}}}


@dataclass(frozen=True)
class Chain:
    """One hash-chained log in the index ``index``."""

    client: OpenSearch
    index: str
    properties: Mapping[str, Any]

    def _create(self) -> None:
        """Create the index (with its mapping, before any entry could create it without one).
        Needs only the right to create this index: no "exists" check, which a role allowed to
        append but not to administer would be refused."""
        try:
            self.client.indices.create(index=self.index, body=index_body(self.properties))
        except RequestError as error:     # created by a concurrent writer in the meantime
            if "resource_already_exists" not in str(error):
                raise

    def _newest(self) -> Entry | None:
        hits = self.client.search(index=self.index, body={
            "size": 1, "sort": [{"seq": "desc"}], "query": {"match_all": {}}})["hits"]["hits"]
        return hits[0]["_source"] if hits else None

    def head(self) -> Entry | None:
        """The newest entry, or None for an empty (or missing) log."""
        try:
            return self._newest()
        except NotFoundError:
            return None

    def append(self, fields: Mapping[str, Any], *, after: int | None = None) -> Entry:
        """Write ``fields`` as the next entry; returns it with ``seq``, ``prev`` and ``sha256``.

        With ``after``, only directly after the entry at that position (0: into an empty log):
        ChainMoved when another writer got there first, so a decision taken on the log as it
        was read is never recorded after entries it did not see."""
        for _ in range(MAX_RACES):
            try:
                head = self._newest()
            except NotFoundError:
                self._create()
                head = None
            if after is not None and (head["seq"] if head else 0) != after:
                raise ChainMoved(f"{self.index}: entries were added after entry {after}")
            entry = chained(fields, head)
            try:
                self.client.index(index=self.index, id=str(entry["seq"]).zfill(ID_DIGITS),
                                  body=entry, op_type="create", refresh="true")
                return entry
            except ConflictError:        # another writer took this position first
                continue
        raise ChainError(f"{self.index}: could not append after {MAX_RACES} concurrent writes")

    def entries(self) -> list[Entry]:
        """Every entry in ``seq`` order, unverified."""
        try:
            hits = helpers.scan(self.client, index=self.index, preserve_order=True,
                                query={"query": {"match_all": {}}, "sort": [{"seq": "asc"}]})
            return [hit["_source"] for hit in hits]
        except NotFoundError:
            return []

    def verified(self) -> list[Entry]:
        """Every entry in ``seq`` order; raises ChainError naming what is wrong."""
        entries = self.entries()
        if problems := verify(entries):
            raise ChainError(f"{self.index} is damaged: " + "; ".join(problems[:5])
                             + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        return entries
