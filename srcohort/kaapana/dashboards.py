"""srcohort's dashboards in Kaapana's OpenSearch Dashboards (``/meta``), one set per project.

Kaapana imports its own saved objects once, at platform install, through Dashboards' saved
objects API with a system token (``services/meta/meta-init/docker/files/start.py``:
``POST $DASHBOARDS_URL/api/saved_objects/_import``, multipart ``file``, header ``osd-xsrf``).
srcohort does the same from its install Job, for every project: the objects generated from the
installed study (srcohort.dashboards: a panel per coded field, an attrition panel per saved
cohort) pointed at that project's patients index, their ids and titles carrying the project's
name so that the projects' sets live side by side in ``.opensearch_dashboards_1`` (which every
project's members may read). The panels query with
the viewer's token, so a member sees the numbers of their own project and an error elsewhere.
Uninstalling deletes exactly these objects again.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import requests

from srcohort.dashboards import ndjson, saved_object_list
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Pod, Project
from srcohort.study.model import Study

TIMEOUT_SECONDS = 120


def dashboards_url(pod: Pod) -> str:
    return (pod.get("DASHBOARDS_URL")
            or f"http://os-dashboards-service.{pod.services_namespace}.svc:5601/meta").rstrip("/")


def project_objects(project: Project, patients_index: str, study: Study
                    ) -> list[dict[str, Any]]:
    """The saved objects of ``study`` for ``project``: ids suffixed ``-<project>``, references
    alike."""
    objects = saved_object_list(study, patients_index)
    suffix = f"-{project.name}"
    for obj in objects:
        obj["id"] += suffix
        for reference in obj.get("references", []):
            reference["id"] += suffix
        title = obj.get("attributes", {}).get("title")
        if title and obj["type"] != "index-pattern":
            obj["attributes"]["title"] = f"{title} ({project.name})"
    return objects


def import_objects(pod: Pod, token: Callable[[], str], project: Project,
                   objects: list[dict[str, Any]]) -> dict[str, Any]:
    url = f"{dashboards_url(pod)}/api/saved_objects/_import"
    files = {"file": (f"srcohort-{project.name}.ndjson", ndjson(objects).encode("utf-8"),
                      "application/ndjson")}
    answer = _call("POST", url, token, params={"overwrite": "true"}, files=files)
    body = answer.json()
    if answer.status_code != 200 or not body.get("success"):
        raise KaapanaError(f"Dashboards refused srcohort's objects of project "
                           f"{project.name!r} ({answer.status_code}): "
                           f"{json.dumps(body.get('errors', body))[:300]}")
    return {"project": project.name, "imported": body.get("successCount", 0)}


def delete_objects(pod: Pod, token: Callable[[], str], objects: list[dict[str, Any]]) -> int:
    """Delete the given saved objects; those already gone are fine."""
    deleted = 0
    for obj in objects:
        url = f"{dashboards_url(pod)}/api/saved_objects/{obj['type']}/{obj['id']}"
        answer = _call("DELETE", url, token)
        if answer.status_code == 200:
            deleted += 1
        elif answer.status_code != 404:
            raise KaapanaError(f"Dashboards refused to delete {obj['type']} {obj['id']} "
                               f"({answer.status_code})")
    return deleted


def _call(method: str, url: str, token: Callable[[], str], **kwargs: Any) -> requests.Response:
    headers = {"osd-xsrf": "true", "Authorization": f"Bearer {token()}"}
    try:
        return requests.request(method, url, headers=headers, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.RequestException as exc:
        raise KaapanaError(f"cannot reach OpenSearch Dashboards at {url}: "
                           f"{type(exc).__name__}") from None
