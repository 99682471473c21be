"""The default of LEOFLOW_XCOM_PROCESSES: affinity and cgroup quota (server/cpus.py).

The parsers are pure; the reading layer runs against fixture trees shaped like /proc and
/sys/fs/cgroup, and against this machine's real affinity in a child process pinned to one CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leoflow_xcom.server import cpus


@pytest.mark.parametrize(
    ("text", "quota"),
    [("max 100000\n", None), ("150000 100000\n", 1.5), ("200000 100000", 2.0), ("50000", 0.5)],
)
def test_cpu_max(text: str, quota: float | None) -> None:
    assert cpus.parse_cpu_max(text) == quota


def test_cfs_quota() -> None:
    assert cpus.parse_cfs("-1\n", "100000\n") is None
    assert cpus.parse_cfs("250000\n", "100000\n") == 2.5


@pytest.mark.parametrize(
    ("affinity", "quota", "processes"),
    [
        (8, None, 8),  # no quota: every CPU we may run on
        (8, 2.0, 2),  # Compose `cpus: "2.0"`
        (8, 1.5, 2),  # half up: the second worker uses the idle half
        (8, 1.4, 1),
        (8, 0.25, 1),  # at least one
        (2, 6.0, 2),  # never above the affinity
        (0, None, 1),
    ],
)
def test_processes_for(affinity: int, quota: float | None, processes: int) -> None:
    assert cpus.processes_for(affinity, quota) == processes


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_cgroup_v2_in_a_container(tmp_path: Path) -> None:
    # Docker's private cgroup namespace: the process sees its own cgroup as the root.
    root = _tree(
        tmp_path, {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "300000 100000\n"}
    )
    assert cpus.cgroup_quota(root) == 3.0


def test_cgroup_v2_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "0::/system.slice/app.service\n",
            "sys/fs/cgroup/system.slice/app.service/cpu.max": "max 100000\n",
            "sys/fs/cgroup/system.slice/cpu.max": "150000 100000\n",
        },
    )
    assert cpus.cgroup_quota(root) == 1.5


def test_cgroup_v1(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "12:pids:/\n4:cpu,cpuacct:/docker/abc\n0::/\n",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        },
    )
    assert cpus.cgroup_quota(root) == 2.0


def test_no_cgroup_files_or_garbage_mean_no_quota(tmp_path: Path) -> None:
    assert cpus.cgroup_quota(tmp_path) is None
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "lots\n"})
    assert cpus.cgroup_quota(root) is None


def test_real_affinity_of_a_process_pinned_to_one_cpu() -> None:
    assert cpus.affinity() == len(os.sched_getaffinity(0))
    one = min(os.sched_getaffinity(0))
    pinned = subprocess.run(
        [sys.executable, "-c", "from leoflow_xcom.server import cpus; print(cpus.usable_cpus())"],
        preexec_fn=lambda: os.sched_setaffinity(0, {one}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert pinned.stdout.strip() == "1"
    # Unpinned, on this machine: its affinity under whatever quota its cgroups set.
    assert cpus.usable_cpus() == cpus.processes_for(
        len(os.sched_getaffinity(0)), cpus.cgroup_quota()
    )
