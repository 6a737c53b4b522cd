"""Pytest fixtures for one real OpenSearch per test session.

Booting a JVM takes seconds, so every test shares one node and keeps apart from the others by
index name prefix. ``$SRCOHORT_TEST_OPENSEARCH_URL`` points the tests at an existing server
instead (for machines without Java, or to test against a Kaapana-like cluster).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from opensearchpy import OpenSearch

from srcohort.server import LocalOpenSearch

EXTERNAL_URL_ENV = "SRCOHORT_TEST_OPENSEARCH_URL"


def free_port() -> int:
    """A port nothing listens on now; the tests' servers must not collide with anyone's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def opensearch_server(request: pytest.FixtureRequest) -> LocalOpenSearch:
    """The session's node, on a free port so it never collides with a developer's server.

    Its data directory is made with ``tempfile`` rather than ``tmp_path_factory``: pytest's
    base temp directory is private to the user, and as root the node runs as an unprivileged
    account that could not enter it.
    """
    if os.environ.get(EXTERNAL_URL_ENV):
        pytest.skip(f"${EXTERNAL_URL_ENV} is set: no local server is started")
    data_dir = Path(tempfile.mkdtemp(prefix="srcohort-test-opensearch-"))
    server = LocalOpenSearch(data_dir, port=free_port())

    def shut_down() -> None:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    request.addfinalizer(shut_down)
    server.start()
    return server


@pytest.fixture(scope="session")
def opensearch_url(request: pytest.FixtureRequest) -> str:
    """Base URL of the session's server (or of ``$SRCOHORT_TEST_OPENSEARCH_URL``)."""
    return os.environ.get(EXTERNAL_URL_ENV) or request.getfixturevalue("opensearch_server").url


@pytest.fixture(scope="session")
def opensearch_client(opensearch_url: str) -> OpenSearch:
    return OpenSearch(hosts=[opensearch_url], timeout=60)


@pytest.fixture
def index_prefix(opensearch_client: OpenSearch) -> Iterator[str]:
    """A prefix no other test uses; its indices are deleted afterwards, which matters most on a
    shared external server."""
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    yield prefix
    opensearch_client.indices.delete(index=f"{prefix}*", ignore_unavailable=True)
