"""Sync service against its grpc.aio twin in tight alternation: `python -m bench --ab ROUNDS`.

On a shared machine absolute CPU per call drifts with the load by 2x within minutes, so one
window per server can crown either. Here each round measures the sync scenario and then its aio
twin back to back (a few seconds apart) and keeps the ratio; the median ratio over the rounds
is the verdict, with the spread beside it.
"""

from __future__ import annotations

import statistics

from bench.runner import Runner

PAIRS = ("echo-session-push", "sdk-push-session", "echo-session-fetch", "sdk-fetch-session")
CLIENTS = (1, 8)


def run(runner: Runner, rounds: int, seconds: float) -> dict[str, dict[str, float]]:
    """{"<scenario>@<clients>": {"cpu": median aio/sync service CPU per call, "cpu_lo", "cpu_hi",
    "p50": median aio/sync p50, "tput": median aio/sync throughput}}"""
    ratios: dict[str, dict[str, list[float]]] = {}
    for round_no in range(rounds):
        for clients in CLIENTS:
            for name in PAIRS:
                # Alternate which server goes first, so a drift in load favours neither.
                order = [name, f"aio-{name}"]
                if round_no % 2:
                    order.reverse()
                got = {n: runner.measure(n, clients, seconds).summary()[0] for n in order}
                sync, aio = got[name], got[f"aio-{name}"]
                into = ratios.setdefault(f"{name}@{clients}", {"cpu": [], "p50": [], "tput": []})
                into["cpu"].append(aio.service_cpu_us / sync.service_cpu_us)
                into["p50"].append(aio.p50 / sync.p50)
                into["tput"].append(aio.throughput / sync.throughput)
        print(f"bench: A/B round {round_no + 1}/{rounds} done", flush=True)
    return {
        key: {
            "cpu": statistics.median(r["cpu"]),
            "cpu_lo": min(r["cpu"]),
            "cpu_hi": max(r["cpu"]),
            "p50": statistics.median(r["p50"]),
            "tput": statistics.median(r["tput"]),
        }
        for key, r in ratios.items()
    }


def table(found: dict[str, dict[str, float]]) -> str:
    rows = [
        "grpc.aio twin / sync service, alternating rounds (median ratio; < 1: aio better for "
        "CPU and p50, > 1 for throughput)",
        f"{'scenario':<26}{'CPU/call':>9}{'(min-max)':>14}{'p50':>7}{'calls/s':>9}",
    ]
    for key, r in found.items():
        spread = f"{r['cpu_lo']:.2f}-{r['cpu_hi']:.2f}"
        rows.append(f"{key:<26}{r['cpu']:>9.2f}{spread:>14}{r['p50']:>7.2f}{r['tput']:>9.2f}")
    return "\n".join(rows)
