"""Fetch and unpack the OpenSearch distribution that the local server runs.

The integ-test-zip is the smallest official OpenSearch build (core only, no plugins, no bundled
JDK) and it is published on Maven Central, the one artifact source every machine that builds
srcohort can reach. It goes into a cache outside the repository so a clean checkout stays small
and several checkouts share one copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from srcohort.logs import get_logger

log = get_logger(__name__)

DEFAULT_VERSION = "2.19.4"
# Newest first: a patch release can be withdrawn or not yet mirrored, and any 2.19.x serves.
FALLBACK_VERSIONS = ("2.19.4", "2.19.3", "2.19.2", "2.19.1")
ARTIFACT = "org.opensearch.distribution.integ-test-zip:opensearch:{version}:zip"

Fetch = Callable[[str, Path], Path]
"""``fetch(version, directory) -> zip path``; raises ``FetchError`` when the version is missing."""


class FetchError(RuntimeError):
    """One version could not be fetched; the caller may still try an older one."""


def default_cache_dir() -> Path:
    """``$SRCOHORT_CACHE``, else a per-user cache, else (as root) a system cache.

    Root's home is private (mode 0700), so the unprivileged account that runs OpenSearch for
    root could not read a distribution kept under it; ``/var/cache`` is where system services'
    caches belong anyway.
    """
    if os.environ.get("SRCOHORT_CACHE"):
        return Path(os.environ["SRCOHORT_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/srcohort")
    return Path.home() / ".cache" / "srcohort"


def candidate_versions(version: str) -> list[str]:
    """``version`` followed by the older fallbacks; an unlisted version gets no fallback."""
    if version not in FALLBACK_VERSIONS:
        return [version]
    return list(FALLBACK_VERSIONS[FALLBACK_VERSIONS.index(version):])


def fetch_with_maven(version: str, directory: Path) -> Path:
    """Copy the zip into ``directory`` via Maven, which reuses ``~/.m2`` and honours its mirrors."""
    artifact = ARTIFACT.format(version=version)
    command = ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}",
               f"-DoutputDirectory={directory}"]
    try:
        # Maven needs no project here; a temporary cwd keeps it from picking up a stray pom.xml.
        with tempfile.TemporaryDirectory() as cwd:
            done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise FetchError("mvn not found; run tools/install-system.sh") from exc
    zip_path = directory / f"opensearch-{version}.zip"
    if done.returncode != 0 or not zip_path.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise FetchError(f"maven could not fetch {artifact}:\n{tail}")
    return zip_path


def _home(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"opensearch-{version}"


def ensure_distribution(version: str = DEFAULT_VERSION, cache_dir: Path | None = None,
                        fetch: Fetch = fetch_with_maven) -> Path:
    """Return the unpacked OpenSearch home, fetching and unzipping it only the first time.

    An already unpacked candidate wins over fetching a preferred one, so later calls work
    offline and never touch Maven. ``fetch`` is a parameter so the fallback order can be tested
    without a network.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    candidates = candidate_versions(version)
    for candidate in candidates:
        home = _home(cache_dir, candidate)
        if home.is_dir():
            return home
    cache_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for candidate in candidates:
        # The zip is only a transit copy (Maven keeps its own in ~/.m2): drop it once unpacked.
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as download:
            try:
                zip_path = fetch(candidate, Path(download))
            except FetchError as exc:
                log.warning("opensearch version unavailable",
                            extra={"version": candidate, "reason": str(exc)})
                failures.append(str(exc))
                continue
            return _unpack(zip_path, _home(cache_dir, candidate))
    raise RuntimeError("no OpenSearch distribution could be fetched:\n" + "\n".join(failures))


def _unpack(zip_path: Path, home: Path) -> Path:
    """Unzip next to ``home`` and rename into place, so an interrupted run leaves no half tree
    that a later call would mistake for an installation."""
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for member in archive.infolist():
                _extract(archive, member, staging)
        try:
            (staging / home.name).rename(home)
        except OSError:
            if not home.is_dir():  # anything but a concurrent unpack that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("opensearch unpacked", extra={"home": str(home), "zip": str(zip_path)})
    return home


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
    """Extract one entry keeping its Unix mode (``zipfile`` drops it, and ``bin/opensearch``
    must stay executable), made readable for everyone: the zip's ``config/`` is private to
    its owner, yet every user of a shared cache copies it, and it holds no secrets."""
    path = Path(archive.extract(member, target))
    mode = (member.external_attr >> 16) & 0o777
    if mode:
        path.chmod(mode | (0o555 if member.is_dir() else 0o444))
