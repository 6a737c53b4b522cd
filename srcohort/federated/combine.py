"""The coordinator: site aggregates -> per-site and overall table (pure; reads only aggregates).

A suppressed cell is not guessed at: it becomes the range a reader can prove from the site's
published cells and the schema's relations (``suppression.intervals``), and an overall cell is
the sum of the sites' ranges, shown as e.g. "53–61". Means and SDs are pooled exactly from the
sites that published them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from srcohort.federated.aggregate import (LABELS, OTHER_COMBINATIONS, SCHEMA, Aggregate,
                                          parameters_of, public_bounds, published_cells,
                                          relations)
from srcohort.federated.suppression import SUPPRESSED, Bound, intervals

COMBINED_SCHEMA = "srcohort.federated.combined/1"
Range = tuple[int, Bound]


class FederatedError(ValueError):
    """Aggregates that must not be combined, or are not aggregates at all."""


@dataclass(frozen=True)
class Combined:
    """The coordinator's view: per-site ranges, overall ranges, pooled feature summaries."""
    cohort: Mapping[str, str]
    k: int
    sites: tuple[str, ...]
    channels: tuple[str, ...]
    label: str                                         # what the study calls its label
    cells: Mapping[str, Mapping[str, Range]]           # cell -> site -> range
    features: Mapping[str, Mapping[str, Any]]          # field -> site / "overall" -> summary
    withheld: tuple[str, ...] = field(default=())

    def overall(self, cell: str) -> Range:
        ranges = self.cells[cell].values()
        return sum(r[0] for r in ranges), sum(r[1] for r in ranges)

    def rows(self, prefix: str) -> list[str]:
        return [name for name in self.cells if name.startswith(prefix)]

    def table(self) -> str:
        from srcohort.federated.table import render
        return render(self)

    def to_json(self) -> dict[str, Any]:
        return {"schema": COMBINED_SCHEMA, "cohort": dict(self.cohort), "k": self.k,
                "sites": list(self.sites), "withheld": list(self.withheld),
                "cells": {name: {**{site: _range_json(r) for site, r in by_site.items()},
                                 "overall": _range_json(self.overall(name))}
                          for name, by_site in self.cells.items()},
                "features": {f: dict(v) for f, v in self.features.items()}}


def _range_json(r: Range) -> int | list[int | None]:
    low, high = r
    return low if low == high else [low, None if high == math.inf else int(high)]


def check_compatible(aggregates: Sequence[Aggregate]) -> None:
    """Refuse what would make the overall numbers meaningless: other schemas, different cohort
    definitions, different k or parameters, or one site twice."""
    if not aggregates:
        raise FederatedError("no site aggregates to combine")
    first = aggregates[0]
    for agg in aggregates:
        if agg.get("schema") != SCHEMA:
            raise FederatedError(f"{agg.get('site', '?')}: schema {agg.get('schema')!r}, "
                                 f"expected {SCHEMA!r}")
        for key, what in (("cohort", "cohort definition (sha256)"), ("k", "k"),
                          ("parameters", "parameters (channels, label, features)")):
            if agg[key] != first[key]:
                raise FederatedError(f"{agg['site']} and {first['site']} used a different "
                                     f"{what}: refusing to combine")
    sites = [agg["site"] for agg in aggregates]
    if len(set(sites)) != len(sites):
        raise FederatedError(f"a site appears twice: {sorted(sites)}")


def site_ranges(aggregate: Aggregate) -> dict[str, Range]:
    """What this site's published cells prove about each of its cells."""
    k = aggregate["k"]
    published = published_cells(aggregate)
    floors, ceilings = public_bounds(published, k)
    return intervals(published, relations(published, parameters_of(aggregate)), floors, ceilings)


def combine(aggregates: Sequence[Aggregate]) -> Combined:
    """Per-site and overall ranges of every cell, and pooled feature summaries."""
    check_compatible(aggregates)
    ordered = sorted(aggregates, key=lambda a: a["site"])
    k = ordered[0]["k"]
    ranges = {agg["site"]: site_ranges(agg) for agg in ordered}
    params = parameters_of(ordered[0])
    combos = sorted({name for r in ranges.values() for name in r
                     if name.startswith("combination/")} - {f"combination/{OTHER_COMBINATIONS}"})
    names = (["patients"] + [f"label/{x}" for x in LABELS]
             + [f"channel/{c}" for c in params.channels]
             + combos + [f"combination/{OTHER_COMBINATIONS}"])
    cells = {name: {site: _absent(name, r, k, agg["withheld"]) if name not in r else r[name]
                    for (site, r), agg in zip(ranges.items(), ordered)} for name in names}
    combos_by_size = sorted(combos, key=lambda n: (-sum(r[0] for r in cells[n].values()), n))
    cells = {n: cells[n] for n in names if not n.startswith("combination/")} | {
        n: cells[n] for n in combos_by_size + [f"combination/{OTHER_COMBINATIONS}"]}
    return Combined(cohort=ordered[0]["cohort"], k=k, sites=tuple(ranges), channels=params.channels,
                    label=params.label.name, cells=cells, features=_features(ordered),
                    withheld=tuple(a["site"] for a in ordered if a["withheld"]))


def _absent(name: str, site: Mapping[str, Range], k: int, withheld: bool) -> Range:
    """A cell a site did not list: an unlisted intersection is in its pooled ``other`` (so
    below k); after withholding, anything up to the site's total."""
    if withheld:
        return 0, site["patients"][1]
    return 0, min(k - 1, site[f"combination/{OTHER_COMBINATIONS}"][1])


def pooled(summaries: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Exact n, mean and sample SD of the union of groups from their own n, mean and SD.

    A site withholds its SD over fewer than 2k values or when it is 0; the pooled SD then
    cannot be computed exactly and is left out rather than guessed."""
    n = sum(s["n"] for s in summaries)
    mean = sum(s["n"] * s["mean"] for s in summaries) / n
    result = {"n": n, "mean": round(mean, 6)}
    if all("sd" in s for s in summaries) and n > 1:
        within = sum((s["n"] - 1) * s["sd"] ** 2 for s in summaries)
        between = sum(s["n"] * (s["mean"] - mean) ** 2 for s in summaries)
        result["sd"] = round(math.sqrt((within + between) / (n - 1)), 6)
    return result


def _features(aggregates: Sequence[Aggregate]) -> dict[str, dict[str, Any]]:
    fields = sorted({f for agg in aggregates for f in agg["features"]})
    out: dict[str, dict[str, Any]] = {}
    for name in fields:
        by_site = {agg["site"]: agg["features"].get(name, {"n": SUPPRESSED}) for agg in aggregates}
        shown = [s for s in by_site.values() if s["n"] != SUPPRESSED]
        out[name] = {**by_site, "overall": {**(pooled(shown) if shown else {"n": 0}),
                                             "sites": len(shown)}}
    return out
