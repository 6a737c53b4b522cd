"""Map a function over items on every core, with the items inherited at fork.

Export steps are independent per patient or per file, and their inputs (index documents, file
lists, compiled matchers) are cheap to inherit but slow to pickle one by one. Workers are forked
from a process that already holds the items, so each worker only receives an index. With one
core (or one item) everything runs in this process, which keeps tracebacks simple.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_ADOPTED: list[Any] = []       # [function, items] of the map being run, for forked workers
CGROUP = Path("/sys/fs/cgroup")


def cpu_budget(cgroup: Path = CGROUP) -> int:
    """The cores this process may use: its CPU affinity, capped by its cgroup's CPU quota.

    In a Kubernetes pod ``os.cpu_count()`` is the node's core count, while the pod's CPU limit
    (Kaapana: ``cpu_millicores``) is a quota in the cgroup (v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); forking a worker per node core would
    only make the workers wait for each other, each holding its memory.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    quota = _cgroup_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota else max(1, cores)


def _cgroup_quota(cgroup: Path) -> float | None:
    """CPUs granted by the cgroup quota, or ``None`` without a limit."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]        # cgroup v2
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())      # cgroup v1
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


@contextmanager
def fork_map(function: Callable[[T], R], items: Sequence[T], *, workers: int | None = None,
             chunksize: int = 1) -> Iterator[Iterator[R]]:
    """Yield an iterator of ``function(item)`` in item order.

    The first item runs in this process before the workers are forked, so what it loads once
    (highdicom's IOD tables, a compiled matcher, lazily imported modules) is inherited instead
    of loaded again by every worker. ``workers`` defaults to ``cpu_budget()``. Leaving the block early (an exception, an interruption)
    cancels what has not started.
    """
    workers = min(workers or cpu_budget(), len(items) - 1)
    if workers <= 1:
        yield map(function, items)
        return
    first = function(items[0])
    _ADOPTED[:] = [function, items]
    pool = ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("fork"))
    try:
        rest = pool.map(_call, range(1, len(items)), chunksize=chunksize)
        yield itertools.chain([first], rest)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _ADOPTED.clear()


def _call(index: int) -> Any:
    function, items = _ADOPTED
    return function(items[index])
