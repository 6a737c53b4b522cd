"""The platform services one step talks to, made once from its pod's environment."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.index.mapping import DEFAULT_PREFIX
from srcohort.kaapana.auth import TokenSource
from srcohort.kaapana.bucket import ProjectBucket
from srcohort.kaapana.opensearch import platform_opensearch
from srcohort.kaapana.pacs import DicomWeb
from srcohort.kaapana.pod import Pod, Project
from srcohort.kaapana.project import check_prefix, project_prefix

DEFAULT_SITE = "kaapana"


@dataclass
class Platform:
    """Lazily made clients: a step that never touches MinIO never asks STS for keys."""

    pod: Pod

    @cached_property
    def tokens(self) -> TokenSource:
        return TokenSource.from_pod(self.pod)

    @cached_property
    def opensearch(self) -> OpenSearch:
        return platform_opensearch(self.pod, self.tokens.token)

    @cached_property
    def dicomweb(self) -> DicomWeb:
        return DicomWeb.from_pod(self.pod, self.tokens.token)

    def bucket(self, project: Project) -> ProjectBucket:
        return ProjectBucket.from_pod(self.pod, self.tokens, project.s3_bucket)

    @property
    def index_prefix(self) -> str:
        """The install-time prefix (extension parameter ``opensearch_index_prefix``)."""
        return check_prefix(self.pod.get("SRCOHORT_INDEX_PREFIX") or DEFAULT_PREFIX)

    def prefix(self, project: Project) -> str:
        """The prefix of ``project``'s srcohort indices."""
        return project_prefix(project, self.index_prefix)

    @property
    def site(self) -> str:
        """This instance's name in srcohort's ``site`` field and in federated tables."""
        return self.pod.get("INSTANCE_NAME") or DEFAULT_SITE

    @cached_property
    def actor(self) -> Actor:
        """Who a step acts for in the audit log and the release ledger: the user who started
        the workflow (the backend puts it into ``workflow_form.username``), else the platform
        user the pod logs in as; and the run, ``<dag id>/<run id>``."""
        pod = self.pod
        user = pod.setting("username") or pod.get("KAAPANA_PROJECT_USER_NAME") or "system"
        return Actor.of_run({"username": user},
                            pod.require("DAG_ID", "set by KaapanaBaseOperator"),
                            pod.require("RUN_ID", "set by KaapanaBaseOperator"))
