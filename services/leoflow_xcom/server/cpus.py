"""How many CPUs this process may really use: the default of LEOFLOW_XCOM_PROCESSES.

`os.cpu_count()` counts the host's CPUs, not ours. Two things narrow it: the CPU affinity
(`taskset`, `docker run --cpuset-cpus`) and the cgroup CPU quota that `docker run --cpus` and
Compose's `deploy.resources.limits.cpus` set (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` over
`cpu.cfs_period_us`). A quota of 1.5 CPUs rounds to 2 (half up, at least 1): a second worker
uses the half CPU the first leaves idle.

The parsers are pure; `usable_cpus` is the thin layer that reads the files, under a root
directory so tests can hand it a fixture tree.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 `cpu.max`: "max 100000" (no limit) or "150000 100000" (1.5 CPUs)."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    quota = int(fields[0])
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 `cpu.cfs_quota_us` (-1: no limit) over `cpu.cfs_period_us`."""
    quota, period = int(quota_text.strip()), int(period_text.strip())
    return quota / period if quota > 0 and period > 0 else None


def processes_for(affinity: int, quota: float | None) -> int:
    """Worker processes for `affinity` CPUs under a quota of `quota` CPUs (None: no quota)."""
    cpus = max(1, affinity)
    if quota is None:
        return cpus
    return max(1, min(cpus, math.floor(quota + 0.5)))


def cgroup_paths(proc_self_cgroup: str) -> tuple[str | None, str | None]:
    """(v2 path, v1 cpu controller path) of this process from /proc/self/cgroup."""
    v2 = v1 = None
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _with_ancestors(mount: Path, path: str | None) -> Iterator[Path]:
    """The cgroup directory of `path` under `mount` and every parent up to the mount: a limit
    on an ancestor applies too. Inside a container's cgroup namespace the path is "/" and the
    mount itself is the container's cgroup."""
    if path is not None:
        current = PurePosixPath(path)
        while current != current.parent:
            yield mount / str(current).lstrip("/")
            current = current.parent
    yield mount


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _quiet(parse: Callable[..., float | None], *texts: str) -> float | None:
    """An unreadable limit file means no limit we know of, not a failed start."""
    try:
        return parse(*texts)
    except (ValueError, IndexError):
        return None


def cgroup_quota(root: Path = Path("/")) -> float | None:
    """The tightest CPU quota over this process's cgroups (v2, else v1), None without one."""
    v2, v1 = cgroup_paths(_read(root / "proc/self/cgroup") or "")
    quotas: list[float] = []
    for directory in _with_ancestors(root / "sys/fs/cgroup", v2):
        text = _read(directory / "cpu.max")
        if text is not None and (quota := _quiet(parse_cpu_max, text)) is not None:
            quotas.append(quota)
    if not quotas:
        for mount in ("sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu"):
            for directory in _with_ancestors(root / mount, v1):
                quota_text = _read(directory / "cpu.cfs_quota_us")
                period_text = _read(directory / "cpu.cfs_period_us")
                if quota_text is None or period_text is None:
                    continue
                if (quota := _quiet(parse_cfs, quota_text, period_text)) is not None:
                    quotas.append(quota)
    return min(quotas) if quotas else None


def affinity() -> int:
    """CPUs this process may be scheduled on (all of them where affinity is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def usable_cpus(root: Path = Path("/")) -> int:
    return processes_for(affinity(), cgroup_quota(root))
