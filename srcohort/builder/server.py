"""HTTP for the builder, with the standard library: the page, its scripts, the Vega libraries
from the npm install (no CDN), and ``/api/<route>`` as JSON POSTs.

Nothing about a patient travels in a URL: every API call is a POST with a JSON body, answers
are ``Cache-Control: no-store``, the page keeps no patient data in browser storage. Requests
must name this server in ``Host`` (a page of another origin cannot reach it through DNS
rebinding) and, when they say where they come from (``Origin``), come from it; the Content
Security Policy allows only this origin's scripts, and Vega runs with its CSP-safe expression
interpreter, as OpenSearch Dashboards runs it.
"""

from __future__ import annotations

import json
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from opensearchpy.exceptions import (AuthenticationException, AuthorizationException,
                                     ConnectionError as OpenSearchUnreachable, NotFoundError,
                                     TransportError)

from srcohort.builder.app import BuilderApp, RequestError
from srcohort.builder.deployment import NotSignedIn
from srcohort.cohort.definition import CohortError
from srcohort.logs import get_logger

log = get_logger(__name__)
VEGA_ENV = "SRCOHORT_VEGA_DIR"
MAX_BODY = 2 * 1024 * 1024
# The files of the npm packages tools/install-vega.sh installs, as the page loads them.
VENDOR = {"vega.min.js": "vega/build/vega.min.js",
          "vega-lite.min.js": "vega-lite/build/vega-lite.min.js",
          "vega-interpreter.min.js": "vega-interpreter/build/vega-interpreter.min.js"}
STATIC = {"index.html": "text/html", "builder.js": "text/javascript",
          "builder.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store"}


def vega_dir() -> Path | None:
    """``node_modules`` holding vega, vega-lite and vega-interpreter: ``$SRCOHORT_VEGA_DIR``,
    else the repository's ``.tools/vega`` (tools/install-vega.sh); None when neither has them."""
    candidates = [Path(os.environ[VEGA_ENV])] if os.environ.get(VEGA_ENV) else []
    candidates.append(Path(__file__).resolve().parents[2] / ".tools" / "vega" / "node_modules")
    return next((c for c in candidates if (c / VENDOR["vega.min.js"]).is_file()), None)


def _error_status(exc: Exception) -> tuple[HTTPStatus, str]:
    """The status and the one-line message the page shows for an exception."""
    from srcohort.export.state import ExportConflict
    from srcohort.export.verify import PhiFound
    from srcohort.federated.combine import FederatedError
    if isinstance(exc, (CohortError, RequestError)):
        return HTTPStatus.BAD_REQUEST, str(exc)
    if isinstance(exc, NotSignedIn):
        return HTTPStatus.UNAUTHORIZED, str(exc)
    if isinstance(exc, (ExportConflict, PhiFound, FederatedError)):
        return HTTPStatus.CONFLICT, str(exc)
    if isinstance(exc, AuthenticationException):
        return HTTPStatus.UNAUTHORIZED, "OpenSearch refused the credentials"
    if isinstance(exc, AuthorizationException):
        return HTTPStatus.FORBIDDEN, f"OpenSearch denied the request: {exc.error}"
    if isinstance(exc, NotFoundError):
        return HTTPStatus.NOT_FOUND, ("OpenSearch has no srcohort index for this deployment's "
                                      "prefix: index a site first, or check --prefix")
    if isinstance(exc, (OpenSearchUnreachable, TransportError)):
        return HTTPStatus.BAD_GATEWAY, f"OpenSearch: {exc}"
    return HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc} (details in the log)"


class BuilderServer(ThreadingHTTPServer):
    """One app, served. Accepted ``Host`` names: the bound address, localhost and 127.0.0.1,
    and ``host_names`` (how users reach a server bound to all interfaces), each with the port;
    ``any_host`` accepts every name, for a deployment behind a reverse proxy that checks them."""

    daemon_threads = True

    def __init__(self, app: BuilderApp, host: str, port: int, *, host_names: tuple[str, ...] = (),
                 any_host: bool = False) -> None:
        super().__init__((host, port), _Handler)
        self.app = app
        self.vega = vega_dir()
        bound = self.server_address[1]
        self.allowed_hosts = None if any_host else {
            f"{name}:{bound}" for name in {host, "localhost", "127.0.0.1", *host_names}}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="builder", daemon=True)
        thread.start()
        return thread

    def serve_until_interrupted(self) -> None:
        """Serve until Ctrl-C (or SIGINT from the pod's runtime), then close the socket."""
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: BuilderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:     # noqa: A002 (stdlib's name)
        log.debug("http", extra={"request": format % args})

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False, default=str).encode("utf-8"),
                   "application/json; charset=utf-8")

    def _host_ok(self) -> bool:
        allowed = self.server.allowed_hosts
        return allowed is None or self.headers.get("Host", "") in allowed

    def do_GET(self) -> None:      # noqa: N802 (http.server's name)
        if not self._host_ok():
            return self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "unknown Host"})
        path = self.path.split("?", 1)[0]
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        if path in ("/", f"/static/{name}") and name in STATIC:
            data = (resources.files("srcohort.builder") / "static" / name).read_bytes()
            return self._send(HTTPStatus.OK, data, f"{STATIC[name]}; charset=utf-8")
        vendor = path.removeprefix("/vendor/")
        if path.startswith("/vendor/") and vendor in VENDOR:
            if self.server.vega is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": "Vega libraries not "
                                  "installed: run tools/install-vega.sh (charts are off)"})
            data = (self.server.vega / VENDOR[vendor]).read_bytes()
            return self._send(HTTPStatus.OK, data, "text/javascript; charset=utf-8")
        self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:     # noqa: N802
        if not self._host_ok():
            return self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "unknown Host"})
        origin = self.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != self.headers.get("Host"):
            return self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin request refused"})
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                              {"error": "send JSON (Content-Type: application/json)"})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
        route = self.path.split("?", 1)[0].removeprefix("/api/")
        if route not in self.server.app.routes:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no API route {route!r}"})
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise RequestError("expected a JSON object")
            answer = self.server.app.handle(route, self.headers, body)
        except json.JSONDecodeError:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": "the body is not JSON"})
        except Exception as exc:    # noqa: BLE001 (every failure becomes a message on the page)
            return self._failed(exc)
        self._json(HTTPStatus.OK, answer)

    def _failed(self, exc: Exception) -> None:
        status, message = _error_status(exc)
        if status == HTTPStatus.INTERNAL_SERVER_ERROR:
            log.exception("builder request failed", extra={"path": self.path})
        self._json(status, {"error": message})
