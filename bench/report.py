"""The performance targets, the printed table, bench-results.json and the PNG plots."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from bench.stats import Series

# The performance targets: one sequential SDK client unless said, all in one run.
# The hot path's p50 verdict is "under a millisecond", the newer target that the load test holds
# too; the older, tighter per-operation figures stay in the report, marked as such.
HOT_PATH_P50_MS = 1.0
FETCH_P50_MS = 0.36
PUSH_P50_MS = 0.45
P99_MS = 0.8
FLOOR_RATIO = 1.15
THROUGHPUT_RATIO = 0.9
SESSIONS = 8
# Service CPU per call at most this many times (session echo's + a raw redis-py client's CPU
# for the same Redis command), both measured in the same run.
CPU_RATIO = 1.5


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    measured: float
    limit: float
    passed: bool
    detail: str
    diagnostic: bool = False  # shown, but not one of the targets for the default SDK


def find(series: Sequence[Series], scenario: str, clients: int) -> Series | None:
    return next((s for s in series if s.scenario == scenario and s.clients == clients), None)


def checks(series: Sequence[Series]) -> list[Check]:
    out: list[Check] = []
    # The default SDK (sync, session) is held to the targets; the asyncio SDK is shown beside.
    for flavour, diagnostic in (("session", False), ("aio", True)):
        for op, limit in (("fetch", FETCH_P50_MS), ("push", PUSH_P50_MS)):
            out += _op_checks(series, flavour, op, limit, diagnostic)
    for op in ("fetch", "push"):
        out += _cpu_checks(series, op)
    return out


def busiest(series: Sequence[Series], scenario: str) -> Series | None:
    """The run at SESSIONS clients, else the 1-client one (a partial run with --only)."""
    return find(series, scenario, SESSIONS) or find(series, scenario, 1)


def _cpu_checks(series: Sequence[Series], op: str) -> list[Check]:
    """Service CPU per session call against the transport's and Redis's own: the session echo
    on the same server (same concurrency) plus a raw redis-py client making the same command."""
    sdk = busiest(series, f"sdk-{op}-session")
    raw = find(series, "redis-push" if op == "push" else "redis-get", 1)
    if sdk is None or raw is None:
        return []
    echo = find(series, f"echo-session-{op}", sdk.clients) or find(series, f"echo-session-{op}", 1)
    if echo is None:
        return []
    floor = echo.service_cpu_us + raw.client_cpu_us
    ratio = sdk.service_cpu_us / floor
    return [
        Check(
            f"{op}: service CPU per session call / (session echo + raw redis-py client)",
            ratio,
            CPU_RATIO,
            ratio <= CPU_RATIO,
            f"x ({sdk.service_cpu_us:.0f} µs vs {echo.service_cpu_us:.0f} + "
            f"{raw.client_cpu_us:.0f} µs, {sdk.clients} sessions)",
        )
    ]


def _op_checks(
    series: Sequence[Series], flavour: str, op: str, limit: float, diagnostic: bool
) -> list[Check]:
    sdk = find(series, f"sdk-{op}-{flavour}", 1)
    if sdk is None:
        return []
    who = f"{op} (SDK {flavour})"
    out = [
        Check(
            f"{who} p50, 1 client",
            sdk.p50,
            HOT_PATH_P50_MS,
            sdk.p50 < HOT_PATH_P50_MS,
            "ms",
            diagnostic,
        ),
        Check(
            f"{who} p50, 1 client, older target",
            sdk.p50,
            limit,
            sdk.p50 < limit,
            "ms (reported, not the verdict: the sub-millisecond target above replaced it)",
            True,
        ),
        Check(f"{who} p99, 1 client", sdk.p99, P99_MS, sdk.p99 < P99_MS, "ms", diagnostic),
    ]
    echoes = [_p50(series, f"echo-unary-{op}"), _p50(series, f"echo-session-{op}")]
    echo = min((e for e in echoes if e == e), default=float("nan"))  # e == e: not NaN
    raw = _p50(series, "redis-push" if op == "push" else "redis-get")
    floor = echo + raw
    out.append(
        Check(
            f"{who} p50 / (best echo + raw Redis)",
            sdk.p50 / floor,
            FLOOR_RATIO,
            sdk.p50 / floor <= FLOOR_RATIO,
            f"x (floor {floor:.3f} ms = echo {echo:.3f} + redis {raw:.3f})",
            diagnostic,
        )
    )
    composite = find(series, f"echo-store-session-{op}", 1)
    if composite is not None:
        ratio = sdk.p50 / composite.p50
        out.append(
            Check(
                f"{who} p50 / (session echo making the raw Redis call itself)",
                ratio,
                FLOOR_RATIO,
                ratio <= FLOOR_RATIO,
                f"x (floor {composite.p50:.3f} ms)",
                True,
            )
        )
    busy = find(series, f"sdk-{op}-{flavour}", SESSIONS)
    # The target is the composite floor (transport + the same Redis call, nothing of ours);
    # the bare echo's throughput is shown beside it.
    for floor_name, is_diag in (
        (f"echo-session-{op}", True),
        (f"echo-store-session-{op}", diagnostic),
    ):
        base = find(series, floor_name, SESSIONS)
        if busy is None or base is None:
            continue
        ratio = busy.throughput / base.throughput
        out.append(
            Check(
                f"{who} throughput at {SESSIONS} sessions / {floor_name}",
                ratio,
                THROUGHPUT_RATIO,
                ratio >= THROUGHPUT_RATIO,
                f"x ({busy.throughput:,.0f} vs {base.throughput:,.0f} calls/s)",
                is_diag,
            )
        )
    return out


def _p50(series: Sequence[Series], name: str) -> float:
    found = find(series, name, 1)
    return found.p50 if found else float("nan")


MODEL_CORES = (8, 32, 64)


def model(series: Sequence[Series], shard: dict[str, float]) -> str:
    """Capacity from this run's figures: calls/s one service core gives (1e6 / its CPU per
    session call at SESSIONS sessions), one Redis shard's ceiling (redis-benchmark, no
    pipelining), and what a host's cores should give against one Redis and a cluster."""
    lines = ["capacity model (this run's CPU per call; see docs/performance.md)"]
    for op, command in (("push", "push"), ("fetch", "get")):
        busy = busiest(series, f"sdk-{op}-session")
        if busy is None or not busy.service_cpu_us > 0:
            continue
        per_core = 1e6 / busy.service_cpu_us
        line = f"  {op}: {per_core:,.0f} calls/s per service core ({busy.service_cpu_us:.0f} µs)"
        per_shard = shard.get(command, float("nan"))
        if per_shard == per_shard:  # not NaN: redis-benchmark ran
            line += (
                f"; one Redis shard {per_shard:,.0f}/s (redis-benchmark, "
                f"{shard.get(command + '-usec', float('nan')):.1f} µs inside Redis, "
                f"pipelined {shard.get(command + '-pipelined', float('nan')):,.0f}/s)"
            )
        lines.append(line)
        for cores in MODEL_CORES:
            workers = cores - 1  # one core left to Redis on the same host, or to the OS
            service = workers * per_core
            text = f"    {cores} cores, {workers} workers (N replicas x P processes): "
            text += f"{service:,.0f}/s of service"
            if per_shard == per_shard:
                shards = max(1, math.ceil(service / per_shard))
                text += (
                    f"; one Redis caps it at {min(service, per_shard):,.0f}/s; "
                    f"a cluster needs {shards} shard(s)"
                )
            lines.append(text)
    return "\n".join(lines)


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import grpc
    import redis

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "redis_py": redis.__version__,
    }


def table(series: Sequence[Series]) -> str:
    head = (
        f"{'scenario':<24}{'clients':>7}{'calls':>8}{'err':>5}{'p50':>8}{'p90':>8}{'p99':>8}"
        f"{'p99.9':>8}{'max':>8}{'calls/s':>9}{'svc µs':>8}{'cli µs':>8}{'redis µs':>9}"
    )
    rows = [head, "-" * len(head)]
    for s in series:
        rows.append(
            f"{s.scenario:<24}{s.clients:>7}{s.calls:>8}{s.errors:>5}{s.p50:>8.3f}{s.p90:>8.3f}"
            f"{s.p99:>8.3f}{s.p999:>8.3f}{s.max:>8.2f}{s.throughput:>9,.0f}"
            f"{s.service_cpu_us:>8.0f}{s.client_cpu_us:>8.0f}{s.redis_cpu_us:>9.0f}"
        )
    return "\n".join(rows)


def verdicts(found: Sequence[Check]) -> str:
    lines = []
    for c in found:
        mark = (
            ("pass" if c.passed else "miss") if c.diagnostic else ("PASS" if c.passed else "FAIL")
        )
        lines.append(f"{mark}  {c.name}: {c.measured:.3f} (target {c.limit}) {c.detail}")
    return "\n".join(lines)


def write_json(
    path: Path, series: Sequence[Series], found: Sequence[Check], info: dict[str, object]
) -> None:
    doc = {
        "machine": info,
        "series": [s.as_dict() for s in series],
        "targets": [dataclasses.asdict(c) for c in found],
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")


def plot(
    out: Path, cdfs: dict[str, tuple[list[float], list[float]]], series: Sequence[Series]
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    colors = [plt.get_cmap("tab20")(i) for i in range(20)]  # more series than 10 colours
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.set_prop_cycle(color=colors)
    for name, (xs, ys) in cdfs.items():
        style = "--" if name.startswith(("echo", "redis")) else "-"
        ax.plot(xs, ys, style, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log)")
    ax.set_ylabel("fraction of calls")
    ax.set_title("XCom latency CDF, 1 sequential client (dashed: floors)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    cdf_path = out / "latency-cdf.png"
    fig.savefig(cdf_path, dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.set_prop_cycle(color=colors)
    # Labelled series (`processes-2:...`, `cluster:...`) are their own sections' figures.
    names = sorted({s.scenario for s in series if s.clients > 1 and ":" not in s.scenario})
    for name in names:
        points = sorted((s.clients, s.throughput) for s in series if s.scenario == name)
        style = "--" if name.startswith("echo") else "-"
        ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients (one process each)")
    ax.set_ylabel("calls per second")
    ax.set_title("XCom throughput (dashed: echo floors)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    tput_path = out / "throughput.png"
    fig.savefig(tput_path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [cdf_path, tput_path]
