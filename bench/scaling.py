"""`make bench`'s worker-process scaling: the product service as `leoflow-xcom serve` with
LEOFLOW_XCOM_PROCESSES=1 and =2 (SO_REUSEPORT workers, server/supervisor.py), side by side on
the bench's Redis, SDK session push and fetch at SESSIONS concurrent clients, interleaved round
after round. Printed, not a target: the issue asks for the figure. The service CPU counted is
the supervisor's and its workers' together (runner._cpu counts children).

On a small machine the clients, Redis and the service share the cores, so the ratio says how
much a second process gives here, not on a host with cores to spare.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import stack
from bench.report import SESSIONS
from bench.runner import ClientPool, Runner, side_by_side
from bench.stats import Series
from leoflow_xcom.testing.ports import free_port

SCENARIOS = ("sdk-push-session", "sdk-fetch-session")
PROCESSES = (1, 2)
SERVE = [sys.executable, "-m", "leoflow_xcom.cli.main", "serve"]


def label(processes: int) -> str:
    return f"processes-{processes}"


def measure(
    base: stack.Stack,
    pool: ClientPool,
    payload: int,
    rounds: int,
    seconds: float,
    progress: Callable[[str], None],
) -> list[Series]:
    """Series named `processes-<n>:<scenario>`, at SESSIONS clients, on `base`'s Redis."""
    stacks: dict[int, stack.Stack] = {}
    try:
        for n in PROCESSES:
            stacks[n] = stack.start(
                command=SERVE,
                log_name=f"service-processes-{n}",
                redis=base.redis,
                redis_env={
                    "LEOFLOW_XCOM_PROCESSES": str(n),
                    "LEOFLOW_XCOM_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
                },
            )
        runners = {label(n): Runner(s, pool, payload) for n, s in stacks.items()}
        return side_by_side(
            runners, SCENARIOS, SESSIONS, rounds, seconds, progress, "scaling", alternate=True
        )
    finally:
        for running in stacks.values():
            running.stop()


def table(series: list[Series]) -> str:
    by_name = {s.scenario: s for s in series}
    rows = [
        f"worker processes, 1 vs 2 (`leoflow-xcom serve`, {SESSIONS} SDK sessions; "
        "printed, not a target)",
        f"{'':<20}{'calls/s@1':>10}{'calls/s@2':>10}{'2/1':>6}{'svc µs@1':>9}{'svc µs@2':>9}"
        f"{'p50@1':>8}{'p50@2':>8}",
    ]
    for name in SCENARIOS:
        one, two = by_name.get(f"{label(1)}:{name}"), by_name.get(f"{label(2)}:{name}")
        if one is None or two is None:
            continue
        rows.append(
            f"{name:<20}{one.throughput:>10,.0f}{two.throughput:>10,.0f}"
            f"{two.throughput / one.throughput:>6.2f}{one.service_cpu_us:>9.0f}"
            f"{two.service_cpu_us:>9.0f}{one.p50:>8.3f}{two.p50:>8.3f}"
        )
    return "\n".join(rows) if len(rows) > 2 else ""
