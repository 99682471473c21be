"""CI proof that the Locust scenarios run: short headless runs against a real service.

Needs the `loadtest` extra (locust, hdrhistogram), which `make test` installs; without it the
tests fail. Only failures and missing requests fail these runs (`--limits failures`): timing
on a shared CI machine is not asserted here; `make loadtest` applies the sub-millisecond limits.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from leoflow_xcom.testing.paths import ROOT


def _loadtest(*args: str) -> tuple[int, str]:
    # Never import locust here: it monkey-patches the whole process for gevent.
    if importlib.util.find_spec("locust") is None:
        pytest.fail("locust is missing: `make test` installs the loadtest extra", pytrace=False)
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = run.communicate(timeout=70)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: loadtest.run then stops Locust, the service and Redis.
        run.terminate()
        out, _ = run.communicate(timeout=30)
        pytest.fail(f"the load test did not finish in 70 s:\n{out[-3000:]}", pytrace=False)
    return run.returncode, out


@pytest.mark.timeout(80)
def test_paced_scenario_reports_session_unary_and_echo_floor_in_microseconds() -> None:
    # 10 s: the users' agent processes start first (a few seconds on a loaded machine).
    code, out = _loadtest(
        "--seconds", "10", "--users", "5", "--limits", "failures", "--gevent-echo"
    )  # fmt: skip
    failures = ROOT / "build/loadtest/locust_failures.csv"
    why = failures.read_text()[-2000:] if failures.is_file() else "(no locust_failures.csv)"
    assert code == 0, f"{out[-3000:]}\nLocust's failures:\n{why}"
    for name in ("session: push", "session: fetch", "unary: push", "unary: fetch"):
        assert f"PASS {name}: " in out
    assert "PASS echo: session push" in out and "PASS echo: unary push" in out
    assert "PASS gevent echo: unary fetch" in out  # the same echo from inside Locust
    assert "exact latencies (HDR histograms, µs)" in out and "floor echo: session push" in out
    assert "FAIL" not in out
    written = json.loads((ROOT / "build/loadtest/latency_us.json").read_text())
    counted = {row["name"]: row["count"] for row in written["latencies"]}
    assert counted["session: push"] > 0 and counted["echo: unary fetch"] > 0
    assert (ROOT / "build/loadtest/locust-report.html").is_file()
    assert (ROOT / "build/loadtest/locust_stats.csv").is_file()


@pytest.mark.timeout(80)
def test_one_user_skips_the_scenarios_it_did_not_run() -> None:
    code, out = _loadtest("--seconds", "6", "--users", "1", "--limits", "failures")
    assert code == 0, out[-3000:]
    assert out.count("loadtest: SKIP ") == 5  # of session, unary, echo, gevent echo, sweep, ui
    assert "FAIL" not in out


@pytest.mark.timeout(80)
def test_stress_run_with_the_size_sweep() -> None:
    code, out = _loadtest(
        "--scenario", "stress", "--seconds", "8", "--users", "3", "--limits", "failures"
    )  # fmt: skip
    assert code == 0, out[-3000:]
    assert "skipping the UI-browsing scenario" in out
    assert "PASS session: push" in out and "PASS unary: fetch" in out
    assert "PASS sweep: push limit+1 (refused)" in out
    assert "FAIL" not in out
