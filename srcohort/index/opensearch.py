"""The OpenSearch edge: srcohort's indices and bulk writes.

Everything above this module works on plain documents; only here (and in ``connection``) does
the client appear.

Bulk writes are tuned for loads of a whole archive (docs/scaling.md has the numbers): documents
are serialised with orjson, packed into requests by size rather than by count, and two
requests are in flight at once, so the node's write threads stay busy while the next request is
packed. ``opensearchpy.helpers.parallel_bulk`` would give the threads but serialises every
action with the standard library and never retries a rejected request, which is what a busy
node answers.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from srcohort.index.mapping import (DEFAULT_PREFIX, PATIENTS_INDEX, SERIES_INDEX, check_prefix,
                                    patients_index_body, series_index_body)
from srcohort.logs import get_logger

log = get_logger(__name__)

# Requests of a few MB amortise the per-request cost. On a 2-core node 2 and 8 MB, with 2 to 4
# requests in flight, all wrote 17-19k series documents/s (docs/scaling.md); the smaller size
# costs the node less memory per request and resends less after a rejection. The count cap
# bounds the size of the answer.
CHUNK_BYTES = 2 * 1024 * 1024
CHUNK_DOCS = 10_000
# A shard runs one request per write thread (as many as the node has cores); one request per
# thread in flight keeps them busy while this process packs the next.
THREADS = 2
# Above this many documents, refreshes and replica copies during the load cost more than the
# two settings updates that switch them off and on again.
LOAD_MODE_DOCS = 20_000
RETRY_STATUS = frozenset({429, 502, 503, 504})
MAX_RETRIES = 5
INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# Only what tells success from failure: the full per-item answer is larger than the request.
_FILTER_PATH = "errors,items.*.status,items.*.error"

Line = tuple[str, bytes]
"""A document id and its two NDJSON lines (action and source)."""


def index_names(prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    check_prefix(prefix)
    return f"{prefix}{SERIES_INDEX}", f"{prefix}{PATIENTS_INDEX}"


def ensure_indices(client: OpenSearch, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """Create srcohort's indices if missing; existing ones get the fields added to the
    mapping since they were made (the patients index is strict: a new field would be refused).
    Kaapana's indices are never touched."""
    series, patients = index_names(prefix)
    for name, body in ((series, series_index_body()), (patients, patients_index_body())):
        if not client.indices.exists(index=name):
            client.indices.create(index=name, body=body)
            log.info("index created", extra={"index": name})
        else:
            client.indices.put_mapping(index=name, body={
                "properties": body["mappings"]["properties"]})
    return series, patients


def nested_objects(doc: Any, properties: dict[str, Any]) -> int:
    """How many nested objects (hidden Lucene documents) ``doc`` makes under ``properties``:
    what OpenSearch counts against ``index.mapping.nested_objects.limit``."""
    count = 0
    for name, field in properties.items():
        value = doc.get(name) if isinstance(doc, dict) else None
        if value is None or "properties" not in field:
            continue
        items = value if isinstance(value, list) else [value]
        if field.get("type") == "nested":
            count += len(items)
        count += sum(nested_objects(item, field["properties"]) for item in items)
    return count


def make_room(client: OpenSearch, index: str, docs: Iterable[dict],
              properties: dict[str, Any]) -> None:
    """Raise the index's nested-object limit to what the largest of ``docs`` needs, so a
    patient with very many annotations is indexed completely instead of refused by the node
    (the limit is a dynamic setting; it guards memory, and srcohort's documents are bounded
    by what a site holds for one patient)."""
    need = max((nested_objects(doc, properties) for doc in docs), default=0)
    found = client.indices.get_settings(index=index, name="index.mapping.nested_objects.limit",
                                        flat_settings=True, include_defaults=True)
    settings = next(iter(found.values()))
    limit = int({**settings.get("defaults", {}), **settings.get("settings", {})}
                .get("index.mapping.nested_objects.limit", 10000))
    if need > limit:
        client.indices.put_settings(index=index,
                                    body={"index.mapping.nested_objects.limit": need})
        log.info("nested object limit raised", extra={"index": index, "from": limit,
                                                      "to": need})


def bulk_index(client: OpenSearch, index: str, docs: Iterable[tuple[str, dict]]) -> int:
    """Index ``(id, document)`` pairs; retries with backoff on 429s and 5xx, raises on other
    errors with the ids that failed, after every other document was written.

    Ids come from DICOM UIDs, so writing the same documents again replaces them in place. A
    load of more than ``LOAD_MODE_DOCS`` documents runs with refreshes and replicas off
    (``BulkLoad``); as before, callers refresh when they need the documents searchable at once.
    """
    written = 0
    failed: list[dict[str, Any]] = []
    queued = 0
    # The pool is left (every request answered) before the load mode is: settings come back
    # only once nothing of this load is still being written.
    with BulkLoad(client, index) as load, \
            ThreadPoolExecutor(THREADS, thread_name_prefix="bulk") as pool:
        pending: deque[Future[tuple[int, list[dict[str, Any]]]]] = deque()

        def collect(future: Future[tuple[int, list[dict[str, Any]]]]) -> None:
            nonlocal written
            ok, errors = future.result()
            written += ok
            failed.extend(errors)

        for chunk in _chunks(docs, _serializer(client)):
            queued += len(chunk)
            if queued > LOAD_MODE_DOCS:
                load.start()
            pending.append(pool.submit(_send, client, index, chunk))
            while len(pending) > THREADS:      # at most THREADS + 1 packed requests in memory
                collect(pending.popleft())
        while pending:
            collect(pending.popleft())
    if failed:
        ids = [error["_id"] for error in failed]
        raise RuntimeError(f"{len(failed)} documents failed to index into {index}: ids "
                           f"{ids[:20]}{' ...' if len(ids) > 20 else ''}; first errors "
                           f"{failed[:3]}")
    return written


class BulkLoad:
    """Refresh off and replicas 0 while a large load runs, the previous values back after.

    A refresh every second makes a new segment that merging must fold in again, and a replica
    indexes every document a second time; neither is needed before the load is complete.
    ``start`` is idempotent and switches only what is on: an index whose refresh is already
    off (another load in progress, or one that died) or that has no replicas is left as it is,
    so two concurrent loads never restore each other's "off" values as the index's own.
    """

    def __init__(self, client: OpenSearch, index: str) -> None:
        self.client = client
        self.index = index
        self.restore: dict[str, Any] | None = None

    def start(self) -> None:
        if self.restore is not None:
            return
        found = self.client.indices.get_settings(index=self.index, flat_settings=True)
        current = next(iter(found.values()))["settings"]     # also when index is an alias
        refresh = current.get("index.refresh_interval")      # None: the default, 1s
        replicas = current.get("index.number_of_replicas", "0")
        self.restore, load = {}, {}
        if refresh == "-1":
            log.warning("refresh already off; left as it is",
                        extra={"index": self.index})
        else:
            self.restore["index.refresh_interval"], load["index.refresh_interval"] = refresh, "-1"
        if replicas != "0":
            self.restore["index.number_of_replicas"] = replicas
            load["index.number_of_replicas"] = 0
        if load:
            self.client.indices.put_settings(index=self.index, body=load)
            log.info("bulk load mode on", extra={"index": self.index, "restore": self.restore})

    def __enter__(self) -> BulkLoad:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.restore:
            self.client.indices.put_settings(index=self.index, body=self.restore)
            log.info("bulk load mode off", extra={"index": self.index, "restored": self.restore})
        self.restore = None


def _serializer(client: OpenSearch) -> Callable[[dict], bytes]:
    """orjson (several times faster than ``json``) with the client's own fallback for types
    JSON lacks (dates, Decimal, numpy), so documents serialise as they did through the client.
    orjson refuses float subclasses such as pydicom's ``DSfloat``, which ``json`` accepted."""
    fallback = client.transport.serializer.default

    def default(value: Any) -> Any:
        return float(value) if isinstance(value, float) else fallback(value)

    return lambda doc: orjson.dumps(doc, default=default)


def _chunks(docs: Iterable[tuple[str, dict]], serialize: Callable[[dict], bytes]
            ) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    size = 0
    for doc_id, doc in docs:
        line = b'{"index":{"_id":%s}}\n%s\n' % (orjson.dumps(doc_id), serialize(doc))
        if chunk and (size + len(line) > CHUNK_BYTES or len(chunk) >= CHUNK_DOCS):
            yield chunk
            chunk, size = [], 0
        chunk.append((doc_id, line))
        size += len(line)
    if chunk:
        yield chunk


def _send(client: OpenSearch, index: str, chunk: list[Line]) -> tuple[int, list[dict[str, Any]]]:
    """Write one request; resend what the node rejected for load (429, 5xx) with backoff.

    Returns the number written and the failures that retrying cannot fix (mapping errors,
    documents over a limit, or still rejected after ``MAX_RETRIES``), each with its ``_id``.
    """
    written = 0
    failed: list[dict[str, Any]] = []
    delay = INITIAL_BACKOFF
    attempt = 0
    while True:
        final = attempt == MAX_RETRIES
        try:
            response = client.bulk(index=index, body=b"".join(line for _, line in chunk),
                                   filter_path=_FILTER_PATH)
        except TransportError as exc:
            if final or not (isinstance(exc, OpenSearchConnectionError)
                             or exc.status_code in RETRY_STATUS):
                raise
            log.warning("bulk request rejected, retrying",
                        extra={"index": index, "status": exc.status_code, "seconds": delay})
        else:
            if not response.get("errors"):
                return written + len(chunk), failed
            retry: list[Line] = []
            for (doc_id, line), item in zip(chunk, response["items"]):
                result = next(iter(item.values()))
                if result["status"] < 300:
                    written += 1
                elif result["status"] in RETRY_STATUS and not final:
                    retry.append((doc_id, line))
                else:
                    failed.append({"_id": doc_id, "status": result["status"],
                                   "error": result.get("error")})
            if not retry:
                return written, failed
            log.warning("bulk items rejected, retrying",
                        extra={"index": index, "documents": len(retry), "seconds": delay})
            chunk = retry
        time.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)
        attempt += 1
