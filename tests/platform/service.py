"""How the harness runs its servers: a child process, or an HTTP server on a thread."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable


class ServerProcess:
    """A server binary run as a child process, its output in ``<root>/<name>.log``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None

    def spawn(self, command: list[str], env: dict[str, str] | None,
              ready: Callable[[], bool], timeout: float) -> None:
        """Start ``command`` and wait until ``ready()`` (False or OSError: not yet)."""
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{self.name}.log").open("wb")
        self._proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not come up: {self.log_tail()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None

    def log_tail(self) -> str:
        path = self.root / f"{self.name}.log"
        return path.read_text("utf-8", errors="replace")[-3000:] if path.exists() else ""


class ThreadedHttp:
    """An HTTP server on 127.0.0.1 (a free port), served from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ThreadedHttp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers JSON."""

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
