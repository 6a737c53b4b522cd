"""Kaapana's access-information-interface: the projects, looked up by name.

``GET $AII_URL/projects`` and ``GET $AII_URL/projects/<name or id>`` answer ``Project``
objects (AII ``projects/routes.py``, ``projects/schemas.py``). Only steps in the services
namespace call it (the project namespaces' network policy allows it for the project-user job
only), as Kaapana's own service DAGs do.
"""

from __future__ import annotations

import requests

from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Pod, Project

ADMIN_PROJECT = "admin"


def aii_url(pod: Pod) -> str:
    return (pod.get("AII_URL") or f"http://aii-service.{pod.services_namespace}.svc:8080").rstrip("/")


def _get(pod: Pod, path: str) -> requests.Response:
    url = f"{aii_url(pod)}{path}"
    try:
        return requests.get(url, timeout=60)
    except requests.RequestException as exc:
        raise KaapanaError(f"cannot reach Kaapana's AII at {url}: {type(exc).__name__}") from None


def project(pod: Pod, name: str) -> Project | None:
    """The project called ``name``, or ``None`` if the AII knows none."""
    answer = _get(pod, f"/projects/{name}")
    if answer.status_code == 404:
        return None
    if answer.status_code != 200:
        raise KaapanaError(f"Kaapana's AII answered {answer.status_code} for project {name!r}")
    return Project.from_form(answer.json())


def projects(pod: Pod) -> list[Project]:
    answer = _get(pod, "/projects")
    if answer.status_code != 200:
        raise KaapanaError(f"Kaapana's AII answered {answer.status_code} for its projects")
    return [Project.from_form(item) for item in answer.json()]
