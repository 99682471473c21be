"""The gRPC service's memory warning: one log line when Redis crosses the threshold, one when
it is back under (grpc.health stays SERVING: it has no warning state)."""

from __future__ import annotations

import logging

import pytest
import redis

from leoflow_xcom.telemetry.memory import MemoryWatch


def test_warns_once_on_crossing_and_once_on_recovery(
    r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    old = str(r.config_get("maxmemory")["maxmemory"])
    watch = MemoryWatch(r, warn_ratio=0.8)
    caplog.set_level(logging.INFO, logger="leoflow_xcom.telemetry.memory")
    try:
        watch.check()
        assert not watch.warning
        r.config_set("maxmemory", int(int(r.info("memory")["used_memory"]) / 0.9))
        watch.check()
        watch.check()
        assert watch.warning
    finally:
        r.config_set("maxmemory", old)
    watch.check()
    assert not watch.warning
    messages = [rec.getMessage() for rec in caplog.records]
    assert len(messages) == 2
    assert "of maxmemory (warning at 80%)" in messages[0]
    assert "back under 80%" in messages[1]
