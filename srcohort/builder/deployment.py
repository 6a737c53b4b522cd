"""What one deployment of the builder is: how a request gets its OpenSearch client, which
sites it sees under which index prefix, what it may do with a cohort, and where it keeps files.

A stand-alone server has one client for everything and its sites from the command line
(``srcohort serve``). Inside Kaapana the same app runs behind Kaapana's authentication: the
client factory builds a client with the user's token from the request headers, and the sites
come from the user's project (its index prefix). Only this object changes between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from opensearchpy import OpenSearch

from srcohort.audit.actor import Actor
from srcohort.builder.actions import Action
from srcohort.index.mapping import check_prefix
from srcohort.index.opensearch import index_names

Headers = Mapping[str, str]
ClientFactory = Callable[[Headers], OpenSearch]
SitesFactory = Callable[[Headers], "Sites"]
ActorFactory = Callable[[Headers], Actor]


class NotSignedIn(PermissionError):
    """The request carries no credentials this deployment accepts (HTTP 401); the message
    says what is missing."""


@dataclass(frozen=True)
class Sites:
    """Site name -> index prefix of that site's srcohort indices.

    A site's own deployment has one prefix (``--prefix``); the demo keeps every site in its own
    indices (``srcohort-demo-{site}-``). Counts search all of them at once and break totals
    down by the ``site`` field the indexer stores; actions run once per prefix.
    """

    prefixes: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.prefixes:
            raise ValueError("a deployment needs at least one site and its index prefix")
        for site, prefix in self.prefixes.items():
            if not site:
                raise ValueError(f"index prefix {prefix!r}: the site has no name")
            check_prefix(prefix)

    @classmethod
    def from_template(cls, template: str, sites: list[str]) -> Sites:
        """``srcohort-demo-{site}-`` and ``[site-01, site-02]`` -> one prefix per site."""
        if "{site}" not in template:
            raise ValueError(f"prefix template {template!r} has no {{site}} placeholder")
        return cls({site: template.format(site=site) for site in sites})

    @property
    def patient_indices(self) -> str:
        """The patient indices of every site, as one comma-separated search target."""
        return ",".join(sorted({index_names(p)[1] for p in self.prefixes.values()}))

    @property
    def series_indices(self) -> str:
        return ",".join(sorted({index_names(p)[0] for p in self.prefixes.values()}))


@dataclass
class Deployment:
    """Everything the app needs from its surroundings."""

    client_for: ClientFactory
    sites_for: SitesFactory
    actions: Mapping[str, Action] = field(default_factory=dict)
    cohorts_dir: Path = Path("cohorts")        # saved definitions and what they counted
    out_dir: Path = Path("builder-out")        # exports and federated aggregates
    # Who a request acts for, in the audit log: the person who started the stand-alone server;
    # inside Kaapana, the user of the request's token.
    actor_for: ActorFactory = lambda _headers: Actor.current()


def standalone(client: OpenSearch, sites: Sites, *, actions: Mapping[str, Action],
               cohorts_dir: Path, out_dir: Path) -> Deployment:
    """One client and one set of sites for every request: ``srcohort serve``."""
    return Deployment(lambda _headers: client, lambda _headers: sites, dict(actions),
                      cohorts_dir, out_dir)
