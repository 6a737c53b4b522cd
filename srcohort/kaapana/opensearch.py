"""The platform's OpenSearch, reached the way a Kaapana 0.6 pod reaches it.

Kaapana's OpenSearch answers only TLS, with a node certificate signed by the platform's CA
(the ``certificate`` Secret) that names ``node1.dns.a-record`` and nothing else
(``services/meta/opensearch/docker/init-certificates/files/generate-certificates.sh``), and it
authenticates bearer tokens from Keycloak through the token's ``opensearch`` claim
(``services/meta/opensearch/opensearch-chart/templates/configmap.yaml``).

* With the platform CA mounted (``$SRCOHORT_PLATFORM_CA``; the operators mount the optional
  Secret ``srcohort-platform-ca`` there), the certificate chain is verified and the name
  ``node1.dns.a-record`` is required of it, whatever host the URL names.
* Without it, the certificate is not verified: that is what Kaapana's own helper does
  (kaapanapy ``get_opensearch_client``: ``verify_certs=False``), since no CA reaches processing
  pods by default. The step logs that it did so; docs/kaapana.md says how to mount the CA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from opensearchpy import OpenSearch
from opensearchpy.exceptions import (AuthenticationException, AuthorizationException,
                                     ConnectionError, SSLError, TransportError)

from srcohort.index.connection import connect, resolve_url
from srcohort.kaapana.pod import Pod
from srcohort.logs import get_logger

log = get_logger(__name__)

NODE_CERTIFICATE_NAME = "node1.dns.a-record"


def opensearch_url(pod: Pod) -> str:
    """``$OPENSEARCH_URL`` (``host:port``, hence https), else kaapanapy's host and port."""
    url = pod.get("OPENSEARCH_URL")
    if not url:
        host = pod.get("OPENSEARCH_HOST") or f"opensearch-service.{pod.services_namespace}.svc"
        url = f"{host}:{pod.get('OPENSEARCH_PORT') or '9200'}"
    return resolve_url(url)


def platform_ca(pod: Pod) -> Path | None:
    """The mounted platform CA, if there is one."""
    path = pod.get("SRCOHORT_PLATFORM_CA")
    return Path(path) if path and Path(path).is_file() else None


def platform_opensearch(pod: Pod, token: Callable[[], str]) -> OpenSearch:
    """A client of the platform's OpenSearch that sends the bearer token ``token()`` returns
    (a step's refreshing ``TokenSource.token``, or the builder's request token)."""
    url = opensearch_url(pod)
    ca = platform_ca(pod)
    if ca is None:
        log.warning("platform CA not mounted: OpenSearch's certificate is not verified, as "
                    "kaapanapy's get_opensearch_client does",
                    extra={"url": url, "looked_for": pod.get("SRCOHORT_PLATFORM_CA")})
        return connect(url, token_source=token, verify_certs=False)
    return connect(url, ca_certs=str(ca), token_source=token,
                   tls_server_name=pod.get("SRCOHORT_OPENSEARCH_TLS_NAME")
                   or NODE_CERTIFICATE_NAME)


def explain(exc: TransportError, url: str, user: str, ca: Path | None) -> str:
    """One line for a failed OpenSearch request: what was refused, and what to check."""
    if isinstance(exc, SSLError):
        return (f"TLS to OpenSearch at {url} failed: the server certificate does not verify "
                f"against the platform CA {ca} as {NODE_CERTIFICATE_NAME} ({_reason(exc)})")
    if isinstance(exc, AuthenticationException):
        return (f"OpenSearch at {url} refused the bearer token of {user!r} (401): it is "
                f"expired or not issued by the platform's Keycloak")
    if isinstance(exc, AuthorizationException):
        return (f"OpenSearch at {url} denied {user!r} (403): {_reason(exc)}; srcohort's "
                f"indices of a project are open to that project's members only")
    if isinstance(exc, ConnectionError):
        return f"cannot reach OpenSearch at {url}: {_reason(exc)}"
    return f"OpenSearch at {url} answered {exc.status_code}: {_reason(exc)}"


def _reason(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type"))
    text = str(exc.error if exc.error not in (None, "N/A") else exc.info)
    return " ".join(text.split())[:300]
