"""Run a single-node OpenSearch on 127.0.0.1 for the demo, the benchmarks and the tests.

All state of one server lives in its ``data_dir`` (config copy, data, logs, pid file), so the CLI
can start it in one process and stop or inspect it from another, and test sessions never share
state with a developer's server.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from srcohort.logs import get_logger
from srcohort.server.distribution import DEFAULT_VERSION, ensure_distribution

log = get_logger(__name__)

CLUSTER_NAME = "srcohort"
SERVICE_USER = "srcohort-os"
STOP_GRACE_SECONDS = 30.0
LOG_TAIL_LINES = 40


def default_data_dir() -> Path:
    """``$SRCOHORT_HOME/opensearch``, else per-user state, else (as root) system state.

    Root's home is private (mode 0700), so the unprivileged account that runs OpenSearch for
    root could not reach a data directory under it.
    """
    if os.environ.get("SRCOHORT_HOME"):
        return Path(os.environ["SRCOHORT_HOME"]) / "opensearch"
    if os.geteuid() == 0:
        return Path("/var/lib/srcohort/opensearch")
    return Path.home() / ".local" / "state" / "srcohort" / "opensearch"


def default_server() -> LocalOpenSearch:
    """The server the CLI manages; ``$SRCOHORT_OPENSEARCH_PORT`` moves it off a busy 9200."""
    return LocalOpenSearch(default_data_dir(),
                           port=int(os.environ.get("SRCOHORT_OPENSEARCH_PORT", "9200")))


class LocalOpenSearch:
    """One OpenSearch node whose config, data, logs and pid file all live in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = 9200, version: str = DEFAULT_VERSION,
                 cache_dir: Path | None = None, heap_mb: int = 512) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.version = version
        self.cache_dir = cache_dir
        self.heap_mb = heap_mb
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_dir(self) -> Path:
        return self.data_dir / "config"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "opensearch.pid"

    @property
    def console_log(self) -> Path:
        """stdout and stderr of the server: the only record of failures before log4j starts."""
        return self.data_dir / "logs" / "console.log"

    def start(self, timeout: float = 120.0) -> str:
        """Start the node (unless it already runs) and return its URL once health is yellow.

        Yellow is enough: a single node can never place replicas, so green only comes for
        indices without them.
        """
        if _cluster_name(self.url) == CLUSTER_NAME:
            log.info("opensearch already running", extra={"url": self.url})
            return self.url
        deadline = time.monotonic() + timeout
        if self._running_pid() is None:
            if _port_taken(self.port):
                raise RuntimeError(f"port {self.port} is in use by something that is not "
                                   f"srcohort's OpenSearch; set SRCOHORT_OPENSEARCH_PORT")
            self._launch()
        self._wait_until_healthy(deadline)
        return self.url

    def stop(self) -> None:
        """SIGTERM (OpenSearch flushes and exits cleanly), SIGKILL after a grace period."""
        pid = self._running_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, STOP_GRACE_SECONDS):
                log.warning("opensearch ignored SIGTERM, killing", extra={"pid": pid})
                os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 10.0)
            log.info("opensearch stopped", extra={"pid": pid, "data_dir": str(self.data_dir)})
        self.pid_file.unlink(missing_ok=True)
        self._proc = None

    def status(self) -> dict[str, Any]:
        """Whether this data directory's node runs, and the version it answers with (``None``
        while it is still booting or when stopped)."""
        pid = self._running_pid()
        root = _get_json(self.url) if pid is not None else None
        return {"running": pid is not None, "pid": pid, "url": self.url,
                "version": root["version"]["number"] if root else None,
                "data_dir": str(self.data_dir)}

    def _launch(self) -> None:
        home = ensure_distribution(self.version, self.cache_dir)
        account = _service_account()
        self._prepare(home, account)
        command = [str(home / "bin" / "opensearch")]
        if account is not None:
            uid, gid = account
            # setpriv execs in place (runuser would fork), so the pid we record is the JVM's.
            command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups",
                       "--inh-caps=-all", "--", *command]
        with self.console_log.open("wb") as console:  # srcohort.log keeps the history
            self._proc = subprocess.Popen(command, env=self._environment(),
                                          stdin=subprocess.DEVNULL, stdout=console,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{self._proc.pid}\n", "utf-8")
        log.info("opensearch starting", extra={"pid": self._proc.pid, "url": self.url,
                                               "home": str(home), "data_dir": str(self.data_dir)})

    def _prepare(self, home: Path, account: tuple[int, int] | None) -> None:
        """Give this node its own config copy: OpenSearch writes its keystore into the config
        directory, and the distribution in the shared cache must stay read-only."""
        for name in ("data", "logs", "tmp"):
            (self.data_dir / name).mkdir(parents=True, exist_ok=True)
        shutil.copytree(home / "config", self.config_dir, dirs_exist_ok=True)
        (self.config_dir / "opensearch.yml").write_text(self._opensearch_yml(), "utf-8")
        jvm_options = self.config_dir / "jvm.options"
        jvm_options.write_text(_absolute_jvm_paths(jvm_options.read_text("utf-8"), self.data_dir),
                               "utf-8")
        if account is not None:
            self._hand_over(home, *account)

    def _hand_over(self, home: Path, uid: int, gid: int) -> None:
        """Make the service account own what the node writes, and fail early with a clear
        message when it could not even reach the distribution or the data directory."""
        for path in (self.data_dir, self.data_dir / "data", self.data_dir / "logs",
                     self.data_dir / "tmp"):
            os.chown(path, uid, gid)
        for directory, _, files in os.walk(self.config_dir):
            os.chown(directory, uid, gid)
            for name in files:
                os.chown(Path(directory) / name, uid, gid)
        for target in (home, self.data_dir):
            blocked = _blocking_directory(target, uid, gid)
            if blocked is not None:
                raise RuntimeError(f"{SERVICE_USER} cannot enter {blocked} on the way to "
                                   f"{target}; use a data/cache directory outside it "
                                   f"($SRCOHORT_HOME, $SRCOHORT_CACHE)")

    def _opensearch_yml(self) -> str:
        settings = {
            "cluster.name": CLUSTER_NAME,
            "node.name": "srcohort-local",
            "network.host": "127.0.0.1",
            "http.port": self.port,
            # A fixed transport port would collide when the tests run beside the CLI's server.
            "transport.port": _free_port(),
            "discovery.type": "single-node",
            "path.data": str(self.data_dir / "data"),
            "path.logs": str(self.data_dir / "logs"),
            # With one node there is nowhere to move shards, so disk watermarks can only turn
            # indices read-only on a nearly full laptop disk.
            "cluster.routing.allocation.disk.threshold_enabled": False,
        }
        return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())

    def _environment(self) -> dict[str, str]:
        """A minimal environment: the caller's secrets (tokens, the pseudonymisation secret)
        have no business in the server process."""
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "JAVA_HOME": str(_java_home()),
            "OPENSEARCH_PATH_CONF": str(self.config_dir),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{self.heap_mb}m -Xmx{self.heap_mb}m",
            "OPENSEARCH_TMPDIR": str(self.data_dir / "tmp"),
        }

    def _wait_until_healthy(self, deadline: float) -> None:
        started = time.monotonic()
        while time.monotonic() < deadline:
            if self._exited():
                code = self._proc.poll() if self._proc is not None else None
                self.stop()
                raise RuntimeError(f"OpenSearch exited (code {code}); log tail:\n"
                                   f"{self._log_tail()}")
            health = _get_json(f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s")
            if health and health.get("cluster_name") == CLUSTER_NAME \
                    and health.get("status") in ("yellow", "green"):
                seconds = round(time.monotonic() - started, 1)
                log.info("opensearch ready",
                         extra={"url": self.url, "status": health["status"], "seconds": seconds})
                return
            time.sleep(0.5)
        tail = self._log_tail()
        if self._proc is not None:  # ours to clean up; a node started elsewhere is left alone
            self.stop()
        raise RuntimeError(f"OpenSearch at {self.url} not healthy in time; log tail:\n{tail}")

    def _exited(self) -> bool:
        """Whether the node being waited for is gone. Our own child answers by its exit status:
        right after the fork its /proc environment is still ours, not the node's, so the
        environment check would call a starting node dead."""
        if self._proc is not None:
            return self._proc.poll() is not None
        return self._running_pid() is None

    def _log_tail(self) -> str:
        try:
            lines = self.console_log.read_text("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def _running_pid(self) -> int | None:
        """The pid from the pid file if that process is this data directory's node; a stale
        file (crash, reboot, reused pid) yields ``None``."""
        try:
            pid = int(self.pid_file.read_text("utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        """Identify the node by its environment, which survives the setpriv -> bash -> java
        exec chain unchanged; a zombie's environment reads as empty."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        return f"OPENSEARCH_PATH_CONF={self.config_dir}".encode() in environ.split(b"\0")

    def _wait_gone(self, pid: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                self._proc.poll()  # reap our own child so it does not linger as a zombie
            if not self._is_ours(pid):
                return True
            time.sleep(0.2)
        return False


def _service_account() -> tuple[int, int] | None:
    """``(uid, gid)`` to run the node as, or ``None`` to run it as ourselves.

    OpenSearch refuses to run as root, so root delegates to a locked system account.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                        "--shell", "/usr/sbin/nologin", SERVICE_USER],
                       capture_output=True, check=False)
        entry = pwd.getpwnam(SERVICE_USER)  # also covers a concurrent useradd winning the race
        log.info("service user created", extra={"user": SERVICE_USER, "uid": entry.pw_uid})
    return entry.pw_uid, entry.pw_gid


def _blocking_directory(target: Path, uid: int, gid: int) -> Path | None:
    """The first directory on the way to ``target`` that ``uid`` may not enter, if any."""
    gids = set(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    for directory in [*reversed(target.parents), target]:
        info = directory.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return directory
    return None


def _absolute_jvm_paths(options: str, data_dir: Path) -> str:
    """Point the GC log, crash files and heap dumps into ``data_dir``: jvm.options names them
    relative to the distribution, which the service account may not write."""
    options = re.sub(r"(?<=[=:])logs/", f"{data_dir}/logs/", options)
    return re.sub(r"HeapDumpPath=data$", f"HeapDumpPath={data_dir}/data", options, flags=re.M)


def _java_home() -> Path:
    """The integ-test-zip bundles no JDK: use the one configured, else the ``java`` on PATH."""
    for variable in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("no Java found: install a JDK 11+ or set JAVA_HOME "
                           "(tools/install-system.sh installs one)")
    return Path(java).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _get_json(url: str) -> dict[str, Any] | None:
    """GET ``url`` as JSON; ``None`` for anything that is not a 2xx JSON answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except (OSError, http.client.HTTPException, ValueError):  # incl. refused, 4xx/5xx, not JSON
        return None


def _cluster_name(url: str) -> str | None:
    root = _get_json(url)
    return root.get("cluster_name") if root else None
