"""`make bench`: floors and the XCom hot path, side by side, in one run on this machine.

Starts Redis and the service (plus the bench-only echo service on the same server), then
measures with separate client processes: the floors (unary echo, session-stream echo, the raw
redis-py script call a push makes and the GET a fetch makes) and SDK push/fetch over unary
and session, at 1 client and at growing concurrency. Prints a table and the verdict against
issue 5's targets, writes bench-results.json and PNG plots under docs/bench/.

    python -m bench [--quick] [--profile] [--out docs/bench] [--json bench-results.json]

Exit code: 0 when all targets pass, 1 when one fails, 2 when a call failed. Lines in
lower case (pass/miss) are diagnostics, not targets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import profile, report, stack
from bench.runner import ClientPool, Raw, Runner
from bench.stats import Series, cdf_points

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~30 s)")
    parser.add_argument("--profile", action="store_true", help="py-spy the service and a client")
    parser.add_argument(
        "--advisory", action="store_true", help="exit 0 on missed targets (CI smoke on shared CPUs)"
    )
    parser.add_argument("--only", help="comma-separated scenarios to run (default: all)")
    parser.add_argument("--payload", type=int, default=1024, help="value size in bytes")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"))
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args(argv)
    rounds, single, busy = (1, 1.0, 0.7) if args.quick else (3, 1.2, 1.5)
    levels = [1, 8] if args.quick else [1, 2, 4, 8, 16]
    only = set(args.only.split(",")) if args.only else None
    latency = [n for n in LATENCY if only is None or n in only]
    throughput = [n for n in THROUGHPUT if only is None or n in only]
    load_before = os.getloadavg()
    print(f"bench: load average before: {load_before[0]:.2f} (2 cores: >0.5 means noisy)")
    series: list[Series] = []
    cdfs: dict[str, tuple[list[float], list[float]]] = {}
    with stack.start() as running:
        pool = ClientPool(max(levels))
        try:
            runner = Runner(running, pool, args.payload)
            # Floors and SDK runs interleave, round after round, so that noise from other work
            # on the machine lands on all of them alike.
            gathered: dict[str, Raw] = {}
            for _ in range(rounds):
                for name in latency:
                    raw = runner.measure(name, 1, single)
                    gathered[name] = gathered[name].add(raw) if name in gathered else raw
            for name in latency:
                summary, ms = gathered[name].summary()
                series.append(summary)
                cdfs[name] = cdf_points(ms)
            for clients in levels[1:]:
                for name in throughput:
                    series.append(runner.measure(name, clients, busy).summary()[0])
            if args.profile:
                profile.record(runner, pool, args.out)
        finally:
            pool.close()
    load_after = os.getloadavg()
    found = report.checks(series)
    info = {
        **report.machine(),
        "load_before": load_before[0],
        "load_after": load_after[0],
        "payload_bytes": args.payload,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if args.quick else "full",
    }
    print(report.table(series))
    print()
    print(report.verdicts(found))
    print(f"bench: load average after: {load_after[0]:.2f}; machine: {info['cpu']}")
    report.write_json(args.json, series, found, info)
    paths = report.plot(args.out, cdfs, series)
    print(f"bench: wrote {args.json} and {', '.join(str(p) for p in paths)}")
    if any(s.errors for s in series):
        return 2
    if args.advisory:
        return 0
    return 0 if all(c.passed for c in found if not c.diagnostic) else 1


if __name__ == "__main__":
    sys.exit(main())
