"""The site's audit log: one entry per index run, count, list, export and federated release.

Each entry says when, who (``Actor``), what (``action``), on which cohort definition (name and
sha256), against which state of the index (the snapshot: document counts and the last indexing
run), what came out (the sha256 of the result) and where it went (the output path, if any).
Patient data never goes into an entry: results are recorded by digest only.

The log is a hash chain in ``<prefix>audit`` (``chain.py``), beside the indices it describes,
so every deployment (prefix) has its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from srcohort.audit.actor import ACTIONS, Actor, Clock, timestamp, utc_now
from srcohort.audit.chain import Chain, Entry
from srcohort.canonical import canonical_json
from srcohort.index.opensearch import index_names

AUDIT_INDEX = "audit"
_KEYWORD = {"type": "keyword"}
PROPERTIES = {"action": _KEYWORD, "user": _KEYWORD, "run": _KEYWORD, "prefix": _KEYWORD,
              "cohort": {"properties": {"name": _KEYWORD, "sha256": _KEYWORD}},
              "result_sha256": _KEYWORD, "output": _KEYWORD}


def audit_log(client: OpenSearch, prefix: str) -> Chain:
    return Chain(client, f"{prefix}{AUDIT_INDEX}", PROPERTIES)


def digest(result: Any) -> str:
    """sha256 of a result: bytes as they are, anything else as canonical JSON."""
    data = result if isinstance(result, bytes) else canonical_json(result).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def snapshot(client: OpenSearch, prefix: str) -> dict[str, Any]:
    """The state of the index an action read: document counts and the last indexing run."""
    counts = {}
    for kind, name in zip(("series", "patients"), index_names(prefix)):
        try:
            counts[kind] = client.count(index=name)["count"]
        except NotFoundError:
            counts[kind] = 0
    last = None
    try:
        hits = client.search(index=f"{prefix}{AUDIT_INDEX}", body={
            "size": 1, "sort": [{"seq": "desc"}], "query": {"term": {"action": "index"}},
            "_source": ["seq", "sha256", "action", "time", "user"]})["hits"]["hits"]
        last = hits[0]["_source"] if hits else None
    except NotFoundError:
        pass
    return {**counts, "last_index_run": last}


def record(client: OpenSearch, *, prefix: str, action: str, actor: Actor,
           cohort: Any = None, result: Any = None, output: Path | str | None = None,
           details: Mapping[str, Any] | None = None, clock: Clock = utc_now) -> Entry:
    """Append one audit entry; returns it (with ``seq`` and ``sha256`` to cite it by).

    ``cohort`` is a Cohort, an aggregate's ``{"name", "sha256"}`` or None; ``result`` is what
    the action produced, recorded by digest; ``details`` are small non-identifying facts
    (k, site, release number, counts of files).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r} (known: {', '.join(ACTIONS)})")
    fields: dict[str, Any] = {
        "time": timestamp(clock), "action": action, **actor.to_json(), "prefix": prefix,
        "cohort": _cohort(cohort),
        "snapshot": snapshot(client, prefix),
        "result_sha256": digest(result) if result is not None else None,
        "output": str(output) if output is not None else None,
        "details": dict(details or {})}
    return audit_log(client, prefix).append(fields)


def _cohort(cohort: Any) -> dict[str, str] | None:
    if cohort is None:
        return None
    if isinstance(cohort, Mapping):
        return {"name": cohort["name"], "sha256": cohort["sha256"]}
    return {"name": cohort.name, "sha256": cohort.digest}


def reference(entry: Mapping[str, Any]) -> dict[str, Any]:
    """How another record cites an entry: position, digest, action and time."""
    return {key: entry[key] for key in ("seq", "sha256", "action", "time")}


def line(entry: Mapping[str, Any]) -> str:
    """One entry as a line of ``srcohort audit``: position, time, user, action (and a release's
    state), cohort, result digest (shortened) and output."""
    cohort = (entry.get("cohort") or {}).get("name") or "-"
    state = (entry.get("details") or {}).get("state")
    action = entry["action"] + (f"/{state}" if state else "")
    return (f"{entry['seq']:>6}  {entry['time']}  {entry['user']:<12}  {action:<16}  "
            f"{cohort:<28}  {(entry.get('result_sha256') or '-')[:12]:<12}  "
            f"{entry.get('output') or '-'}")


def parse_time(text: str) -> dt.datetime:
    """An ISO date or date-time; a bare date or naive time is taken as UTC."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def select(entries: Iterable[Mapping[str, Any]], *, actions: Sequence[str] = (),
           user: str | None = None, cohort: str | None = None, since: dt.datetime | None = None,
           until: dt.datetime | None = None) -> list[Mapping[str, Any]]:
    """The entries that pass every given filter. ``cohort`` matches a definition's name or the
    start of its sha256; ``since`` is inclusive, ``until`` exclusive."""
    chosen = []
    for entry in entries:
        named = entry.get("cohort") or {}
        when = parse_time(entry["time"])
        if ((actions and entry.get("action") not in actions)
                or (user is not None and entry.get("user") != user)
                or (cohort is not None and cohort != named.get("name")
                    and not str(named.get("sha256", "")).startswith(cohort))
                or (since is not None and when < since)
                or (until is not None and when >= until)):
            continue
        chosen.append(entry)
    return chosen
