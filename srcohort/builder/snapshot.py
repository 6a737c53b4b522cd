"""The state of the index a count was made on, and what changed between two such states.

A saved cohort records, per site, how many patient and series documents its indices held and
the sequence number of the newest write still present (``_seq_no``: OpenSearch numbers every
write of a shard, and a re-index or roll-up of any document raises it). A later re-count
compares both, so "5 patients then, 7 now" comes with "site-02 was re-indexed, 1 patient
more". Read with searches only, so a user who may search the indices may also see their state.
"""

from __future__ import annotations

from typing import Any, Mapping

from opensearchpy import OpenSearch

from srcohort.builder.deployment import Sites
from srcohort.index.opensearch import index_names

Json = dict[str, Any]


def _state(client: OpenSearch, index: str) -> Json:
    if not client.indices.exists(index=index):
        return {"documents": 0, "newest_write": None}
    result = client.search(index=index, body={
        "size": 0, "track_total_hits": True, "aggs": {"newest": {"max": {"field": "_seq_no"}}}})
    newest = result["aggregations"]["newest"]["value"]
    return {"documents": result["hits"]["total"]["value"],
            "newest_write": None if newest is None else int(newest)}


def snapshot(client: OpenSearch, sites: Sites) -> Json:
    """Site -> ``{patients: {documents, newest_write}, series: {...}}``."""
    state = {}
    for site, prefix in sites.prefixes.items():
        series, patients = index_names(prefix)
        state[site] = {"patients": _state(client, patients), "series": _state(client, series)}
    return state


def data_changes(before: Mapping[str, Json], after: Mapping[str, Json]) -> list[str]:
    """What differs between two snapshots, one line per site that changed."""
    lines = []
    for site in sorted(set(before) | set(after)):
        if site not in before:
            lines.append(f"{site}: not in the saved snapshot (a site added since)")
            continue
        if site not in after:
            lines.append(f"{site}: no longer in this deployment")
            continue
        parts = []
        for kind in ("patients", "series"):
            old, new = before[site][kind], after[site][kind]
            if old["documents"] != new["documents"]:
                parts.append(f"{kind} {old['documents']} -> {new['documents']}")
            elif old["newest_write"] != new["newest_write"]:
                parts.append(f"{kind} re-indexed ({new['documents']} documents, as before)")
        if parts:
            lines.append(f"{site}: " + ", ".join(parts))
    return lines


def count_changes(before: Json, after: Json, labels: list[str]) -> list[str]:
    """What differs between two ``Counts.to_json()``: the cohort per site, then each step."""
    lines = []
    old, new = before["cohort"], after["cohort"]
    if old["total"] != new["total"]:
        lines.append(f"cohort: {old['total']} -> {new['total']} patients")
    for site in sorted(set(old["sites"]) | set(new["sites"])):
        a, b = old["sites"].get(site, 0), new["sites"].get(site, 0)
        if a != b:
            lines.append(f"cohort at {site}: {a} -> {b}")
    if len(before["steps"]) == len(after["steps"]):
        for i, (a, b) in enumerate(zip(before["steps"], after["steps"])):
            if a["total"] != b["total"]:
                label = labels[i] if i < len(labels) else f"criterion {i + 1}"
                lines.append(f"step {i + 1} ({label}): {a['total']} -> {b['total']}")
    return lines
