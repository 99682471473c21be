"""py-spy profiles of the service and one client during the session hot path."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from pathlib import Path

from bench.runner import ClientPool, Runner

SECONDS = 4


def record(runner: Runner, pool: ClientPool, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    targets = {"service": runner.stack.service.pid, "client": pool.processes[0].pid}
    for op in ("push", "fetch"):
        procs = []
        for name, pid in targets.items():
            raw = out / f"profile-{op}-{name}.txt"
            cmd = [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(SECONDS),
                "--rate",
                "500",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--gil",
                "--nonblocking",
            ]
            procs.append(
                (raw, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            )
        worker = threading.Thread(
            target=runner.measure, args=(f"sdk-{op}-session", 1, SECONDS + 1.0)
        )
        worker.start()
        worker.join()
        for raw, proc in procs:
            _, err = proc.communicate(timeout=30)
            if proc.returncode != 0:
                print(f"bench: py-spy failed for {raw.name}: {err.decode()[-300:]}")
                continue
            print(f"bench: profile {raw} - top frames (self time):")
            for line in top(raw):
                print(f"    {line}")


def top(raw: Path, count: int = 15) -> list[str]:
    """Share of samples whose innermost frame is each function (py-spy's collapsed format)."""
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        self_time[frames[-1]] += int(n)
        total += int(n)
    return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in self_time.most_common(count)]
