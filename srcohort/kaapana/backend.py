"""Kaapana's backend: datasets of series, the unit every workflow starts on.

kaapana-backend 0.6.0 (``services/base/kaapana-backend/docker/files/app/workflows/routers/
client.py`` and ``workflows/schemas.py``): ``PUT /client/dataset`` takes a ``DatasetUpdate``
(``name``, ``action``, ``identifiers``) for the project named by the ``Project`` header (JSON,
``dependencies.get_project``); with ``action: "UPDATE"`` the dataset is created when missing and
its identifiers set to exactly these series (``crud.update_dataset``), so running it again
gives the same dataset. Kaapana's own ``LocalAddToDatasetOperator`` calls the same route. The
network policy of project namespaces does not let processing pods reach the backend's port, so
the step that calls it runs in the services namespace, as Kaapana's upload DAG runs its steps.
"""

from __future__ import annotations

from typing import Any, Sequence

import requests

from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Pod, Project

TIMEOUT_SECONDS = 120


def backend_url(pod: Pod) -> str:
    return (pod.get("KAAPANA_BACKEND_URL")
            or f"http://kaapana-backend-service.{pod.services_namespace}.svc:5000").rstrip("/")


def call(pod: Pod, method: str, path: str, **kwargs: Any) -> Any:
    """One request to the backend; its JSON answer, or a one-line error."""
    url = f"{backend_url(pod)}{path}"
    try:
        answer = requests.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.RequestException as exc:
        raise KaapanaError(f"cannot reach Kaapana's backend at {url}: "
                           f"{type(exc).__name__}") from None
    if answer.status_code != 200:
        raise KaapanaError(f"Kaapana's backend answered {answer.status_code} to {method} "
                           f"{path}: {answer.text[:300]}")
    return answer.json()


def put_dataset(pod: Pod, project: Project, name: str, identifiers: Sequence[str]
                ) -> dict[str, Any]:
    """Make dataset ``name`` of ``project`` hold exactly ``identifiers`` (series UIDs)."""
    return call(pod, "PUT", "/client/dataset",
                json={"name": name, "action": "UPDATE", "identifiers": sorted(set(identifiers))},
                headers={"Project": project.header()})
