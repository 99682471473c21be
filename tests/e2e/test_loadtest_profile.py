"""The Compose `loadtest` profile for real: the Locust image drives the running appliance.

The image `make compose-test` built from compose/Dockerfile.loadtest runs the paced scenario
headless for a bounded time against the appliance (host-network override), through
`docker compose --profile loadtest run`, with no target flag (the service's environment gives
it). Fails on any failed call or on a hot-path scenario that made no requests, and prints one
`compose-test: locust ...` line with Locust's counts and the exact percentiles.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from leoflow_xcom import __version__
from tests.e2e.conftest import Stack, _run

pytestmark = pytest.mark.e2e

LOCUST_IMAGE = os.environ.get("LEOFLOW_E2E_LOCUST_IMAGE", f"leoflow/xcom-locust:{__version__}")
SECONDS = 20
HOT = ("session: push", "session: fetch", "unary: push", "unary: fetch")


@pytest.fixture(scope="module")
def appliance(engine: None, workdir: Path) -> Iterator[Stack]:
    if _run(["docker", "image", "inspect", LOCUST_IMAGE]).returncode != 0:
        pytest.fail(f"image {LOCUST_IMAGE} missing: `make compose-test` builds it", pytrace=False)
    stack = Stack(workdir)
    with stack.env_file.open("a") as env:
        env.write(f"LEOFLOW_LOCUST_IMAGE={LOCUST_IMAGE}\n")
    try:
        stack.up()
        yield stack
    finally:
        stack.down(volumes=True)


def test_loadtest_profile_drives_the_hot_path(appliance: Stack, workdir: Path) -> None:
    out = workdir / "locust-out"
    out.mkdir()
    out.chmod(0o777)  # written by the image's non-root user
    done = appliance.compose_run(
        "--profile", "loadtest", "run", "--rm", "--no-deps",
        "-v", f"{out}:/out", "-e", "LEOFLOW_LOADTEST_OUT=/out",
        "locust",
        "locust", "-f", "/app/loadtest/locustfile.py", "--headless", "--only-summary",
        "--users", "4", "--spawn-rate", "4", "--run-time", f"{SECONDS}s",
        "--xcom-limits", "failures", "--csv", "/out/locust", "--html", "/out/report.html",
        "SessionHotPathUser", "UnaryHotPathUser",
        timeout=SECONDS + 120,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert "PASS session: push" in log, log[-4000:]
    assert done.returncode == 0, log[-4000:]
    exact = json.loads((out / "latency_us.json").read_text())
    by_name = {row["name"]: row for row in exact["latencies"]}
    for name in HOT:
        assert by_name.get(name, {}).get("count", 0) > 0, f"{name} made no requests"
    with (out / "locust_stats.csv").open() as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    assert failures == 0 and requests > 0
    assert (out / "report.html").stat().st_size > 0
    agg = exact["aggregate"]
    figures = ", ".join(
        f"{name} {by_name[name]['p50_us']}/{by_name[name]['p99_us']} µs" for name in HOT
    )
    print(
        f"\ncompose-test: locust {requests} requests, {failures} failures, "
        f"p50 {agg['p50_us'] / 1000:.3f} ms, p99 {agg['p99_us'] / 1000:.3f} ms "
        f"(exact p50/p99: {figures})"
    )
