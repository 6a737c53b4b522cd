"""Map a function over items on every core, with the items inherited at fork.

Export steps are independent per patient or per file, and their inputs (index documents, file
lists, compiled matchers) are cheap to inherit but slow to pickle one by one. Workers are forked
from a process that already holds the items, so each worker only receives an index. With one
core (or one item) everything runs in this process, which keeps tracebacks simple. The default
number of workers is the CPUs this process may use (``resources.cpu_count``: the cgroup quota
of a Kaapana pod, not the node's cores).
"""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TypeVar

from srcohort.resources import cpu_count

T = TypeVar("T")
R = TypeVar("R")
_ADOPTED: list[Any] = []       # [function, items] of the map being run, for forked workers


@contextmanager
def fork_map(function: Callable[[T], R], items: Sequence[T], *, workers: int | None = None,
             chunksize: int = 1) -> Iterator[Iterator[R]]:
    """Yield an iterator of ``function(item)`` in item order.

    The first item runs in this process before the workers are forked, so what it loads once
    (highdicom's IOD tables, a compiled matcher, lazily imported modules) is inherited instead
    of loaded again by every worker. Leaving the block early (an exception, an interruption)
    cancels what has not started.
    """
    workers = min(workers or cpu_count(), len(items) - 1)
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
