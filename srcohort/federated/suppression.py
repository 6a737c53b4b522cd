"""Small-cell suppression with an audit of what a reader can still infer.

A site publishes counts that are tied together: the label cells add up to the patient total,
the UpSet intersections too, a channel holds at least the intersections that contain it. Hiding
a small cell is not enough when those relations give it back (total minus the published cells).
So suppression here is primary (every count below k) plus complementary: the published cells are
audited the way a reader would attack them (interval propagation through the relations, starting
from what the schema makes public) and, while some hidden small count can still be pinned to its
exact value, one more published cell next to it is hidden.

Pure functions on plain dicts; ``aggregate`` builds the cells and relations, ``combine`` reuses
``intervals`` to turn a site's published cells into the ranges it can honestly state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

Bound = float      # an int, or math.inf for "no upper bound known"
SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Relation:
    """``sum(lhs) <= sum(rhs)``, or ``==`` when ``equal``: a fact any reader of the schema knows."""
    lhs: tuple[str, ...]
    rhs: tuple[str, ...]
    equal: bool = False

    @property
    def cells(self) -> tuple[str, ...]:
        return self.lhs + self.rhs


def intervals(published: Mapping[str, int | None], relations: Iterable[Relation],
              floors: Mapping[str, int], ceilings: Mapping[str, int]
              ) -> dict[str, tuple[int, Bound]]:
    """What a reader can infer about every cell: ``(lowest, highest)`` possible value.

    ``published`` maps every cell to its value or None when hidden; ``floors``/``ceilings`` are
    bounds the schema makes public for hidden cells (a listed intersection is at least k, a hidden
    patient total below k). Bounds are tightened through the relations until nothing changes.
    """
    bounds: dict[str, list[Bound]] = {
        name: [value, value] if value is not None
        else [floors.get(name, 0), ceilings.get(name, math.inf)]
        for name, value in published.items()}
    directed = [(r.lhs, r.rhs) for r in relations] + [(r.rhs, r.lhs) for r in relations if r.equal]
    changed = True
    while changed:
        changed = False
        for small, large in directed:
            low_small = sum(bounds[c][0] for c in small)
            high_large = sum(bounds[c][1] for c in large)
            for cell in small:      # a term of the smaller side is at most what the other leaves
                limit = high_large - (low_small - bounds[cell][0])
                if limit < bounds[cell][1]:
                    bounds[cell][1], changed = limit, True
            for cell in large:      # a term of the larger side is at least what the other needs
                need = low_small - (high_large - bounds[cell][1])
                if need > bounds[cell][0]:
                    bounds[cell][0], changed = need, True
    return {name: (int(low), high if high == math.inf else int(high))
            for name, (low, high) in bounds.items()}


def disclosed(values: Mapping[str, int], hidden: set[str], relations: Iterable[Relation],
              floors: Mapping[str, int], ceilings: Mapping[str, int], k: int) -> list[str]:
    """Hidden small counts (below k, zero included) a reader can pin to their exact value, sorted.

    A hidden cell of k or more was hidden only to protect a small one, so it being pinned is no
    disclosure in itself (the small one it protects is checked on its own).
    """
    published = {name: None if name in hidden else value for name, value in values.items()}
    inferred = intervals(published, relations, floors, ceilings)
    return sorted(name for name in hidden
                  if values[name] < k and inferred[name][0] == inferred[name][1])


def suppress(values: Mapping[str, int], relations: Iterable[Relation], k: int, *,
             floors: Mapping[str, int], ceilings: Mapping[str, int],
             keep: frozenset[str] = frozenset()) -> set[str] | None:
    """The cells to hide: every count below k, then complementary cells until the audit passes.

    The complementary cell is the smallest published one that shares a relation with a cell
    still disclosed (ties by name, so the result is deterministic), else the smallest anywhere.
    ``keep`` cells are never hidden complementarily (the patient total: hidden only when below
    k, which the schema then promises). Returns None when even hiding everything else leaves a
    small count other than zero exposed: the caller then withholds the detail altogether.
    """
    relations = tuple(relations)
    hidden = {name for name, value in values.items() if value < k}
    while exposed := disclosed(values, hidden, relations, floors, ceilings, k):
        candidates = {name for name in values if name not in hidden and name not in keep}
        near = {c for r in relations if exposed[0] in r.cells for c in r.cells} & candidates
        pool = near or candidates
        if not pool:      # a zero the schema itself pins (listed intersections >= k) is no one
            return hidden if all(values[name] == 0 for name in exposed) else None
        hidden.add(min(pool, key=lambda name: (values[name], name)))
    return hidden
