"""Connecting to OpenSearch: plain, TLS with a custom CA, basic auth, a bearer token or a
client certificate.

Kaapana's OpenSearch speaks TLS with Kaapana's own CA and wants a Keycloak bearer token; a
stand-alone one may use basic auth, a client certificate, or nothing. All of it is
configuration, not code paths: every caller (CLI, operators, demo) goes through ``connect``.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from opensearchpy import OpenSearch, Urllib3HttpConnection

DEFAULT_URL = "http://127.0.0.1:9200"
DEFAULT_PORT = 9200


class ConnectionSettingsError(ValueError):
    """Connection settings that cannot work, found before any request is sent."""


def resolve_url(url: str | None = None) -> str:
    """``url`` (default ``$OPENSEARCH_URL``, else the local server) with its scheme spelled out.

    Kaapana hands its containers ``OPENSEARCH_URL`` as ``host:port``
    (``opensearch-service.services.svc:9200``), and that OpenSearch answers only TLS. So a URL
    without a scheme means **https** (port 9200 unless given): guessing http would put the
    bearer token on the wire in clear text, only to get a TLS error back. Plain http is
    taken only when the URL says ``http://``, as the local server's default does.
    """
    url = (url or os.environ.get("OPENSEARCH_URL") or DEFAULT_URL).strip()
    if "://" not in url:
        bare = urllib.parse.urlsplit(f"//{url}")
        url = f"https://{bare.netloc}" + ("" if bare.port else f":{DEFAULT_PORT}") + bare.path
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectionSettingsError(f"not an OpenSearch URL: {url!r} "
                                      "(want [https://]host[:port])")
    return url


class BearerConnection(Urllib3HttpConnection):
    """A connection that asks ``token_source`` for the bearer token on every request, so a
    client outlives its tokens (Kaapana's Keycloak tokens last minutes; an export, hours)."""

    def __init__(self, *args: Any, token_source: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token_source = token_source

    def perform_request(self, method: str, url: str, params: Any = None, body: Any = None,
                        timeout: Any = None, ignore: Any = (), headers: Any = None) -> Any:
        headers = {**(headers or {}), "Authorization": f"Bearer {self._token_source()}"}
        return super().perform_request(method, url, params, body, timeout=timeout,
                                       ignore=ignore, headers=headers)


def connect(url: str | None = None, *, ca_certs: str | None = None, username: str | None = None,
            password: str | None = None, token: str | None = None,
            client_cert: str | None = None, client_key: str | None = None,
            token_source: Callable[[], str] | None = None, verify_certs: bool = True,
            tls_server_name: str | None = None) -> OpenSearch:
    """A client for ``url`` (see ``resolve_url``); https verifies the server certificate
    unless ``verify_certs`` is False.

    ``ca_certs`` is the CA bundle to trust (Kaapana's CA); without it the public CAs (certifi)
    are used. Authenticate with ``username`` + ``password`` (basic auth), ``token`` (sent as
    ``Authorization: Bearer``), and/or a client certificate (``client_cert``, ``client_key``
    unless the key is inside the cert file). ``password`` alone is ignored, because callers
    pass ``$SRCOHORT_OPENSEARCH_PASSWORD`` whether or not a user was named. ``token_source``
    is called for a fresh bearer token per request (srcohort.kaapana.auth).
    ``tls_server_name`` is the name the server certificate must carry when it is not the URL's
    host (Kaapana's node certificate names ``node1.dns.a-record``). ``verify_certs=False`` is
    what Kaapana's own helper does; srcohort.kaapana.opensearch uses it only without a CA.

    Settings that cannot work raise ``ConnectionSettingsError`` here, before any request: both
    a user and a token, a user without a password, credentials or TLS files for an http URL,
    a file that does not exist.
    """
    url = resolve_url(url)
    https = url.startswith("https://")
    tls_files = {name: path for name, path in (("ca_certs", ca_certs),
                                               ("client_cert", client_cert),
                                               ("client_key", client_key)) if path}
    problem = _contradiction(url, https, username, password, token or token_source, tls_files)
    if problem:
        raise ConnectionSettingsError(problem)
    kwargs: dict[str, Any] = {"hosts": [url], "timeout": 60, "max_retries": 3,
                              "retry_on_timeout": True}
    if https:
        kwargs.update(use_ssl=True, verify_certs=verify_certs, **tls_files)
        if not verify_certs:
            kwargs.update(ssl_assert_hostname=False, ssl_show_warn=False)
        elif tls_server_name:
            kwargs["ssl_assert_hostname"] = tls_server_name
    if username:
        kwargs["http_auth"] = (username, password)
    if token:
        kwargs["headers"] = {"Authorization": f"Bearer {token.strip()}"}
    if token_source is not None:
        kwargs.update(connection_class=BearerConnection, token_source=token_source)
    return OpenSearch(**kwargs)


def _contradiction(url: str, https: bool, username: str | None, password: str | None,
                   token: object, tls_files: dict[str, str]) -> str | None:
    """Why these settings cannot work, or ``None``."""
    if username and token:
        return "give either a username (basic auth) or a bearer token, not both"
    if username and not password:
        return f"no password given for OpenSearch user {username!r}"
    if (username or token) and not https:
        return f"refusing to send credentials in clear text to {url}: use https://"
    if tls_files and not https:
        return f"{', '.join(tls_files)} given, but {url} is not https"
    missing = [f"{name} {path}" for name, path in tls_files.items() if not Path(path).is_file()]
    if missing:
        return f"no such file: {', '.join(missing)}"
    if "client_key" in tls_files and "client_cert" not in tls_files:
        return "client_key given without client_cert"
    return None
