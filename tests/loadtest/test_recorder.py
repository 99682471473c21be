"""The exact-latency recorder against known durations (no Locust in this process)."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.recorder import NO_STEP, LatencyRecorder


def test_sub_millisecond_values_stay_distinct() -> None:
    recorder = LatencyRecorder()
    for seconds in (0.000450, 0.000451, 0.000999, 0.001400):
        recorder.record("session: push", seconds)
    summary = recorder.summary("session: push")
    assert summary is not None
    assert summary.count == 4
    assert summary.p50_us == 451  # Locust's table would say 0 or 1 ms for all of these
    assert summary.max_us == 1400
    assert summary.p90_us == 1400
    assert summary.p99_us == 1400


def test_percentiles_of_a_known_distribution() -> None:
    recorder = LatencyRecorder()
    for us in range(1, 1001):  # 1..1000 µs, once each
        recorder.record("unary: fetch", us / 1_000_000)
    summary = recorder.summary("unary: fetch")
    assert summary is not None
    assert (summary.p50_us, summary.p90_us, summary.p99_us, summary.p999_us) == (500, 900, 990, 999)
    assert summary.max_us == 1000
    recorder.record("unary: push", 0.002)  # another name: the aggregate counts both
    total = recorder.aggregate()
    assert total is not None and (total.count, total.p50_us, total.max_us) == (1001, 501, 2000)


def test_merging_workers_is_exact() -> None:
    """Two workers' drained histograms added on the master equal one recorder that saw all."""
    alone, master = LatencyRecorder(), LatencyRecorder()
    workers = [LatencyRecorder(), LatencyRecorder()]
    for i in range(3000):
        us = 200 + (i * 37) % 2500  # 0.2-2.7 ms, spread
        name = "session: push" if i % 3 else "session: fetch"
        alone.record(name, us / 1_000_000)
        workers[i % 2].record(name, us / 1_000_000)
    for worker in workers:
        master.merge(json.loads(json.dumps(worker.drain())))  # as Locust's messages carry it
        assert worker.summaries() == []  # drained: the next report starts afresh
    assert master.summaries() == alone.summaries()
    # A second report of the same worker adds to what the master has.
    workers[0].record("session: push", 0.000333)
    master.merge(workers[0].drain())
    assert master.count("session: push") == alone.count("session: push") + 1


def test_steps_are_kept_apart_and_files_written(tmp_path: Path) -> None:
    recorder = LatencyRecorder()
    recorder.record("unary: push", 0.0005)
    recorder.step = "step 1"
    recorder.record("unary: push", 0.0021)
    assert recorder.count("unary: push", NO_STEP) == 1
    assert recorder.count("unary: push", "step 1") == 1
    csv_path, json_path = recorder.write(tmp_path)
    rows = json.loads(json_path.read_text())["latencies"]
    # Above 2048 µs three significant digits mean 2 µs buckets: 2100 reads as 2101.
    assert [(r["step"], r["p50_us"]) for r in rows] == [("", 500), ("step 1", 2101)]
    assert csv_path.read_text().splitlines()[0].startswith("step,name,count,p50_us")


def test_a_late_report_goes_to_the_step_its_call_ran_in() -> None:
    recorder = LatencyRecorder()
    recorder.step = "step 1"
    recorder.record("session: push", 0.000300)
    recorder.step = "step 2"  # the shape moved on before the round's answers arrived
    recorder.record("session: push", 0.000400, step="step 1")
    recorder.record("session: push", 0.000500)
    assert recorder.count("session: push", "step 1") == 2
    assert recorder.count("session: push", "step 2") == 1
