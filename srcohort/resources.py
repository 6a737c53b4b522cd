"""What each step asks of the machine it runs on: workers to start, memory to declare.

Kaapana runs every step in a pod with a memory limit (``KaapanaBaseOperator``: 500 MB requested,
a 600 Mi limit by default) and a CPU quota; a pod over its limit is killed, and a process
that forks one worker per core of the *node* is throttled to its quota while holding one
patient per worker in memory. So workers follow the quota (``cpu_count``), and each step's
memory bound is data here, per CT size, for the operators to declare (``memory_mb``).

The bounds come from ``benchmarks/clinical.py`` (docs/performance.md): peak memory of every
process of a step, sampled, at 512 x 512 x 300 and x 600 slices; per step a line through the
two sizes (a fixed part plus a part per million voxels of the largest CT, per worker), plus
``MARGIN``. Memory that grows with the site rather than the CT (the indexer's one path per
file) is a per-file term.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_V2_CPU = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
MARGIN = 1.25                   # over the measured peak: other data, allocator, library versions


def cpu_count() -> int:
    """CPUs this process may use: the cgroup CPU quota (v2 ``cpu.max``, v1 CFS quota) rounded
    down, within the CPUs it may run on; at least 1."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(available, math.floor(quota) if quota is not None else available))


def _cgroup_quota() -> float | None:
    """CPUs of the quota, or None when there is none (``max``, -1) or no cgroup file."""
    try:
        quota, period = CGROUP_V2_CPU.read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = CGROUP_V1_QUOTA.read_text(), CGROUP_V1_PERIOD.read_text()
        except OSError:
            return None
    if quota.strip() in ("max", "-1"):
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


@dataclass(frozen=True)
class Bound:
    """Peak memory of a step (all its processes): ``base_mb``; per worker ``worker_mb`` and
    ``per_megavoxel_mb`` for each million voxels of the largest CT (a worker holds one
    patient); and ``per_file_kb`` per DICOM file of the site in every process (the parent and
    each forked worker, which copies what it touches)."""

    base_mb: float
    worker_mb: float
    per_megavoxel_mb: float
    per_file_kb: float = 0.0

    def mb(self, megavoxels: float, workers: int, files: int = 0) -> float:
        return self.base_mb + workers * (self.worker_mb + self.per_megavoxel_mb * megavoxels) \
            + (1 + workers) * self.per_file_kb * files / 1024


# Fitted to benchmarks/clinical.py on 2 cores (docs/performance.md); MARGIN on top.
BOUNDS: dict[str, Bound] = {
    "convert": Bound(base_mb=174, worker_mb=0, per_megavoxel_mb=1.9, per_file_kb=0.55),
    "index": Bound(base_mb=90, worker_mb=30, per_megavoxel_mb=0, per_file_kb=0.65),
    "export": Bound(base_mb=200, worker_mb=100, per_megavoxel_mb=1.0),
}


def memory_mb(step: str, *, slices: int, rows: int = 512, columns: int = 512,
              workers: int | None = None, files: int = 0) -> int:
    """The memory (MB) to declare for ``step`` on CTs of ``rows`` x ``columns`` x ``slices``
    with ``workers`` processes (default: ``cpu_count()``) and a site of ``files`` DICOM files."""
    bound = BOUNDS[step]
    count = cpu_count() if workers is None else workers
    return math.ceil(MARGIN * bound.mb(rows * columns * slices / 1e6, count, files))
