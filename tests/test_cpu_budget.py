"""Workers are sized by the cores a pod may use (its cgroup's CPU quota), not the node's."""

from __future__ import annotations

import os
from pathlib import Path

from srcohort.parallel import cpu_budget

CORES = len(os.sched_getaffinity(0))


def test_cgroup_v2_quota_caps_the_workers(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")          # 1.5 CPUs: 2 workers
    assert cpu_budget(tmp_path) == min(CORES, 2)
    (tmp_path / "cpu.max").write_text("50000 100000\n")           # half a CPU: still one
    assert cpu_budget(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")             # no limit: the affinity
    assert cpu_budget(tmp_path) == CORES


def test_cgroup_v1_quota_caps_the_workers(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_budget(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_budget(tmp_path) == CORES


def test_without_cgroup_files_the_affinity_counts(tmp_path: Path) -> None:
    assert cpu_budget(tmp_path / "absent") == CORES
