"""What the builder can do with a cohort besides counting it, each through the code path the
CLI and the DAGs use: the de-identified export (``srcohort.export.run.export_formats``: PS3.15
profile, PHI verification) and the site's federated release (``srcohort.federated.release_site``:
k-suppressed counts only, the one thing that leaves a site, audited against the site's earlier
releases and recorded in its ledger). Both are entered in the site's audit log as the request's
user.

An action is small: a name, a label, whether it can run here, and ``run``. A deployment
chooses its actions; Kaapana's adds one that turns the cohort into a Kaapana dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.cohort.model import Cohort

Json = dict[str, Any]


@dataclass(frozen=True)
class ActionContext:
    """One run: the client of the request, the cohort, site -> index prefix, where files go;
    and the request's headers, for an action of a deployment that reads them (Kaapana's
    dataset action takes the project from them)."""

    client: OpenSearch
    cohort: Cohort
    prefixes: Mapping[str, str]
    out_dir: Path
    params: Mapping[str, Any]
    actor: Actor
    headers: Mapping[str, str] = field(default_factory=dict)

    def folder(self, kind: str) -> Path:
        """``<out>/<kind>/<cohort name>/<digest prefix>``: another version, another folder."""
        return self.out_dir / kind / self.cohort.name / self.cohort.digest[:12]


class Action(Protocol):
    name: str
    label: str

    def unavailable(self) -> str | None:
        """Why the action cannot run in this deployment, or None."""

    def run(self, context: ActionContext) -> Json:
        """Do it; the answer is shown to the site's own user."""


@dataclass(frozen=True)
class ExportAction:
    """The training export of every site of the deployment, one folder per site."""

    secret: bytes | None
    name: str = "export"
    label: str = "Export (de-identified)"

    def unavailable(self) -> str | None:
        return None if self.secret else ("no pseudonymisation secret: start the server with "
                                         "$SRCOHORT_SECRET set")

    def run(self, context: ActionContext) -> Json:
        from srcohort.export.run import OUTPUT_FORMATS, export_formats
        output_format = str(context.params.get("format", "unified"))
        if output_format not in OUTPUT_FORMATS or self.secret is None:
            raise ValueError(f"export format {output_format!r}: expected one of "
                             f"{', '.join(OUTPUT_FORMATS)}")
        folder = context.folder("export")
        return {"folder": str(folder), "sites": {
            site: export_formats(context.client, context.cohort, folder / site,
                                 output_format=output_format, prefix=prefix, secret=self.secret,
                                 actor=context.actor)
            for site, prefix in context.prefixes.items()}}


@dataclass(frozen=True)
class FederatedAction:
    """Each site's release of the cohort's k-suppressed aggregate, written where ``srcohort
    federated combine`` reads it once released (a site that requires approval holds it pending
    until a second person approves it with ``srcohort federated approve``)."""

    name: str = "federated"
    label: str = "Federated aggregate"

    def unavailable(self) -> str | None:
        return None

    def run(self, context: ActionContext) -> Json:
        from srcohort.federated import DEFAULT_K, release_site
        from srcohort.federated.aggregate import check_k
        k = check_k(int(context.params.get("k", DEFAULT_K)))
        folder = context.folder("federated") / "sites"
        releases = {}
        for site, prefix in context.prefixes.items():
            release = release_site(context.client, context.cohort, site=site, prefix=prefix,
                                   k=k, out=folder / f"{site}.json", actor=context.actor)
            releases[site] = {"release": release.number, "state": release.state,
                              "aggregate": release.aggregate,
                              "linked_suppressed": list(release.linked_suppressed)}
        return {"folder": str(folder), "k": k, "releases": releases}


def standalone_actions(secret: bytes | None) -> dict[str, Action]:
    """What ``srcohort serve`` offers; a Kaapana deployment adds its dataset action."""
    actions: list[Action] = [ExportAction(secret), FederatedAction()]
    return {action.name: action for action in actions}
