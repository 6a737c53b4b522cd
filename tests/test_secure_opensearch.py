"""srcohort against an OpenSearch secured like Kaapana's: TLS with a private CA, basic auth,
Keycloak-style bearer tokens, client certificates; and ``connect``'s rules without a server.

One secured node serves the module: the security plugin makes its boot the slowest of the
suite, so every test keeps to its own index prefix instead of its own node.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthenticationException, AuthorizationException, SSLError

from srcohort.cohort.library import resolve_cohort
from srcohort.cohort.run import count_patients
from srcohort.index.connection import (DEFAULT_URL, ConnectionSettingsError, connect,
                                       resolve_url)
from srcohort.index.indexer import index_directory
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.server import FetchError
from srcohort.server.secure import READER, USER, SecureOpenSearch
from tests.plugin_opensearch import free_port

COHORT = "tavi-self-expanding"
ON_CI = os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="module")
def secure_server() -> Iterator[SecureOpenSearch]:
    """The module's secured node. Its data directory comes from ``tempfile`` because the node
    runs as an unprivileged account that could not enter pytest's private temp directory.
    Without the security plugin (no Maven, no network) it skips, except on CI, where it fails."""
    with tempfile.TemporaryDirectory(prefix="srcohort-test-secure-",
                                     ignore_cleanup_errors=True) as data_dir:
        server = SecureOpenSearch(Path(data_dir), port=free_port())
        try:
            server.start(timeout=240)
            yield server
        except FetchError as exc:
            (pytest.fail if ON_CI else pytest.skip)(f"security plugin not available: {exc}")
        finally:
            server.stop()


@pytest.fixture(scope="module")
def ca_file(secure_server: SecureOpenSearch) -> str:
    return str(secure_server.credentials.ca_file)


@pytest.fixture
def prefix() -> str:
    """Inside ``srcohort-*``: the restricted roles reach only srcohort's own indices."""
    return f"{DEFAULT_PREFIX}sec-{uuid.uuid4().hex[:8]}-"


def _basic(server: SecureOpenSearch, ca_file: str) -> OpenSearch:
    return connect(server.url, ca_certs=ca_file, username=USER,
                   password=server.credentials.password)


def _expected(consortium: Path, sites: list[str]) -> dict[str, int]:
    """The ground truth in ``count_patients``' shape: sites with matches, then the total."""
    truth = json.loads((consortium / "ground_truth.json").read_text("utf-8"))["example_cohort"]
    per_site = {site: truth["per_site"][site] for site in sorted(sites)}
    return {**{site: n for site, n in per_site.items() if n}, "total": sum(per_site.values())}


def _index_and_count(client: OpenSearch, site_dirs: list[Path], prefix: str) -> dict[str, int]:
    for site_dir in site_dirs:
        index_directory(client, site_dir / "dicom", site=site_dir.name, prefix=prefix)
    return count_patients(client, resolve_cohort(COHORT), prefix=prefix)


@pytest.mark.opensearch
def test_basic_auth_indexes_and_counts_the_cohort(secure_server: SecureOpenSearch, ca_file: str,
                                                  prefix: str, converted: Path,
                                                  small_consortium: Path) -> None:
    sites = sorted(converted.iterdir())
    counts = _index_and_count(_basic(secure_server, ca_file), sites, prefix)
    assert counts == _expected(small_consortium, [s.name for s in sites])
    assert counts["total"] > 0


@pytest.mark.opensearch
def test_keycloak_admin_token_indexes_and_counts_the_cohort(
        secure_server: SecureOpenSearch, ca_file: str, prefix: str, converted: Path,
        small_consortium: Path) -> None:
    client = connect(secure_server.url, ca_certs=ca_file,
                     token=secure_server.mint_token(["admin"]))
    sites = sorted(converted.iterdir())
    counts = _index_and_count(client, sites, prefix)
    assert counts == _expected(small_consortium, [s.name for s in sites])
    assert client.transport.perform_request(
        "GET", "/_plugins/_security/authinfo")["roles"] == ["all_access"]


@pytest.mark.opensearch
def test_reader_role_counts_but_may_not_write(secure_server: SecureOpenSearch, ca_file: str,
                                              prefix: str, converted: Path,
                                              small_consortium: Path) -> None:
    site = sorted(converted.iterdir())[0]
    _index_and_count(_basic(secure_server, ca_file), [site], prefix)
    reader = connect(secure_server.url, ca_certs=ca_file,
                     token=secure_server.mint_token([READER]))
    assert count_patients(reader, resolve_cohort(COHORT), prefix=prefix) == \
        _expected(small_consortium, [site.name])
    with pytest.raises(AuthorizationException) as refused:
        index_directory(reader, site / "dicom", site=site.name, prefix=prefix)
    assert refused.value.status_code == 403


@pytest.mark.opensearch
def test_client_certificate_authenticates_with_the_role_in_its_subject(
        secure_server: SecureOpenSearch, ca_file: str) -> None:
    credentials = secure_server.credentials
    client = connect(secure_server.url, ca_certs=ca_file, client_cert=str(credentials.client_cert),
                     client_key=str(credentials.client_key))
    info = client.transport.perform_request("GET", "/_plugins/_security/authinfo")
    assert (info["user_name"], info["roles"]) == (USER, ["srcohort_writer"])


BAD_CREDENTIALS: dict[str, Callable[[SecureOpenSearch], dict[str, str]]] = {
    "wrong password": lambda server: {"username": USER, "password": secrets.token_urlsafe(12)},
    "token signed with another key": lambda server: {"token": server.mint_token(
        ["admin"], signing_key=secrets.token_bytes(32))},
    # Past the plugin's default clock skew tolerance (30 s).
    "expired token": lambda server: {"token": server.mint_token(["admin"],
                                                                 lifetime_seconds=-120)},
    "token from another Keycloak realm": lambda server: {"token": server.mint_token(
        ["admin"], issuer="https://keycloak.invalid/auth/realms/other")},
}


@pytest.mark.opensearch
@pytest.mark.parametrize("case", sorted(BAD_CREDENTIALS))
def test_bad_credentials_are_refused_with_401(secure_server: SecureOpenSearch, ca_file: str,
                                              case: str) -> None:
    client = connect(secure_server.url, ca_certs=ca_file, **BAD_CREDENTIALS[case](secure_server))
    with pytest.raises(AuthenticationException) as failure:
        client.info()
    assert failure.value.status_code == 401
    assert "Authentication finally failed" in str(failure.value)


@pytest.mark.opensearch
def test_without_the_ca_the_server_certificate_is_not_trusted(
        secure_server: SecureOpenSearch) -> None:
    client = connect(secure_server.url, username=USER, password=secure_server.credentials.password)
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        client.info()


def _srcohort(*args: str, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "srcohort", *args, "--json"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.mark.opensearch
def test_cli_connection_flags_and_kaapana_environment(
        secure_server: SecureOpenSearch, ca_file: str, prefix: str, converted: Path,
        small_consortium: Path) -> None:
    """Index with --username and the password variable; count the same way, and with a token
    and a scheme-less $OPENSEARCH_URL as Kaapana sets it (no --url: https is implied)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("SRCOHORT_OPENSEARCH_") and k != "OPENSEARCH_URL"}
    basic_env = {**clean, "SRCOHORT_OPENSEARCH_PASSWORD": secure_server.credentials.password}
    basic_flags = ["--url", secure_server.url, "--ca-certs", ca_file, "--username", USER,
                   "--prefix", prefix]
    site = sorted(converted.iterdir())[0]
    indexed = _srcohort("index", str(site / "dicom"), "--site", site.name, *basic_flags,
                        env=basic_env)
    assert indexed["series"] > 0 and indexed["errors"] == 0
    expected = _expected(small_consortium, [site.name])
    assert _srcohort("cohort", "count", COHORT, *basic_flags, env=basic_env) == expected

    kaapana_env = {**clean, "OPENSEARCH_URL": f"127.0.0.1:{secure_server.port}",
                   "SRCOHORT_OPENSEARCH_TOKEN": secure_server.mint_token([READER])}
    assert _srcohort("cohort", "count", COHORT, "--ca-certs", ca_file, "--prefix", prefix,
                     env=kaapana_env) == expected


@pytest.mark.parametrize("given, expected", [
    ("opensearch-service.services.svc:9200", "https://opensearch-service.services.svc:9200"),
    ("opensearch-service.services.svc", "https://opensearch-service.services.svc:9200"),
    ("[::1]:9201", "https://[::1]:9201"),
    ("http://127.0.0.1:9200", "http://127.0.0.1:9200"),
    ("https://opensearch.example.org/meta-api", "https://opensearch.example.org/meta-api"),
])
def test_a_url_without_scheme_means_https(given: str, expected: str) -> None:
    assert resolve_url(given) == expected


def test_the_url_defaults_to_the_environment_then_the_local_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENSEARCH_URL", raising=False)
    assert resolve_url(None) == DEFAULT_URL
    monkeypatch.setenv("OPENSEARCH_URL", "opensearch-service.services.svc:9200")
    assert resolve_url(None) == "https://opensearch-service.services.svc:9200"
    client = connect()
    assert client.transport.get_connection().host == "https://opensearch-service.services.svc:9200"


def test_plain_http_without_credentials_needs_no_tls() -> None:
    assert connect("http://127.0.0.1:9200").transport.get_connection().host == \
        "http://127.0.0.1:9200"


def test_a_password_without_a_username_is_ignored() -> None:
    """The CLI passes $SRCOHORT_OPENSEARCH_PASSWORD whether or not --username was given."""
    connection = connect("http://127.0.0.1:9200", password="unused").transport.get_connection()
    assert "authorization" not in {key.lower() for key in connection.headers}


@pytest.mark.parametrize("kwargs, message", [
    ({"url": "https://h:9200", "username": "u", "password": "p", "token": "t"}, "not both"),
    ({"url": "https://h:9200", "username": "u"}, "no password"),
    ({"url": "http://h:9200", "token": "t"}, "clear text"),
    ({"url": "http://127.0.0.1:9200", "username": "u", "password": "p"}, "clear text"),
    ({"url": "http://h:9200", "ca_certs": __file__}, "not https"),
    ({"url": "https://h:9200", "ca_certs": "/nonexistent/ca.pem"}, "no such file"),
    ({"url": "https://h:9200", "client_key": __file__}, "without client_cert"),
    ({"url": "ftp://h"}, "not an OpenSearch URL"),
])
def test_settings_that_cannot_work_fail_before_any_request(kwargs: dict[str, str],
                                                           message: str) -> None:
    with pytest.raises(ConnectionSettingsError, match=message):
        connect(**kwargs)
