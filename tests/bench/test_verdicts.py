"""The bench's verdict on the CPU and throughput targets: computed from the run's own floors,
failing the run when missed (a target that cannot fail would be no target)."""

from __future__ import annotations

from bench import report, scaling
from bench.stats import Series


def _series(
    scenario: str, clients: int, *, svc: float = 0.0, cli: float = 0.0, tput: float = 1.0
) -> Series:
    return Series(scenario, clients, 100, 0, 1.0, 0.3, 0.3, 0.5, 0.6, 0.7, tput, svc, cli, 10.0)


def _run(push_cpu: float, push_tput: float) -> list[report.Check]:
    return report.checks(
        [
            _series("redis-push", 1, cli=60.0),
            _series("echo-session-push", 8, svc=100.0, tput=5000.0),
            _series("echo-store-session-push", 8, svc=200.0, tput=3000.0),
            _series("sdk-push-session", 1, svc=push_cpu),
            _series("sdk-push-session", 8, svc=push_cpu, tput=push_tput),
        ]
    )


def _named(found: list[report.Check], part: str) -> report.Check:
    return next(c for c in found if part in c.name and not c.diagnostic)


def test_service_cpu_target_is_relative_to_echo_plus_raw_client() -> None:
    within = _named(_run(push_cpu=240.0, push_tput=2700.0), "CPU per session call")
    assert within.passed and abs(within.measured - 240 / 160) < 1e-9
    over = _named(_run(push_cpu=241.0, push_tput=2700.0), "CPU per session call")
    assert not over.passed


def test_throughput_target_is_the_composite_floor() -> None:
    found = _run(push_cpu=200.0, push_tput=2650.0)
    target = _named(found, "throughput at 8 sessions")
    assert "echo-store-session-push" in target.name and not target.passed
    assert _named(_run(push_cpu=200.0, push_tput=2700.0), "throughput at 8 sessions").passed


def test_latency_targets_are_the_issue_figures() -> None:
    assert report.HOT_PATH_P50_MS == 1.0
    assert (report.PUSH_P50_MS, report.FETCH_P50_MS, report.P99_MS) == (0.45, 0.36, 0.8)


def test_sub_millisecond_p50_decides_and_the_older_target_is_reported() -> None:
    def p50_checks(p50: float) -> list[report.Check]:
        one = Series("sdk-push-session", 1, 100, 0, 1.0, p50, p50, 0.5, 0.6, 0.7, 1.0, 1, 1, 1)
        return [c for c in report.checks([one]) if "SDK session) p50, 1 client" in c.name]

    verdict, older = p50_checks(0.8)
    assert verdict.passed and not verdict.diagnostic and verdict.limit == 1.0
    assert not older.passed and older.diagnostic and older.limit == 0.45  # shown, not failing
    verdict, _ = p50_checks(1.2)
    assert not verdict.passed


def test_model_names_cores_and_shards() -> None:
    text = report.model(
        [_series("sdk-push-session", 8, svc=250.0)], {"push": 8000.0, "push-usec": 100.0}
    )
    assert "4,000 calls/s per service core" in text
    # 63 workers x 4,000/s = 252,000/s of service against 8,000/s per shard: 32 shards.
    assert "64 cores, 63 workers" in text and "32 shard(s)" in text


def test_targets_are_the_product_service_only() -> None:
    """One concurrency model: no twin's rows among the checks."""
    found = _run(push_cpu=200.0, push_tput=2700.0)
    assert found and not any("aio twin" in c.name for c in found)


def test_scaling_table_prints_one_against_two_processes() -> None:
    series = [
        _series("processes-1:sdk-push-session", 8, svc=300.0, tput=2000.0),
        _series("processes-2:sdk-push-session", 8, svc=320.0, tput=3000.0),
    ]
    text = scaling.table(series)
    assert "sdk-push-session" in text and "1.50" in text
    assert scaling.table(series[:1]) == ""
