"""Limits per scenario that ran; the capacity analysis; pacing (no Locust in this process)."""

from __future__ import annotations

from loadtest import knee, verdict
from loadtest.pacing import Pacer, Rate
from loadtest.recorder import Summary


def _exact(name: str, p50: int, p99: int, count: int = 100, step: str = "") -> Summary:
    return Summary(step, name, count, p50, p50, p99, p99, p99)


def test_a_scenario_without_users_is_skipped_not_failed() -> None:
    counts = {"session: push": (10, 0), "session: fetch": (8, 0)}
    exact = {"session: push": _exact("session: push", 400, 900)}
    exact["session: fetch"] = _exact("session: fetch", 300, 800)
    result = verdict.evaluate(verdict.PACED, counts, exact)
    assert not result.failed, result.lines
    assert "SKIP unary: no user ran this scenario" in result.lines
    assert "SKIP echo: no user ran this scenario" in result.lines


def test_a_run_without_any_request_fails() -> None:
    result = verdict.evaluate(verdict.PACED, {}, {})
    assert result.failed
    assert "FAIL no scenario made any request: nothing was measured" in result.lines


def test_sub_ms_limits_fail_the_run() -> None:
    counts = {"unary: push": (10, 0), "unary: fetch": (10, 0)}
    exact = {"unary: push": _exact("unary: push", 1000, 2000)}
    exact["unary: fetch"] = _exact("unary: fetch", 999, verdict.PACED_P99_US)
    result = verdict.evaluate(verdict.PACED, counts, exact)
    assert result.failed
    fails = [line for line in result.lines if line.startswith("FAIL")]
    assert len(fails) == 2  # p50 of exactly 1 ms is not under 1 ms; p99 at the bound is not under
    assert "p50 1000 µs (limit < 1000)" in fails[1]


def test_a_ran_scenario_missing_a_hot_path_request_fails() -> None:
    counts = {"session: push": (10, 0)}
    exact = {"session: push": _exact("session: push", 400, 900)}
    result = verdict.evaluate(verdict.PACED, counts, exact)
    assert result.failed
    assert "FAIL session: fetch: the scenario ran but made no such request" in result.lines


def test_failures_fail_even_without_latency_limits() -> None:
    counts = {"echo: session push": (10, 1), "echo: unary push": (10, 0), "other": (3, 1)}
    result = verdict.evaluate(verdict.PACED, counts, {})
    assert result.failed
    assert any(
        line.startswith("FAIL echo: session push: 10 calls, 1 failed") for line in result.lines
    )
    assert "FAIL other: 1 of 3 failed" in result.lines


def test_capacity_knee_and_saturation() -> None:
    names = ("session: push", "session: fetch")

    def step(label: str, offered: float, calls: int, p50: int, p99: int) -> knee.Step:
        lat = {n: _exact(n, p50, p99, calls // 2, label) for n in names}
        return knee.Step(label, offered, 10.0, calls, lat)

    steps = [
        step("step 1", 100, 1000, 400, 800),
        step("step 2", 200, 2000, 500, 950),
        step("step 3", 400, 3990, 700, 1500),  # within rate, tail over 1 ms
        step("step 4", 800, 5000, 3000, 9000),  # fell short: saturated
    ]
    result = knee.analyse(steps)
    assert result.sub_ms_capacity == 200
    assert result.saturation == 800
    assert result.max_achieved == 500
    assert "sub-ms capacity: 200 calls/s" in result.lines()[-1]


def test_pacer_keeps_the_rate_and_never_bursts_after_falling_behind() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    rate = Rate(100.0)
    pacer = Pacer(rate, clock=lambda: now[0], sleep=sleep)
    for _ in range(101):
        pacer.wait()
    assert 1.0 <= now[0] <= 1.01  # 100 intervals of 10 ms after a random phase under 10 ms
    now[0] += 5.0  # a 5 s stall: the next call goes at once, the one after 10 ms later
    slept.clear()
    pacer.wait()
    pacer.wait()
    assert len(slept) == 1 and abs(slept[0] - 0.01) < 1e-9
    rate.per_user = 0  # unpaced: never waits
    slept.clear()
    pacer.wait()
    assert slept == []
