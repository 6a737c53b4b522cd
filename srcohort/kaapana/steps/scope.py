"""Step ``project-scope``: the project's srcohort indices and roles, made by the system user.

Runs in the services namespace, whose pods log in as Kaapana's ``system`` user (backend role
``admin``, so ``all_access`` and the security REST API), as AII does when it sets up a project.
"""

from __future__ import annotations

from typing import Any

from srcohort.kaapana.platform import Platform
from srcohort.kaapana.project import ensure_project_scope


def run(platform: Platform) -> dict[str, Any]:
    return ensure_project_scope(platform.opensearch, platform.pod.project, platform.index_prefix)
