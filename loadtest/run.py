"""`make loadtest`: Redis and the service as processes, then a bounded headless Locust run.

    python -m loadtest.run [--seconds 45] [--users 12]

Runs the hot-path and size-sweep scenarios; adds the UI scenario only when LEOFLOW_UI_URL is
set (the HTTP proxy, with LEOFLOW_UI_USER / LEOFLOW_UI_PASSWORD), and says so. The exit code is
Locust's: 1 when a threshold in loadtest/locustfile.py was missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from bench import stack
from tests.redis_proc import ROOT

SERVE = [sys.executable, "-m", "leoflow_xcom.cli.main", "serve"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.run")
    parser.add_argument("--seconds", type=int, default=45)
    parser.add_argument("--users", type=int, default=12)
    args = parser.parse_args(argv)
    classes = ["HotPathUser", "SizeSweepUser"]
    if os.environ.get("LEOFLOW_UI_URL"):
        classes.append("UiBrowserUser")
        print(f"loadtest: LEOFLOW_UI_URL is set: browsing {os.environ['LEOFLOW_UI_URL']} too")
    else:
        print("loadtest: LEOFLOW_UI_URL is not set: skipping the UI-browsing scenario (3)")
    with stack.start(command=SERVE) as running:
        env = {
            **os.environ,
            "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(running.workdir / "signing-key"),
        }
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "loadtest/locustfile.py",
            "--headless",
            "--host",
            running.target,
            "--users",
            str(args.users),
            "--spawn-rate",
            str(args.users),
            "--run-time",
            f"{args.seconds}s",
            "--stop-timeout",
            "5",
            "--only-summary",
            "--loglevel",
            "WARNING",
            *classes,
        ]
        print(f"loadtest: {args.users} users for {args.seconds} s against {running.target}")
        return subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
