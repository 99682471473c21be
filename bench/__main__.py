"""`make bench`: floors and the XCom hot path, side by side, in one run on this machine.

Starts Redis and the service (the product's grpc.aio server, one process, plus the bench-only
echo service on the same server and event loop), then measures with separate client processes:
the floors (unary echo, session-stream echo, the raw redis-py script call a push makes and the
GET a fetch makes, the session echo making that Redis call itself) and SDK push/fetch over
unary and session, at 1 client and at growing concurrency; then `leoflow-xcom serve` with 1
and 2 worker processes at 8 sessions (bench/scaling.py). Prints progress as it goes, then a table
and the verdict against the performance targets, and writes bench-results.json and the PNG
plots under build/bench/ (ignored by git); --update-docs writes the plots (and profiles) into
docs/bench/ instead, to refresh the committed figures.

    python -m bench [--quick] [--profile] [--update-docs] [--out DIR] [--json FILE]
    python -m bench --against REV [--against-rounds N] [--only SCENARIO,...]
                                  (this tree against a git revision, alternating: bench/against.py)

After the scenarios it runs redis-benchmark on the same Redis for the capacity model printed
at the end.

Exit code: 0 when all targets pass, 1 when one fails, 2 when a call failed. Lines in
lower case (pass/miss) are diagnostics, not targets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import against, cluster, profile, redis_bench, report, scaling, stack
from bench.runner import ClientPool, Raw, Runner
from bench.stats import Series, cdf_points

# Plots land in the ignored build/ unless the committed figures are being refreshed.
BUILD_OUT = Path("build/bench")
DOCS_OUT = Path("docs/bench")
JSON_NAME = "bench-results.json"

LATENCY = [
    "echo-unary-push",
    "echo-session-push",
    "echo-sdk-session-push",
    "redis-push",
    "echo-store-session-push",
    "sdk-push-unary",
    "sdk-push-session",
    "sdk-push-aio",
    "echo-unary-fetch",
    "echo-session-fetch",
    "redis-get",
    "echo-store-session-fetch",
    "sdk-fetch-unary",
    "sdk-fetch-session",
    "sdk-fetch-aio",
]
THROUGHPUT = [
    "echo-unary-push",
    "echo-session-push",
    "echo-session-fetch",
    "echo-store-session-push",
    "echo-store-session-fetch",
    "sdk-push-unary",
    "sdk-push-session",
    "sdk-push-aio",
    "sdk-fetch-unary",
    "sdk-fetch-session",
    "sdk-fetch-aio",
]


def _say(what: str) -> None:
    print(f"bench: {what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~90 s)")
    parser.add_argument("--profile", action="store_true", help="py-spy the service and a client")
    parser.add_argument(
        "--advisory", action="store_true", help="exit 0 on missed targets (CI smoke on shared CPUs)"
    )
    parser.add_argument(
        "--only",
        help="comma-separated scenarios to run (default: all); `cluster`: the Redis Cluster "
        "section; `scaling`: the service with 1 vs 2 worker processes",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="only compare this tree with git revision REV, each with its own service and SDK, "
        "in alternating rounds (bench/against.py); --only picks among "
        + ",".join(against.SCENARIOS),
    )
    parser.add_argument(
        "--against-rounds", type=int, default=3, metavar="N", help="rounds for --against (3)"
    )
    parser.add_argument(
        "--levels",
        help="comma-separated client counts, starting with 1 (the latency runs; the others are "
        "throughput runs); default 1,8 with --quick, else 1,2,4,8,16",
    )
    parser.add_argument("--payload", type=int, default=1024, help="value size in bytes")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help=f"write plots and profiles into {DOCS_OUT} (the committed figures)",
    )
    parser.add_argument("--out", type=Path, help=f"plots and profiles (default {BUILD_OUT})")
    parser.add_argument("--json", type=Path, help=f"results (default {BUILD_OUT}/{JSON_NAME})")
    args = parser.parse_args(argv)
    out: Path = args.out or (DOCS_OUT if args.update_docs else BUILD_OUT)
    json_path: Path = args.json or BUILD_OUT / JSON_NAME
    out.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    rounds, single, busy = (1, 1.0, 0.7) if args.quick else (3, 1.2, 1.5)
    levels = [1, 8] if args.quick else [1, 2, 4, 8, 16]
    if args.levels:
        levels = [int(n) for n in args.levels.split(",")]
        if levels[0] != 1 or any(n < 2 for n in levels[1:]):
            parser.error(f"--levels {args.levels}: 1 first (latency), then counts of 2 or more")
    if args.against:
        scenarios = args.only.split(",") if args.only else list(against.SCENARIOS)
        return against.main(args.against, args.against_rounds, scenarios, args.payload, args.json)
    only = set(args.only.split(",")) if args.only else None
    with_cluster = only is None or "cluster" in only
    with_scaling = only is None or "scaling" in only
    latency = [n for n in LATENCY if only is None or n in only]
    throughput = [n for n in THROUGHPUT if only is None or n in only]
    load_before = os.getloadavg()
    print(f"bench: load average before: {load_before[0]:.2f} (2 cores: >0.5 means noisy)")
    series: list[Series] = []
    cdfs: dict[str, tuple[list[float], list[float]]] = {}
    print("bench: starting Redis and the service", flush=True)
    with stack.start() as running:
        pool = ClientPool(max(*levels, report.SESSIONS) if with_scaling else max(levels))
        try:
            runner = Runner(running, pool, args.payload)
            # Floors and SDK runs interleave, round after round, so that noise from other work
            # on the machine lands on all of them alike.
            gathered: dict[str, Raw] = {}
            steps = rounds * len(latency) + len(levels[1:]) * len(throughput)
            if with_scaling:
                steps += rounds * len(scaling.SCENARIOS) * len(scaling.PROCESSES)
            done = 0
            started = time.monotonic()

            def progress(what: str) -> None:
                nonlocal done
                done += 1
                elapsed = time.monotonic() - started
                print(f"bench: [{done}/{steps}] {what} ({elapsed:.0f} s)", flush=True)

            for round_no in range(rounds):
                for name in latency:
                    raw = runner.measure(name, 1, single)
                    gathered[name] = gathered[name].add(raw) if name in gathered else raw
                    progress(f"round {round_no + 1}/{rounds} {name}, 1 client")
            for name in latency:
                summary, ms = gathered[name].summary()
                series.append(summary)
                cdfs[name] = cdf_points(ms)
            for clients in levels[1:]:
                for name in throughput:
                    series.append(runner.measure(name, clients, busy).summary()[0])
                    progress(f"{name}, {clients} clients")
            if with_scaling:
                # The product's own `serve`, 1 and then 2 worker processes, on the same Redis.
                series += scaling.measure(running, pool, args.payload, rounds, busy, progress)
            if args.profile:
                print("bench: profiling with py-spy", flush=True)
                profile.record(runner, pool, out)
            # Last, on the same Redis: its own ceiling per shard, for the capacity model.
            shard: dict[str, float] = {}
            if only is None and redis_bench.available():
                print("bench: redis-benchmark on the bench's Redis (GET, push script)", flush=True)
                shard = redis_bench.measure(running.redis.port, args.payload, args.quick)
            elif only is None:
                print("bench: no redis-benchmark (Debian: redis-tools): no per-shard figures")
        finally:
            if not with_cluster:
                pool.close()
    found_cluster: list[report.Check] = []
    if with_cluster:
        # After the main stack stopped: the cluster section runs its own standalone beside it.
        print("bench: Redis Cluster section (3+3 nodes) beside standalone", flush=True)
        try:
            more, found_cluster = cluster.measure(pool, args.payload, rounds, single, _say)
        finally:
            pool.close()
        series += more
    load_after = os.getloadavg()
    found = report.checks(series) + found_cluster
    info = {
        **report.machine(),
        "load_before": load_before[0],
        "load_after": load_after[0],
        "payload_bytes": args.payload,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if args.quick else "full",
        "redis_benchmark": shard,
    }
    print(report.table(series))
    print()
    processes = scaling.table(series)
    if processes:
        print(processes)
        print()
    print(report.verdicts(found))
    print()
    print(report.model(series, shard))
    print(f"bench: load average after: {load_after[0]:.2f}; machine: {info['cpu']}")
    report.write_json(json_path, series, found, info)
    paths = report.plot(out, cdfs, series)
    print(f"bench: wrote {json_path} and {', '.join(str(p) for p in paths)}")
    if any(s.errors for s in series):
        return 2
    if args.advisory:
        return 0
    return 0 if all(c.passed for c in found if not c.diagnostic) else 1


if __name__ == "__main__":
    sys.exit(main())
