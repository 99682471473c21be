"""`make loadtest`: Redis and the service as processes, then a Locust run against them.

    python -m loadtest.run [--scenario paced|stress|capacity] [--seconds 30] [--users 5]
                           [--rate 50] [--web] [--processes N] [--limits paced|stress|failures]
                           [--gevent-echo]

- paced (default): session, unary and echo-floor users at --rate calls/s each, for --seconds;
  fails unless push and fetch keep p50 < 1 ms and p99 under the stated bound.
- stress: the same hot path unpaced plus the size sweep (and the UI browser when
  LEOFLOW_UI_URL is set): the machine saturated on purpose, generous limits.
- capacity: the sub-ms capacity shape (loadtest/capacity.py): the offered rate raised step by
  step; prints the sub-ms capacity and the saturation rate, writes JSON and a PNG.
- --gevent-echo (paced): one more user calling the unary echo from inside Locust's gevent loop,
  as all users did before they got agent processes: beside `echo: unary ...` it shows what
  Locust and gevent would add.
- --web: Locust's web UI (http://127.0.0.1:8089 by default) instead of a headless run; start,
  watch and stop the test from the browser, Ctrl-C here ends it.

The service is `python -m bench.server`: the product server plus the bench-only echo, which
the floor user calls. Everything is written under build/loadtest/ (ignored by git): Locust's
CSV files and HTML report, the exact latencies (latency_us.csv/.json) and for capacity runs
capacity.json and capacity.png. The exit code is Locust's: 1 when a limit was missed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from bench import stack
from leoflow_xcom.testing.paths import ROOT

OUT = ROOT / "build" / "loadtest"
PACED = ["SessionHotPathUser", "UnaryHotPathUser", "EchoFloorUser"]
STRESS = ["SessionHotPathUser", "UnaryHotPathUser", "SizeSweepUser"]
CAPACITY = ["SessionHotPathUser", "UnaryHotPathUser"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.run")
    parser.add_argument("--scenario", choices=("paced", "stress", "capacity"), default="paced")
    parser.add_argument("--seconds", type=int, default=30, help="run time (not for capacity)")
    parser.add_argument("--users", type=int, default=None, help="default: 5 (capacity: 4)")
    parser.add_argument("--rate", type=float, default=50.0, help="paced: calls/s per user")
    parser.add_argument("--limits", choices=("paced", "stress", "failures"), default=None)
    parser.add_argument("--web", action="store_true", help="Locust's web UI instead of headless")
    parser.add_argument("--web-port", type=int, default=8089)
    parser.add_argument("--processes", type=int, default=0, help="Locust worker processes")
    parser.add_argument(
        "--gevent-echo",
        action="store_true",
        help="paced: one more user, the unary echo called from Locust's gevent loop (comparison)",
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: Locust, the service and Redis are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    OUT.mkdir(parents=True, exist_ok=True)
    with stack.start() as running:
        env = {
            **os.environ,
            "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(running.workdir / "signing-key"),
            "LEOFLOW_XCOM_ADDR": running.target,
        }
        cmd = [sys.executable, "-m", "locust", *locust_args(args, OUT)]
        where = f"against {running.target} (bench server: product + echo)"
        if args.web:
            print(f"loadtest: web UI on http://127.0.0.1:{args.web_port} {where}; Ctrl-C ends it")
        else:
            print(f"loadtest: {args.scenario} {where}; results in {OUT.relative_to(ROOT)}/")
        return subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode


def locust_args(args: argparse.Namespace, out: Path) -> list[str]:
    classes = {"paced": PACED, "stress": STRESS, "capacity": CAPACITY}[args.scenario]
    if args.scenario == "stress":
        if os.environ.get("LEOFLOW_UI_URL"):
            classes = [*classes, "UiBrowserUser"]
            print(f"loadtest: LEOFLOW_UI_URL is set: browsing {os.environ['LEOFLOW_UI_URL']}")
        else:
            print("loadtest: LEOFLOW_UI_URL is not set: skipping the UI-browsing scenario")
    locustfile = "loadtest/capacity.py" if args.scenario == "capacity" else "loadtest/locustfile.py"
    rate = 0.0 if args.scenario == "stress" else args.rate
    users = args.users or (4 if args.scenario == "capacity" else 5)
    if args.gevent_echo and args.scenario == "paced":
        classes = [*classes, "GeventEchoUser"]
        users += 1
    cmd = [
        "-f",
        locustfile,
        "--xcom-rate",
        str(rate),
        "--xcom-out",
        str(out),
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "locust-report.html"),
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    if args.limits or args.scenario == "capacity":
        cmd += ["--xcom-limits", args.limits or "failures"]
    if args.scenario == "capacity":
        cmd += ["--xcom-users", str(users)]  # the shape starts them; it decides the time too
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    if args.web:
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(args.web_port)]
        cmd += ["--users", str(users), "--spawn-rate", str(users)]
    elif args.scenario == "capacity":
        cmd += ["--headless", "--only-summary"]
    else:
        cmd += ["--headless", "--only-summary", "--users", str(users)]
        cmd += ["--spawn-rate", str(users), "--run-time", f"{args.seconds}s"]
    return [*cmd, *classes]


if __name__ == "__main__":
    sys.exit(main())
