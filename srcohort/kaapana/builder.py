"""The cohort builder (``srcohort serve``) inside Kaapana 0.6: the user's token, the user's
project, and a *Kaapana dataset* action.

How a request reaches a service behind Kaapana 0.6's ingress (read from Kaapana's sources at
tag 0.6.0):

* ``services/kaapana-admin/oAuth2-proxy/oAuth2-proxy-chart/templates/configmap.yaml``: every
  request passes oauth2-proxy (``pass_access_token = true``, ``reverse_proxy = true``), which
  forwards the logged-in user's Keycloak access token as ``X-Forwarded-Access-Token``;
  ``skip_jwt_bearer_tokens = true`` also lets a client send its own ``Authorization: Bearer``
  token, which oauth2-proxy verifies against Keycloak's keys.
* ``services/kaapana-admin/traefik/traefik-chart/templates/deployment.yaml`` and
  ``.../middlewares.yaml``: the ``websecure`` entrypoint runs the ``auth-check`` forwardAuth
  middleware on every route, and copies the auth server's ``Project`` response header into
  the request (``authResponseHeaders: [Project]``).
* ``services/kaapana-admin/auth-backend/docker/files/main.py`` (``/auth-check``): reads the
  ``Project`` cookie the UI sets (JSON with the project's ``id``), fetches that project from
  AII (``/projects/{id}``) and, when the policy allows the request, answers it as the JSON
  ``Project`` header; ``auth-policies.rego`` lets a user open
  ``/applications/project/<project id>/...`` only with ``open_<project id>`` in the token's
  ``kaapana.ai/applications`` claim.
* ``services/base/kaapana-backend/docker/files/app/dependencies.py`` (``get_opensearch``,
  ``get_project``): Kaapana's own backend reads exactly these two headers, the token from
  ``x-forwarded-access-token`` and the project from ``Project``.

So a request here carries the user's token and the selected project. The client of a request
sends that token to OpenSearch (no service credentials): OpenSearch verifies it and its roles
(srcohort.kaapana.project) confine the user to the project's srcohort indices; another
project's member gets OpenSearch's 403. The user in the audit log is the name OpenSearch itself
authenticated the token as (``_plugins/_security/authinfo``: the ``preferred_username`` claim,
Kaapana's ``subject_key``), so a forged or expired token names nobody: it is refused (401)
before anything is counted. An application chart is installed per project (kube-helm passes
``project_id``), and a request naming another project than the one it was installed for is
refused, so nobody reads project B's data through project A's builder page by mistake.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.builder.actions import ActionContext, Json
from srcohort.builder.app import RequestError
from srcohort.builder.deployment import Deployment, Headers, NotSignedIn, Sites
from srcohort.kaapana.errors import KaapanaError
from srcohort.kaapana.opensearch import platform_opensearch
from srcohort.kaapana.platform import Platform
from srcohort.kaapana.pod import Pod, Project
from srcohort.logs import get_logger

log = get_logger(__name__)

TOKEN_HEADER = "X-Forwarded-Access-Token"      # oauth2-proxy's pass_access_token
PROJECT_HEADER = "Project"                      # auth-check's authResponseHeaders
SESSIONS = 256                                  # clients kept, one per live token


def header(headers: Headers, name: str) -> str | None:
    """``name``'s value in ``headers`` (HTTP names are case-insensitive), or None."""
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == wanted and v), None)


def request_token(headers: Headers) -> str:
    """The user's access token: oauth2-proxy's ``X-Forwarded-Access-Token``, else a bearer
    token the client sent itself."""
    token = header(headers, TOKEN_HEADER)
    if token:
        return token
    authorization = header(headers, "Authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    raise NotSignedIn(f"no access token: Kaapana's ingress forwards the logged-in user's as "
                      f"{TOKEN_HEADER}; sign in to Kaapana and open the builder from there")


def request_project(headers: Headers) -> Project:
    """The project the request names in the ``Project`` header (AII's project as JSON)."""
    text = header(headers, PROJECT_HEADER)
    if not text:
        raise RequestError(f"no {PROJECT_HEADER} header: select a project in Kaapana's project "
                           f"menu (Kaapana's auth-check turns that choice into the header)")
    try:
        form = json.loads(text)
        return Project.from_form(form if isinstance(form, dict) else None)
    except ValueError as exc:
        raise RequestError(f"{PROJECT_HEADER} header is not JSON: {exc}") from None
    except KaapanaError as exc:
        raise RequestError(f"{PROJECT_HEADER} header: {exc}") from None


@dataclass(frozen=True)
class Session:
    """A token's client and the user OpenSearch authenticated it as."""

    client: OpenSearch
    user: str


@dataclass
class KaapanaBuilder:
    """The Kaapana deployment's three per-request answers, from the pod's environment (the
    OpenSearch URL and platform CA, ``$INSTANCE_NAME``, ``$SRCOHORT_INDEX_PREFIX``) and the
    project the chart was installed for (``project_id``; None accepts any project)."""

    pod: Pod
    project_id: str | None = None
    platform: Platform = field(init=False)

    def __post_init__(self) -> None:
        self.platform = Platform(self.pod)      # its prefix and site only: no service tokens
        self._session = lru_cache(maxsize=SESSIONS)(self._open)

    def _open(self, token: str) -> Session:
        """A client sending ``token``, and its user as OpenSearch authenticated it (a refused
        token raises here, before anything is counted; refusals are not cached)."""
        client = platform_opensearch(self.pod, lambda: token)
        info = client.transport.perform_request("GET", "/_plugins/_security/authinfo")
        return Session(client, str(info.get("user_name") or ""))

    def client_for(self, headers: Headers) -> OpenSearch:
        return self._session(request_token(headers)).client

    def actor_for(self, headers: Headers) -> Actor:
        return Actor(self._session(request_token(headers)).user)

    def project_for(self, headers: Headers) -> Project:
        project = request_project(headers)
        if self.project_id and project.id != self.project_id:
            raise RequestError(f"this cohort builder is installed in project {self.project_id}; "
                               f"the request names project {project.name!r} ({project.id}): "
                               f"open the builder of that project, or select this one in "
                               f"Kaapana's project menu")
        return project

    def sites_for(self, headers: Headers) -> Sites:
        """``{<instance name>: srcohort-<project>-}``: this instance's srcohort indices of the
        request's project."""
        return Sites({self.platform.site: self.platform.prefix(self.project_for(headers))})

    def deployment(self, cohorts_dir: Path, out_dir: Path) -> Deployment:
        dataset = DatasetAction(self)
        return Deployment(self.client_for, self.sites_for, {dataset.name: dataset},
                          cohorts_dir, out_dir, self.actor_for)


@dataclass(frozen=True)
class DatasetAction:
    """The cohort's patients' series as a Kaapana dataset of the project, through the code the
    ``srcohort-cohort-to-dataset`` workflow runs (srcohort.kaapana.steps.dataset); the gallery
    shows it and every workflow, srcohort's export and federated runs included, starts on it."""

    builder: KaapanaBuilder
    name: str = "kaapana-dataset"
    label: str = "Kaapana dataset"

    def unavailable(self) -> str | None:
        return None

    def run(self, context: ActionContext) -> Json:
        from srcohort.kaapana.steps.dataset import cohort_to_dataset
        project = self.builder.project_for(context.headers)
        name = str(context.params.get("dataset") or context.cohort.name)
        try:
            return {site: cohort_to_dataset(context.client, self.builder.pod, project, prefix,
                                            context.cohort, name, context.actor)
                    for site, prefix in context.prefixes.items()}
        except KaapanaError as exc:
            raise ValueError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """``python -m srcohort.kaapana.builder``: the builder as a Kaapana application."""
    parser = argparse.ArgumentParser(
        prog="python -m srcohort.kaapana.builder",
        description="Serve the cohort builder behind Kaapana 0.6's ingress: each request "
                    "counts with the logged-in user's token (X-Forwarded-Access-Token) in the "
                    "srcohort indices of the project it names (Project header). OpenSearch's "
                    "URL, the platform CA, the instance name and the index prefix come from "
                    "the environment as in srcohort's workflow steps.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all, "
                        "behind the ingress)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--project-id", default=None,
                        help="the project the application was installed for; requests naming "
                             "another are refused")
    parser.add_argument("--cohorts-dir", type=Path, default=Path("/data/cohorts"),
                        help="saved cohort definitions and what they counted")
    parser.add_argument("--out-dir", type=Path, default=Path("/data/builder-out"))
    args = parser.parse_args(argv)
    from srcohort.builder.app import BuilderApp
    from srcohort.builder.server import BuilderServer
    builder = KaapanaBuilder(Pod.from_environ(), args.project_id or None)
    server = BuilderServer(BuilderApp(builder.deployment(args.cohorts_dir, args.out_dir)),
                           args.host, args.port, any_host=True)
    log.info("cohort builder for Kaapana", extra={"url": server.url,
                                                  "project_id": args.project_id,
                                                  "vega": str(server.vega)})
    server.serve_until_interrupted()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
