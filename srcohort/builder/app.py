"""The builder's API: JSON in, JSON out, one method per route, no HTTP in sight (``server.py``
serves it). Definitions arrive as the YAML's own structure in POST bodies, are read and
checked by ``load_cohort`` and counted with queries ``compile_expr`` makes; nothing a request
carries is stored except by an explicit save.

Patient identifiers leave this module in one answer only, ``patients``: the site's own user,
asking for the list on purpose, on this site's server. Counts, distributions and the saved
records hold counts; the federated action returns only the k-suppressed aggregate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import yaml
from opensearchpy import OpenSearch

from srcohort.builder import catalogue as catalogues
from srcohort.builder.actions import ActionContext
from srcohort.builder.counting import count_funnel
from srcohort.builder.deployment import Deployment, Headers, Sites
from srcohort.builder.distributions import distributions
from srcohort.builder.saved import SavedCohorts, record
from srcohort.builder.snapshot import count_changes, data_changes, snapshot
from srcohort.cohort.definition import load_cohort
from srcohort.cohort.model import Cohort
from srcohort.audit import audited
from srcohort.audit.actor import Actor
from srcohort.audit.log import record as audit_record
from srcohort.logs import get_logger

log = get_logger(__name__)
PATIENT_ROWS = 5000          # a list to look at, not an export
Json = dict[str, Any]


class RequestError(ValueError):
    """The request cannot be answered as asked (HTTP 400); the message says why."""


def json_safe(value: Any) -> Any:
    """YAML's values as JSON: dates (YAML reads 2020-01-01 as one) become ISO text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def to_yaml(definition: Json) -> str:
    """The definition as the YAML a person reads and ``srcohort cohort count`` runs."""
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True,
                          default_flow_style=False, width=100)


@dataclass(frozen=True)
class Request:
    client: OpenSearch
    sites: Sites
    body: Json
    actor: Actor
    headers: Headers

    def cohort(self) -> Cohort:
        definition = self.body.get("definition")
        if not isinstance(definition, dict):
            raise RequestError("the request carries no cohort definition")
        return load_cohort(definition)

    def labels(self) -> list[str]:
        labels = self.body.get("labels") or []
        return [str(label) for label in labels] if isinstance(labels, list) else []


class BuilderApp:
    """Routes of the API, by name (``server.py`` maps ``/api/<name>`` onto them)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.saved = SavedCohorts(deployment.cohorts_dir)
        self.study = catalogues.study_catalogue()
        self.routes: dict[str, Callable[[Request], Json]] = {
            "config": self.config, "catalogue": self.catalogue, "count": self.count,
            "distributions": self.distributions, "parse": self.parse, "cohorts": self.cohorts,
            "open": self.open, "save": self.save, "recount": self.recount,
            "patients": self.patients, "action": self.action}

    def handle(self, route: str, headers: Headers, body: Json) -> Json:
        if route not in self.routes:
            raise RequestError(f"no API route {route!r}")
        request = Request(self.deployment.client_for(headers),
                          self.deployment.sites_for(headers), body,
                          self.deployment.actor_for(headers), headers)
        return self.routes[route](request)

    # -- what the page is built from ----------------------------------------------------------
    def config(self, request: Request) -> Json:
        return {"study": self.study["study"], "sites": list(request.sites.prefixes),
                "actions": [{"name": a.name, "label": a.label, "unavailable": a.unavailable()}
                            for a in self.deployment.actions.values()]}

    def catalogue(self, request: Request) -> Json:
        index = catalogues.index_catalogue(request.client, request.sites.patient_indices,
                                           self.study)
        return {**self.study, "index": index,
                "meanings": {**index["meanings"], **self.study["meanings"]}}

    # -- counting ----------------------------------------------------------------------------
    def count(self, request: Request) -> Json:
        cohort = request.cohort()
        counts = count_funnel(request.client, request.sites.patient_indices, cohort)
        _audit_counts(request, cohort, counts.to_json())
        log.info("cohort counted", extra={"cohort": cohort.name, "digest": cohort.digest,
                                          "patients": counts.cohort.total})
        return {"digest": cohort.digest, "yaml": to_yaml(cohort.source),
                "counts": counts.to_json()}

    def distributions(self, request: Request) -> Json:
        return {"panels": distributions(request.client, request.sites.patient_indices,
                                        request.cohort(), self.study)}

    def parse(self, request: Request) -> Json:
        """YAML text -> the definition the page rebuilds its cards from."""
        text = request.body.get("yaml")
        if not isinstance(text, str):
            raise RequestError("no YAML text in the request")
        cohort = load_cohort(text)
        if not isinstance(cohort.source, dict):
            raise RequestError("the YAML is not a cohort definition")
        return {"definition": json_safe(cohort.source), "digest": cohort.digest}

    # -- saved cohorts -------------------------------------------------------------------------
    def cohorts(self, request: Request) -> Json:
        return {"cohorts": self.saved.names()}

    def open(self, request: Request) -> Json:
        text, counted = self.saved.read(str(request.body.get("name", "")))
        cohort = load_cohort(text)
        return {"yaml": text, "definition": json_safe(cohort.source), "digest": cohort.digest,
                "counted": counted}

    def save(self, request: Request) -> Json:
        """Count the definition now and save it with that count and the index snapshot."""
        cohort = request.cohort()
        counts = count_funnel(request.client, request.sites.patient_indices, cohort).to_json()
        _audit_counts(request, cohort, counts)
        text = to_yaml(cohort.source)
        saved = record(cohort.digest, counts, snapshot(request.client, request.sites),
                       request.labels())
        path = self.saved.save(cohort.name, text, saved)
        log.info("cohort saved", extra={"cohort": cohort.name, "digest": cohort.digest,
                                        "file": str(path)})
        return {"file": str(path), "record": saved, "yaml": text}

    def recount(self, request: Request) -> Json:
        """Count a saved cohort again and say what changed: definition, data, counts."""
        name = str(request.body.get("name", ""))
        text, before = self.saved.read(name)
        cohort = load_cohort(text)
        counts = count_funnel(request.client, request.sites.patient_indices, cohort).to_json()
        _audit_counts(request, cohort, counts)
        now = snapshot(request.client, request.sites)
        if before is None:
            return {"digest": cohort.digest, "counts": counts, "snapshot": now,
                    "changes": ["never counted before: nothing to compare"]}
        changes = []
        if before["digest"] != cohort.digest:
            changes.append("the definition differs from the one counted "
                           f"({before['digest'][:12]} then, {cohort.digest[:12]} now)")
        data = data_changes(before["snapshot"], now)
        changes += data or ["the indices hold the same documents as when it was counted"]
        changes += count_changes(before["counts"], counts, before.get("steps") or [])
        return {"digest": cohort.digest, "counts": counts, "snapshot": now,
                "counted_before": before, "changes": changes}

    # -- the site's own eyes only ------------------------------------------------------------
    def patients(self, request: Request) -> Json:
        """The cohort's patients at this deployment's sites, for its own user to look at."""
        cohort = request.cohort()
        rows: list[Json] = []
        total = 0
        for prefix in sorted(set(request.sites.prefixes.values())):
            for patient in audited.list_patients(request.client, cohort, prefix=prefix,
                                                 actor=request.actor):
                total += 1
                if len(rows) < PATIENT_ROWS:
                    rows.append({"site": patient["site"], "patient_id": patient["patient_id"],
                                 "modalities": patient.get("modalities", [])})
        log.info("patient list shown", extra={"cohort": cohort.name, "digest": cohort.digest,
                                              "patients": total})
        return {"patients": rows, "total": total, "shown": len(rows)}

    def action(self, request: Request) -> Json:
        name = str(request.body.get("action", ""))
        action = self.deployment.actions.get(name)
        if action is None:
            raise RequestError(f"no action {name!r} here (actions: "
                               f"{', '.join(self.deployment.actions) or 'none'})")
        reason = action.unavailable()
        if reason:
            raise RequestError(f"{action.label}: {reason}")
        cohort = request.cohort()
        params = request.body.get("params") or {}
        if not isinstance(params, Mapping):
            raise RequestError("params: expected a mapping")
        log.info("action started", extra={"action": name, "cohort": cohort.name,
                                          "digest": cohort.digest})
        try:
            result = action.run(ActionContext(request.client, cohort, request.sites.prefixes,
                                              self.deployment.out_dir, params, request.actor,
                                              request.headers))
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
        log.info("action done", extra={"action": name, "cohort": cohort.name,
                                       "digest": cohort.digest})
        return {"action": name, "digest": cohort.digest, "result": json_safe(result)}


def _audit_counts(request: Request, cohort: Cohort, counts: Json) -> None:
    """One audit entry per index prefix for every count the builder shows (live, saved or
    recounted), like ``srcohort cohort count``'s: the funnel's digest and the prefix's sites'
    cohort totals."""
    by_prefix: dict[str, list[str]] = {}
    for site, prefix in request.sites.prefixes.items():
        by_prefix.setdefault(prefix, []).append(site)
    for prefix, sites in sorted(by_prefix.items()):
        audit_record(request.client, prefix=prefix, action="count", actor=request.actor,
                     cohort=cohort, result=counts,
                     details={"total": sum(counts["cohort"]["sites"].get(s, 0) for s in sites),
                              "via": "builder"})
