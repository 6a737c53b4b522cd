"""Recording stand-ins for kaapana-backend and the access-information-interface (test-only).

Neither can run here (they need Kaapana's database, Airflow and Kubernetes). This server
answers the routes srcohort calls, and checks every request against the schema in Kaapana's
source; a request that the real service would refuse or mishandle is recorded in
``violations`` (tests assert it stays empty) and answered as the service would (422/500).

* kaapana-backend 0.6.0, ``services/base/kaapana-backend/docker/files/app``:
  ``PUT /client/dataset`` (``workflows/routers/client.py`` ``put_dataset``; body
  ``schemas.DatasetUpdate``: ``name`` optional str, ``action`` str, ``identifiers`` list of
  str; ``crud.update_dataset`` accepts the actions ADD, DELETE, UPDATE; the ``Project`` header
  is JSON, ``dependencies.get_project``) and ``GET /client/dataset?name=``.
* AII, ``services/data-separation/access-information-interface/docker/backend/files/app``:
  ``GET /projects`` and ``GET /projects/{name or id}`` (``projects/routes.py``).
* the federated framework's routes (``workflows/routers/client.py``): ``GET
  /client/kaapana-instance``, ``POST /client/get-kaapana-instances``
  (``schemas.FilterKaapanaInstances``), ``PUT /client/workflow_jobs``
  (``schemas.JsonSchemaData``: federated, dag_id, instance_names, workflow_id, conf_data,
  username; ``crud.create_job`` needs ``federated_form.federated_dir``,
  ``federated_operators`` and ``project_form.s3_bucket`` in conf_data to presign the site's
  upload), ``GET /client/job?job_id=``. A registered site's job is carried out by the test's
  ``run_remote`` (the remote instance's part: Airflow there, HelperFederated's upload).
* OpenSearch Dashboards' saved objects API under ``/meta`` as meta-init calls it
  (``services/meta/meta-init/docker/files/start.py``): ``POST /api/saved_objects/_import``
  with header ``osd-xsrf``, a bearer token and a multipart ``file`` ending ``.ndjson``;
  ``DELETE /api/saved_objects/{type}/{id}``. Every reference must resolve at import.
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from tests.platform.service import JsonHandler, ThreadedHttp

DATASET_ACTIONS = ("ADD", "DELETE", "UPDATE")


class KaapanaServices(ThreadedHttp):
    def __init__(self) -> None:
        self.projects: dict[str, dict[str, Any]] = {}        # by name
        self.datasets: dict[tuple[str, str], list[str]] = {}  # (project id, name) -> series
        self.saved_objects: dict[tuple[str, str], dict[str, Any]] = {}  # (type, id)
        self.instances: dict[str, dict[str, Any]] = {}     # registered remote instances
        self.jobs: dict[int, dict[str, Any]] = {}
        self.workflows: set[str] = set()
        self.run_remote: Callable[[dict[str, Any]], str] | None = None
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return self.base_url

    def add_project(self, project: dict[str, Any]) -> None:
        self.projects[project["name"]] = project

    # -- routes ---------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/projects":
            return 200, list(self.projects.values())
        if method == "GET" and path.startswith("/projects/"):
            key = urllib.parse.unquote(path.removeprefix("/projects/"))
            found = [p for p in self.projects.values() if key in (p["name"], p["id"])]
            return (200, found[0]) if found else (404, {"detail": "Project not found"})
        if path == "/client/kaapana-instance" and method == "GET":
            return 200, {"id": 1, "instance_name": "central", "remote": False,
                         "ssl_check": False, "fernet_key": "deactivated"}
        if path == "/client/get-kaapana-instances" and method == "POST":
            return self._instances(body)
        if path == "/client/workflow_jobs" and method == "PUT":
            return self._workflow_jobs(body)
        if path == "/client/job" and method == "GET":
            job = self.jobs.get(int(query.get("job_id", "0")))
            return (200, job) if job else (404, {"detail": "Job not found"})
        if path.startswith("/meta/api/saved_objects/"):
            return self._saved_objects(method, path.removeprefix("/meta/api/saved_objects/"),
                                       headers, body)
        if path == "/client/dataset":
            project = self._project_header(headers)
            if project is None:
                return 500, {"detail": "Internal Server Error"}
            if method == "PUT":
                return self._put_dataset(project, body)
            if method == "GET":
                identifiers = self.datasets.get((project["id"], query.get("name", "")))
                if identifiers is None:
                    return 404, {"detail": "Dataset not found"}
                return 200, self._dataset(query["name"], identifiers)
        self.violations.append(f"{method} {path}: no such route in Kaapana 0.6")
        return 404, {"detail": "Not Found"}

    def _project_header(self, headers: dict[str, str]) -> dict[str, Any] | None:
        try:
            project = json.loads(headers.get("project", ""))
        except ValueError:
            self.violations.append("Project header missing or not JSON (get_project json.loads)")
            return None
        if not isinstance(project, dict) or not project.get("id"):
            self.violations.append(f"Project header without id: {project!r}")
            return None
        return project

    def _put_dataset(self, project: dict[str, Any], body: Any) -> tuple[int, Any]:
        problems = []
        if not isinstance(body, dict):
            problems.append("body is not an object")
        else:
            if body.get("name") is not None and not isinstance(body["name"], str):
                problems.append("name must be a string or null")
            if not isinstance(body.get("action", ""), str):
                problems.append("action must be a string")
            identifiers = body.get("identifiers", [])
            if not isinstance(identifiers, list) or not all(isinstance(i, str)
                                                            for i in identifiers):
                problems.append("identifiers must be a list of strings")
        if problems:
            self.violations.append(f"PUT /client/dataset: {'; '.join(problems)}")
            return 422, {"detail": problems}
        if body.get("action", "") not in DATASET_ACTIONS:
            self.violations.append(f"PUT /client/dataset: action {body.get('action')!r} "
                                   f"raises ValueError in crud.update_dataset")
            return 500, {"detail": "Internal Server Error"}
        key = (project["id"], body.get("name"))
        current = self.datasets.get(key, [])
        if body["action"] == "UPDATE":
            current = list(dict.fromkeys(body["identifiers"]))
        elif body["action"] == "ADD":
            current = list(dict.fromkeys(current + body["identifiers"]))
        else:
            current = [i for i in current if i not in body["identifiers"]]
        self.datasets[key] = current
        return 200, self._dataset(body.get("name"), current)

    def _instances(self, body: Any) -> tuple[int, Any]:
        problems = _typed(body, {"federated": bool, "dag_id": (str, type(None)),
                                 "instance_names": list, "workflow_id": (str, type(None)),
                                 "workflow_name": (str, type(None))})
        if problems:
            self.violations.append(f"POST /client/get-kaapana-instances: {problems}")
            return 422, {"detail": problems}
        names = (body or {}).get("instance_names") or list(self.instances)
        return 200, [self.instances[n] for n in names if n in self.instances]

    def _workflow_jobs(self, body: Any) -> tuple[int, Any]:
        problems = _typed(body, {"federated": bool, "dag_id": (str, type(None)),
                                 "instance_names": list, "workflow_id": (str, type(None)),
                                 "conf_data": dict, "username": (str, type(None))})
        conf = (body or {}).get("conf_data") or {}
        federated = conf.get("federated_form") or {}
        if not problems:
            if body.get("workflow_id") not in self.workflows:
                problems.append("workflow_id names no workflow (crud.get_workflow)")
            if not {"federated_dir", "federated_operators"} <= set(federated):
                problems.append("conf_data.federated_form lacks federated_dir or "
                                "federated_operators (crud.create_job presigns no upload)")
            if not (conf.get("project_form") or {}).get("s3_bucket"):
                problems.append("conf_data.project_form.s3_bucket missing (crud.create_job)")
        if problems:
            self.violations.append(f"PUT /client/workflow_jobs: {problems}")
            return 422, {"detail": problems}
        jobs = []
        for name in body["instance_names"]:
            job = {"id": len(self.jobs) + 1, "status": "pending", "dag_id": body["dag_id"],
                   "conf_data": json.loads(json.dumps(conf)), "username": body["username"],
                   "owner_kaapana_instance_name": "central", "instance_name": name,
                   "run_id": None}
            self.jobs[job["id"]] = job
            if self.run_remote is not None:
                job["status"] = self.run_remote(job)
                job["run_id"] = f"federated-{job['id']}"
            jobs.append(job)
        return 200, jobs

    def _saved_objects(self, method: str, rest: str, headers: dict[str, str], body: Any
                       ) -> tuple[int, Any]:
        if headers.get("osd-xsrf") != "true":
            self.violations.append(f"{method} saved objects without osd-xsrf header")
            return 400, {"message": "Request must contain a osd-xsrf header."}
        if not headers.get("authorization", "").startswith("Bearer "):
            self.violations.append(f"{method} saved objects without a bearer token")
            return 401, {"message": "Unauthorized"}
        if method == "DELETE" and rest.count("/") == 1:
            key = tuple(rest.split("/"))
            if self.saved_objects.pop(key, None) is None:
                return 404, {"message": f"Saved object [{rest}] not found"}
            return 200, {}
        if method != "POST" or rest != "_import":
            self.violations.append(f"{method} saved objects {rest}: not a route meta-init uses")
            return 404, {"message": "Not Found"}
        objects, problem = self._ndjson_upload(headers, body)
        if problem:
            self.violations.append(f"_import: {problem}")
            return 400, {"message": problem}
        known = set(self.saved_objects) | {(o["type"], o["id"]) for o in objects}
        errors = [{"id": o["id"], "type": o["type"], "error": {"type": "missing_references"}}
                  for o in objects for ref in o.get("references", [])
                  if (ref["type"], ref["id"]) not in known]
        if errors:
            return 200, {"success": False, "successCount": 0, "errors": errors}
        for obj in objects:
            self.saved_objects[(obj["type"], obj["id"])] = obj
        return 200, {"success": True, "successCount": len(objects)}

    @staticmethod
    def _ndjson_upload(headers: dict[str, str], body: Any) -> tuple[list[dict[str, Any]], str]:
        if not isinstance(body, bytes):
            return [], "not a multipart upload"
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {headers.get('content-type', '')}\r\n\r\n".encode() + body)
        parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition")
                 == "file"] if message.is_multipart() else []
        if len(parts) != 1 or not str(parts[0].get_filename() or "").endswith(".ndjson"):
            return [], "expected one multipart field 'file' named *.ndjson"
        try:
            objects = [json.loads(line) for line in parts[0].get_payload(decode=True).decode(
                "utf-8").splitlines() if line.strip()]
        except ValueError as exc:
            return [], f"not NDJSON: {exc}"
        if not all({"id", "type", "attributes"} <= set(o) for o in objects):
            return [], "every saved object needs id, type and attributes"
        return objects, ""

    @staticmethod
    def _dataset(name: str | None, identifiers: list[str]) -> dict[str, Any]:
        now = datetime.now(timezone.utc).isoformat()
        return {"name": name, "time_created": now, "time_updated": now, "username": None,
                "identifiers": identifiers}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        services = self

        class Handler(JsonHandler):
            def _serve(self, method: str) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                headers = {k.lower(): v for k, v in self.headers.items()}
                query = dict(urllib.parse.parse_qsl(parts.query))
                services.requests.append({"method": method, "path": parts.path,
                                          "query": query, "headers": headers, "body": body})
                self.send_json(*services._route(method, parts.path, query, headers, body))

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_PUT(self) -> None:  # noqa: N802
                self._serve("PUT")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._serve("DELETE")

        return Handler


def _typed(body: Any, fields: dict[str, Any]) -> list[str]:
    """Pydantic's view of ``body``: an object whose present fields have these types."""
    if not isinstance(body, dict):
        return ["body is not an object"]
    return [f"{name} must be {kind}" for name, kind in fields.items()
            if name in body and not isinstance(body[name], kind)]
