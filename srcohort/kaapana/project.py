"""srcohort's indices of one Kaapana project, and the roles that open them to its members only.

Kaapana 0.6 scopes data by project. Its access-information-interface (AII,
``services/data-separation/access-information-interface/docker/backend/files/app/projects/
opensearch.py``) gives each project an index ``project_<name>`` and, per AII right whose claim
key is ``opensearch``, a role ``<claim>_<project name>`` on that index, mapped to the backend role
``<claim>_<project id>``; Keycloak puts ``<claim>_<project id>`` into the ``opensearch`` claim
of every member's token (keycloak/docker/rights-token-mapper). Kaapana ships the claims
``admin_project`` (every member) and, in the AII code, ``read_project``.

srcohort mirrors that for its own two indices per project, ``<prefix><project>-series`` and
``<prefix><project>-patients``: roles ``srcohort_<claim>_<project name>`` with AII's cluster
permissions and index actions, plus the few srcohort needs besides (``SRCOHORT_ACTIONS``),
mapped to the same backend roles. The project's audit log (``<prefix><project>-audit``) and
release ledger (``...-release-ledger``, srcohort.federated.ledger) are append-only logs: the
roles may read them, create them and add entries (``LOG_APPEND``), never update or delete one;
every member may append to the audit log, since a count must leave its entry, and only a
project admin to the ledger, since only a release writes it. A member's token therefore reaches
its own project's srcohort indices and no other's; Kaapana's ``project_*`` indices, their
template and AII's roles are never touched. Roles name indices exactly (no wildcard), so
project ``a`` cannot reach the indices of project ``a-b``.
"""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from srcohort.audit.log import AUDIT_INDEX
from srcohort.federated.ledger import LEDGER_INDEX
from srcohort.index import mapping
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.index.opensearch import ensure_indices, index_names
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.pod import Project
from srcohort.logs import get_logger

log = get_logger(__name__)

# Kaapana's index template (services/meta/meta-init/docker/files/start.py) covers project_*.
KAAPANA_INDEX_PATTERN = "project_"
# AII's payload per opensearch claim (get_payload_for_claim_and_index): cluster permissions
# and the actions on the project's index.
AII_PERMISSIONS: dict[str, tuple[list[str], list[str]]] = {
    "read_project": (["cluster_composite_ops_ro"], ["read"]),
    "admin_project": (["cluster_composite_ops"], ["data_access", "indices:admin/mappings/get"]),
}
# What srcohort does beyond AII's actions: scans clear their scroll (a cluster action no
# action group grants), writers check their index exists and refresh it after a load, and a
# large load switches refreshes off and on again (srcohort.index.opensearch.BulkLoad).
SRCOHORT_CLUSTER = ["indices:data/read/scroll/clear"]
SRCOHORT_ACTIONS: dict[str, list[str]] = {
    "read_project": [],
    "admin_project": ["indices:admin/get", "indices:admin/refresh*",
                      "indices:admin/settings/update", "indices:monitor/settings/get"],
}
# An append-only log (srcohort.audit.chain): read it, create it with its mapping, add entries
# (op_type=create; one document goes through the bulk action, which the cluster must allow).
WRITE_BULK = "indices:data/write/bulk"
LOG_APPEND = ["read", "indices:admin/create", "indices:data/write/index", f"{WRITE_BULK}*"]
# Which logs each claim may append to; the other it may only read.
APPENDS: dict[str, tuple[str, ...]] = {"read_project": (AUDIT_INDEX,),
                                      "admin_project": (AUDIT_INDEX, LEDGER_INDEX)}


def check_prefix(prefix: str) -> str:
    """The install-time index prefix: a valid one (srcohort.index.mapping.check_prefix) that
    cannot reach Kaapana's indices or template."""
    try:
        mapping.check_prefix(prefix)
    except ValueError as exc:
        raise KaapanaError(str(exc)) from None
    if prefix.startswith("project"):
        raise KaapanaError(f"index prefix {prefix!r} would fall under Kaapana's index template "
                           f"{KAAPANA_INDEX_PATTERN}*")
    return prefix


def project_prefix(project: Project, prefix: str = DEFAULT_PREFIX) -> str:
    """The prefix of ``project``'s srcohort indices: ``<prefix><project name>-``."""
    return f"{check_prefix(prefix)}{project.name}-"


def project_indices(project: Project, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """``(series index, patients index)`` of ``project``."""
    return index_names(project_prefix(project, prefix))


def project_logs(project: Project, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """``(audit log, release ledger)`` of ``project``."""
    start = project_prefix(project, prefix)
    return f"{start}{AUDIT_INDEX}", f"{start}{LEDGER_INDEX}"


def role_name(claim: str, project: Project) -> str:
    return f"srcohort_{claim}_{project.name}"


def backend_role(claim: str, project: Project) -> str:
    """What Keycloak puts into a member's ``opensearch`` claim for this right and project."""
    return f"{claim}_{project.id}"


def role_body(claim: str, project: Project, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """The security plugin role for ``claim`` on ``project``'s srcohort indices, shaped as AII
    writes its project roles, with the project's logs (append-only) beside them."""
    cluster, actions = AII_PERMISSIONS[claim]
    start = project_prefix(project, prefix)
    appended = [f"{start}{log}" for log in APPENDS[claim]]
    read_only = [name for name in project_logs(project, prefix) if name not in appended]
    logs = [{"index_patterns": appended, "allowed_actions": LOG_APPEND}]
    if read_only:
        logs.append({"index_patterns": read_only, "allowed_actions": ["read"]})
    return {
        "cluster_permissions": [*cluster, *SRCOHORT_CLUSTER, WRITE_BULK],
        "index_permissions": [{
            "index_patterns": list(project_indices(project, prefix)),
            "dls": "", "fls": [], "masked_fields": [],
            "allowed_actions": [*actions, *SRCOHORT_ACTIONS[claim]],
        }, *({"dls": "", "fls": [], "masked_fields": [], **permission} for permission in logs)],
        "tenant_permissions": [],
    }


def ensure_project_scope(admin: OpenSearch, project: Project, prefix: str = DEFAULT_PREFIX
                         ) -> dict[str, Any]:
    """Create ``project``'s srcohort indices and roles (idempotent), with a client whose user
    may manage security (Kaapana's ``system`` or an admin: backend role ``admin``)."""
    series, patients = ensure_indices(admin, project_prefix(project, prefix))
    roles = {}
    for claim in AII_PERMISSIONS:
        name = role_name(claim, project)
        _security_put(admin, f"roles/{name}", role_body(claim, project, prefix))
        _security_put(admin, f"rolesmapping/{name}",
                      {"backend_roles": [backend_role(claim, project)]})
        roles[name] = backend_role(claim, project)
    log.info("project scope", extra={"project": project.name, "indices": [series, patients],
                                     "roles": roles})
    return {"project": project.name, "indices": [series, patients], "roles": roles}


def _security_put(client: OpenSearch, path: str, body: dict[str, Any]) -> None:
    client.transport.perform_request("PUT", f"/_plugins/_security/api/{path}", body=body)
