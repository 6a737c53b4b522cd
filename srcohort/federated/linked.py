"""A new release audited together with everything the site published before it.

Each release is k-suppressed on its own (``suppression``), but releases can be subtracted from
each other: cohort A, then A-and-not-x, gives A-and-x by difference. At the site, where the
patient-level data are, the patients behind every published cell are known, so the relations
between cells of different releases are known exactly. The audit works on the Venn partition of
all those patient sets: an *atom* is a group of patients that lie in exactly the same cells, and
every cell is the sum of its atoms. A reader's knowledge is then a system of linear constraints
on non-negative integer atom sizes: published cells fix sums, suppressed ones are bounded by what
the schema promises (a listed intersection is at least k, a suppressed total below k).

The reader is granted more than a real one has: they know which atoms exist (which combinations
of cells are empty), which covers any structure they could know from the cohort definitions
(nested, overlapping or disjoint). Protected are every atom, every cell, and the intersection
and both differences of every two cells: none whose true size is 1..k-1 may be pinned to one
value. Pinned means every integer solution of the constraints gives it the same value. The
true sizes are one solution, and a quantity is free as soon as another solution gives it another
value; the linear relaxation (``scipy.optimize.linprog``) settles most cases, an integer
feasibility problem (``scipy.optimize.milp``) the rest. Solutions found along the way are kept
and re-used, so most quantities are cleared without a solve of their own.

A quantity already pinned by the earlier releases alone cannot be helped any more and does not
hold the new release back. For the others the new release hides more cells, smallest first
among those the pinning bound rests on (non-zero dual values), and is refused when even hiding
everything but its patient total would leave one pinned (the total is hidden only below k,
which the schema promises). Pure: no OpenSearch here; ``site`` feeds it from the ``ledger``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_matrix

from srcohort.federated.combine import FederatedError
from srcohort.logs import get_logger

log = get_logger(__name__)
# Effort per integer program: a branch-and-bound node limit keeps the answer the same on a busy
# machine (a time limit would not); an unfinished search counts as "pinned", the cautious side.
SOLVE_NODES = 2000
SOLVE_SECONDS = 120.0         # a safety net only
SEED_SOLUTIONS = 8            # solutions drawn up front to clear most quantities at once
LP_UNBOUNDED = 3
TOLERANCE = 1e-6


class ReleaseRefused(FederatedError):
    """The release would let a reader derive a count below k from what the site published."""


@dataclass(frozen=True)
class Published:
    """One release as a reader sees it, plus the patients behind its cells (site-only)."""

    name: str                                  # "release 7", "this release"
    k: int
    cells: Mapping[str, int | None]            # published value; None where suppressed
    members: Mapping[str, frozenset[str]]      # cell -> patient ids
    floors: Mapping[str, int] = field(default_factory=dict)     # public bounds of hidden cells
    ceilings: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Quantity:
    """A group of patients the audit protects: which solver variables (groups of atoms) it
    holds, its size, what it is."""

    atoms: np.ndarray          # bool over the solver's variables
    size: int
    what: str


def connected(candidate: Published, history: Sequence[Published]) -> list[Published]:
    """The earlier releases linked to ``candidate`` through shared patients, directly or via
    other releases: only they constrain it (a disjoint cohort is an independent table)."""
    reached = set().union(*candidate.members.values())
    patients = [set().union(*release.members.values()) for release in history]
    linked: set[int] = set()
    grew = True
    while grew:
        grew = False
        for i, members in enumerate(patients):
            if i not in linked and members & reached:
                linked.add(i)
                reached |= members
                grew = True
    return [release for i, release in enumerate(history) if i in linked]


@dataclass
class _System:
    """Linear constraints ``low <= rows @ x <= high`` on atom sizes ``x >= 0``; ``owners`` are
    the cells the rows come from."""

    rows: np.ndarray
    low: np.ndarray
    high: np.ndarray
    owners: list[int]

    def optimum(self, objective: np.ndarray) -> tuple[np.ndarray, list[int]] | None:
        """Minimum of the linear relaxation: the optimal point and the cells whose constraints
        carry a non-zero dual value (the bound rests on them); None when unbounded."""
        equal = self.low == self.high
        upper = ~equal & np.isfinite(self.high)
        lower = ~equal & (self.low > 0)
        a_ub = np.vstack([self.rows[upper], -self.rows[lower]])
        b_ub = np.concatenate([self.high[upper], -self.low[lower]])
        result = linprog(objective.astype(float),
                         A_ub=csr_matrix(a_ub) if len(a_ub) else None,
                         b_ub=b_ub if len(b_ub) else None,
                         A_eq=csr_matrix(self.rows[equal]) if equal.any() else None,
                         b_eq=self.low[equal] if equal.any() else None,
                         bounds=(0, None), method="highs")
        if result.status == LP_UNBOUNDED:
            return None
        if result.status != 0:
            raise RuntimeError(f"linear relaxation failed: {result.message}")
        owners = np.array(self.owners, dtype=int)
        duals = np.zeros(len(owners))
        if equal.any():
            duals[equal] = result.eqlin.marginals
        if len(a_ub):
            duals[upper] += result.ineqlin.marginals[:upper.sum()]
            duals[lower] += result.ineqlin.marginals[upper.sum():]
        return result.x, sorted(set(owners[np.abs(duals) > TOLERANCE].tolist()))


class LinkedModel:
    """The atoms of a candidate release and its linked history, and the pinning test."""

    def __init__(self, candidate: Published, history: Sequence[Published]) -> None:
        self.candidate = candidate
        self.history = list(history)
        self.k = max([candidate.k] + [r.k for r in self.history])
        releases = self.history + [candidate]
        self.cells = [(r, name) for r in releases for name in sorted(r.cells)]
        patients = sorted(set().union(*(r.members[n] for r, n in self.cells)))
        position = {p: i for i, p in enumerate(patients)}
        incidence = np.zeros((len(patients), len(self.cells)), dtype=bool)
        for j, (release, name) in enumerate(self.cells):
            incidence[[position[p] for p in release.members[name]], j] = True
        # Atoms: the distinct rows of patient x cell incidence, with how many patients share one.
        signatures, sizes = np.unique(incidence, axis=0, return_counts=True)
        self.atom_cells = signatures.T                       # cell -> atoms it holds
        self.atom_sizes = sizes.astype(np.int64)
        # The solver needs only the cells that constrain anything: atoms that differ in other
        # cells alone are merged into one variable (a group). A quantity that splits a group
        # can shift patients between its parts, so it is never pinned.
        self.bounds = [self._bound(release, name, frozenset(
            n for n, v in candidate.cells.items() if v is None)) for release, name in self.cells]
        constrained = [j for j, bound in enumerate(self.bounds) if bound is not None]
        keys, self.group, widths = np.unique(signatures[:, constrained], axis=0,
                                             return_inverse=True, return_counts=True)
        self.group = self.group.reshape(-1)
        self.widths = widths
        self.truth = np.bincount(self.group, weights=self.atom_sizes).astype(np.int64)
        self.cell_groups = np.zeros((len(self.cells), len(widths)), dtype=bool)
        self.cell_groups[constrained] = keys.T
        self.pool: list[tuple[np.ndarray, frozenset[str], bool]] = []
        self._systems: dict[tuple[frozenset[str], bool], _System] = {}
        log.debug("linked model", extra={"releases": len(releases), "cells": len(self.cells),
                                         "atoms": len(sizes), "variables": len(widths)})

    # --- constraints -----------------------------------------------------------------------

    def _bound(self, release: Published, name: str, hidden: frozenset[str]
               ) -> tuple[float, float] | None:
        """What a reader knows of one cell: its value, the schema's bounds if it is hidden, or
        None when that is nothing beyond "non-negative"."""
        value = release.cells[name]
        if value is not None and not (release is self.candidate and name in hidden):
            return float(value), float(value)
        low = float(release.floors.get(name, 0))
        high = float(release.ceilings.get(name, np.inf))
        return None if low <= 0 and high == np.inf else (low, high)

    def _system(self, hidden: frozenset[str], history_only: bool) -> "_System":
        """The reader's constraints when the candidate hides ``hidden`` (or is not published
        at all: ``history_only``); cached, since the audit asks the same models many times."""
        key = (hidden, history_only)
        if key not in self._systems:
            rows, low, high, owners = [], [], [], []
            for j, (release, name) in enumerate(self.cells):
                if release is self.candidate and history_only:
                    continue
                bound = self._bound(release, name, hidden)
                if bound is None:
                    continue
                rows.append(self.cell_groups[j])
                low.append(bound[0])
                high.append(bound[1])
                owners.append(j)
            self._systems[key] = _System(np.array(rows, dtype=float).reshape(-1, len(self.truth)),
                                         np.array(low), np.array(high), owners)
        return self._systems[key]

    # --- pinning ---------------------------------------------------------------------------

    def _valid_pool(self, hidden: frozenset[str], history_only: bool) -> list[np.ndarray]:
        """Solutions found under constraints at least as tight as these: still solutions."""
        return [x for x, h, only in self.pool
                if history_only or (not only and h <= hidden)]

    def free(self, quantities: Sequence[Quantity], hidden: frozenset[str],
             history_only: bool = False) -> np.ndarray:
        """Which quantities some known solution already gives another value (bool array)."""
        pool = self._valid_pool(hidden, history_only)
        if not quantities or not pool:
            return np.zeros(len(quantities), dtype=bool)
        matrix = np.array([q.atoms for q in quantities], dtype=np.int64)
        values = matrix @ np.array(pool, dtype=np.int64).T
        sizes = np.array([q.size for q in quantities])[:, None]
        return (values != sizes).any(axis=1)

    def _keep(self, x: np.ndarray, hidden: frozenset[str], history_only: bool) -> np.ndarray:
        solution = np.rint(x).astype(np.int64)
        self.pool.append((solution, hidden, history_only))
        return solution

    def _beyond(self, quantity: Quantity, sign: float, hidden: frozenset[str],
                history_only: bool) -> bool:
        """Is there an integer solution giving ``quantity`` at least one more (sign -1) or one
        less (+1) than its size? A feasibility question, much cheaper than optimising; one
        left open at the effort limit counts as "no" (pinned: the cautious answer)."""
        system = self._system(hidden, history_only)
        target = (quantity.size + 1, np.inf) if sign < 0 else (-np.inf, quantity.size - 1)
        constraints = [LinearConstraint(quantity.atoms.astype(float)[None, :], *target)]
        if len(system.rows):
            constraints.append(LinearConstraint(csr_matrix(system.rows), system.low, system.high))
        result = milp(c=np.zeros(len(self.truth)), constraints=constraints,
                      integrality=np.ones(len(self.truth)), bounds=Bounds(0, np.inf),
                      options={"node_limit": SOLVE_NODES, "time_limit": SOLVE_SECONDS})
        if result.x is None:
            return False
        self._keep(result.x, hidden, history_only)
        return True

    def seed(self, hidden: frozenset[str]) -> None:
        """Solutions far from the truth in random directions (seeded: deterministic): vertices
        of the linear relaxation, kept where they are integral."""
        rng = np.random.default_rng(0)
        system = self._system(hidden, False)
        for _ in range(SEED_SOLUTIONS):
            lp = system.optimum(rng.standard_normal(len(self.truth)))
            if lp is not None and np.allclose(lp[0], np.rint(lp[0]), atol=TOLERANCE):
                self._keep(lp[0], hidden, False)

    def _side_pinned(self, quantity: Quantity, sign: float, hidden: frozenset[str],
                     history_only: bool) -> tuple[bool, list[int], bool]:
        """Is the quantity's largest (sign -1) or smallest (+1) integer value its true size?
        Also the cells the linear bound rests on, and whether that bound is the proof.

        The linear relaxation decides most cases: a bound less than one away from the truth
        pins the integer value too, an integral optimum elsewhere is another solution. Only
        a fractional optimum needs the integer program."""
        lp = self._system(hidden, history_only).optimum(sign * quantity.atoms)
        if lp is None:
            return False, [], False                       # unbounded
        x, support = lp
        value = float(quantity.atoms @ x)
        if abs(value - quantity.size) < 1 - TOLERANCE:
            return True, support, True
        if np.allclose(x, np.rint(x), atol=TOLERANCE):
            self._keep(x, hidden, history_only)
            return False, support, False
        return not self._beyond(quantity, sign, hidden, history_only), support, False

    def pinned(self, quantity: Quantity, hidden: frozenset[str],
               history_only: bool = False) -> bool:
        """Does every integer solution give ``quantity`` its true size?"""
        if self.free([quantity], hidden, history_only)[0]:
            return False
        return all(self._side_pinned(quantity, sign, hidden, history_only)[0]
                   for sign in (-1.0, 1.0))

    def support(self, quantity: Quantity, hidden: frozenset[str]) -> tuple[set[str], bool]:
        """The candidate cells the linear bounds on a pinned ``quantity`` rest on (non-zero
        dual values), and whether those bounds are what pins it. If they are, no other cell
        can free it alone: a constraint with a zero dual value can be relaxed without moving
        the bound. If integrality pins it, they are still the likeliest cells to try."""
        cells: set[str] = set()
        proof = True
        for sign in (-1.0, 1.0):
            _, support, proven = self._side_pinned(quantity, sign, hidden, False)
            proof &= proven
            cells |= {name for release, name in (self.cells[j] for j in support)
                      if release is self.candidate}
        return cells, proof

    # --- what is protected -----------------------------------------------------------------

    def quantities(self) -> list[Quantity]:
        """Atoms, cells, and intersections and differences of two cells, of size 1..k-1
        (each set of patients once), as sets of solver variables; those that split a variable
        are never pinned and are left out."""
        found: dict[bytes, Quantity | None] = {}
        names = [f"{release.name}: {name}" for release, name in self.cells]
        cells = self.atom_cells

        def small(sizes: np.ndarray) -> np.ndarray:
            return (sizes > 0) & (sizes < self.k)

        def add(atoms: np.ndarray, size: float, what: Callable[[], str]) -> None:
            key = np.packbits(atoms).tobytes()
            if key in found:
                return
            inside = np.bincount(self.group, weights=atoms, minlength=len(self.widths))
            whole = inside == self.widths
            found[key] = (Quantity(whole, int(size), what())
                          if np.all(whole | (inside == 0)) else None)

        def atom_name(a: int) -> str:
            inside = [names[j] for j in np.flatnonzero(cells[:, a])]
            return ("the patients in exactly the cells " + ", ".join(inside[:4])
                    + (f" and {len(inside) - 4} more" if len(inside) > 4 else ""))

        # Sizes of all intersections at once (float products are exact at these sizes).
        weighted = cells * self.atom_sizes.astype(float)
        both = np.rint(weighted @ cells.T.astype(float))
        sizes = np.diag(both)
        for j in np.flatnonzero(small(sizes)):
            add(cells[j], sizes[j], lambda j=j: names[j])
        for a in np.flatnonzero(small(self.atom_sizes)):
            add(np.arange(len(self.atom_sizes)) == a, self.atom_sizes[a],
                lambda a=a: atom_name(a))
        for a, b in np.argwhere(np.triu(small(both), 1)):
            add(cells[a] & cells[b], both[a, b], lambda a=a, b=b: f"{names[a]} and {names[b]}")
        for a, b in np.argwhere(small(sizes[:, None] - both) & (both > 0)):
            add(cells[a] & ~cells[b], sizes[a] - both[a, b],
                lambda a=a, b=b: f"{names[a]} but not {names[b]}")
        return sorted((q for q in found.values() if q is not None),
                      key=lambda q: (q.size, q.what))

    def exposed(self, quantities: Sequence[Quantity], hidden: frozenset[str]
                ) -> tuple[list[Quantity], list[Quantity]]:
        """(pinned because of the candidate, pinned by the history alone) among ``quantities``."""
        loose = self.free(quantities, hidden)
        pinned = [q for q, free in zip(quantities, loose) if not free and self.pinned(q, hidden)]
        earlier = [q for q in pinned if self.pinned(q, hidden, history_only=True)]
        return [q for q in pinned if not any(q is e for e in earlier)], earlier


def linked_hiding(candidate: Published, history: Sequence[Published], *,
                  keep: Iterable[str] = ()) -> set[str]:
    """Published cells of ``candidate`` to suppress as well, so that no group of 1..k-1 patients
    becomes derivable from ``candidate`` together with the earlier releases ``history``.

    Raises ReleaseRefused when only hiding a ``keep`` cell (the patient total) could help.
    """
    linked = connected(candidate, history)
    hidden = frozenset(n for n, v in candidate.cells.items() if v is None)
    model = LinkedModel(candidate, linked)
    quantities = model.quantities()
    if not quantities:
        return set()
    model.seed(hidden)
    exposed, earlier = model.exposed(quantities, hidden)
    if earlier:
        log.warning("already derivable from earlier releases alone",
                    extra={"quantities": len(earlier), "first": earlier[0].what})
    keep = set(keep)
    options = sorted((n for n, v in candidate.cells.items() if v is not None and n not in keep),
                     key=lambda n: (candidate.cells[n], n))
    added: set[str] = set()
    while exposed:
        quantity = exposed[0]
        current = hidden | added
        if model.pinned(quantity, current | set(options)):
            raise ReleaseRefused(
                f"{candidate.name} would let a reader derive a count below k from the releases "
                f"this site published before ({quantity.what}); hiding every cell but the "
                f"patient total does not prevent it, so nothing is released")
        while model.pinned(quantity, current):
            # The smallest cell the bounds rest on whose hiding alone frees it; else the
            # smallest of them (or of all, if none), and look again.
            support, proof = model.support(quantity, current)
            left = [c for c in options if c not in current]
            tries = [c for c in left if c in support] or ([] if proof else left)
            choice = next((c for c in tries if not model.pinned(quantity, current | {c})),
                          None) or (tries or left)[0]
            added.add(choice)
            current = hidden | added
        log.info("cells hidden by the linked audit",
                 extra={"release": candidate.name, "hidden": sorted(added),
                        "protects": quantity.what})
        exposed = [q for q in exposed[1:] if model.pinned(q, current)]
    return added
