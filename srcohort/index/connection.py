"""Connecting to OpenSearch: plain, TLS with a custom CA, basic auth or a bearer token."""

from __future__ import annotations

import os
from typing import Any

from opensearchpy import OpenSearch

DEFAULT_URL = "http://127.0.0.1:9200"


def connect(url: str | None = None, *, ca_certs: str | None = None, username: str | None = None,
            password: str | None = None, token: str | None = None) -> OpenSearch:
    """A client for ``url`` (default ``$OPENSEARCH_URL`` or the local server).

    Kaapana's OpenSearch speaks TLS with its own CA and wants a Keycloak bearer token; a
    stand-alone one may use basic auth or nothing. All of it is configuration, not code paths.
    """
    url = url or os.environ.get("OPENSEARCH_URL", DEFAULT_URL)
    kwargs: dict[str, Any] = {"hosts": [url], "timeout": 60, "max_retries": 3,
                              "retry_on_timeout": True}
    if url.startswith("https"):
        kwargs.update(use_ssl=True, verify_certs=True, ca_certs=ca_certs)
    if username:
        kwargs["http_auth"] = (username, password or "")
    if token:
        kwargs["headers"] = {"Authorization": f"Bearer {token}"}
    return OpenSearch(**kwargs)
