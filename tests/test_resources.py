"""Workers follow the pod's CPU quota, not the node's cores; memory bounds are data per step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from srcohort import parallel, resources


def _cgroup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, v2: str | None = None,
            v1: tuple[str, str] | None = None, cpus: int = 8) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    for name, text in (("CGROUP_V2_CPU", v2), ("CGROUP_V1_QUOTA", v1 and v1[0]),
                       ("CGROUP_V1_PERIOD", v1 and v1[1])):
        path = tmp_path / name
        if text is not None:
            path.write_text(text + "\n")
        monkeypatch.setattr(resources, name, path)


@pytest.mark.parametrize("v2, v1, cpus, expected", [
    ("200000 100000", None, 8, 2),                 # a 2-CPU limit on an 8-core node
    ("150000 100000", None, 8, 1),                 # 1.5 CPUs: one worker, not two throttled
    ("50000 100000", None, 8, 1),                  # less than one CPU: still one worker
    ("max 100000", None, 8, 8),                    # no quota: the CPUs it may run on
    ("400000 100000", None, 3, 3),                 # a quota beyond the cpuset
    (None, ("300000", "100000"), 8, 3),            # cgroup v1
    (None, ("-1", "100000"), 4, 4),                # cgroup v1 without a quota
    (None, None, 6, 6),                            # no cgroup files at all
])
def test_cpu_count_follows_the_cgroup_quota(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            v2: str | None, v1: tuple[str, str] | None,
                                            cpus: int, expected: int) -> None:
    _cgroup(monkeypatch, tmp_path, v2=v2, v1=v1, cpus=cpus)
    assert resources.cpu_count() == expected


def test_fork_map_defaults_to_the_quota(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One CPU of quota: every item runs in this process, however many cores the node has."""
    _cgroup(monkeypatch, tmp_path, v2="100000 100000", cpus=16)
    with parallel.fork_map(lambda n: (n, os.getpid()), list(range(5))) as results:
        assert [pid for _, pid in results] == [os.getpid()] * 5


def test_memory_bounds_grow_with_the_ct_and_the_workers() -> None:
    for step in ("convert", "index", "export"):
        small = resources.memory_mb(step, slices=300, workers=1, files=30_000)
        assert resources.memory_mb(step, slices=600, workers=1, files=30_000) >= small
        assert resources.memory_mb(step, slices=300, workers=2, files=30_000) >= small
        assert resources.memory_mb(step, slices=300, workers=1, files=60_000) >= small
