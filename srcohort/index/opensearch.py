"""The OpenSearch edge: srcohort's indices and bulk writes.

Everything above this module works on plain documents; only here (and in ``connection``) does
the client appear.
"""

from __future__ import annotations

from typing import Iterable

from opensearchpy import OpenSearch, helpers

from srcohort.index.mapping import (DEFAULT_PREFIX, PATIENTS_INDEX, SERIES_INDEX,
                                    patients_index_body, series_index_body)
from srcohort.logs import get_logger

log = get_logger(__name__)


def index_names(prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    return f"{prefix}{SERIES_INDEX}", f"{prefix}{PATIENTS_INDEX}"


def ensure_indices(client: OpenSearch, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """Create srcohort's indices if missing; existing ones (and Kaapana's) are left alone."""
    series, patients = index_names(prefix)
    for name, body in ((series, series_index_body()), (patients, patients_index_body())):
        if not client.indices.exists(index=name):
            client.indices.create(index=name, body=body)
            log.info("index created", extra={"index": name})
    return series, patients


def bulk_index(client: OpenSearch, index: str, docs: Iterable[tuple[str, dict]]) -> int:
    """Index ``(id, document)`` pairs; retries with backoff on 429s, raises on other errors.

    Ids come from DICOM UIDs, so writing the same documents again replaces them in place.
    """
    actions = ({"_op_type": "index", "_index": index, "_id": doc_id, "_source": doc}
               for doc_id, doc in docs)
    count = 0
    errors = []
    for ok, info in helpers.streaming_bulk(client, actions, chunk_size=500, max_retries=5,
                                           initial_backoff=1, max_backoff=30,
                                           raise_on_error=False):
        count += ok
        if not ok:
            errors.append(info)
    if errors:
        raise RuntimeError(f"{len(errors)} documents failed to index into {index}: {errors[:3]}")
    return count
