"""The gRPC service's memory warning: one log line when Redis crosses the threshold, one when
it is back under (grpc.health stays SERVING: it has no warning state)."""

from __future__ import annotations

import logging

import pytest
import redis

from leoflow_xcom.telemetry.memory import MemoryWatch
from tests.deployment import Deployment


def test_warns_once_on_crossing_and_once_on_recovery(
    r: redis.Redis, redis_deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    # One node past the threshold: on a cluster, the watch follows the fullest shard.
    node = redis_deployment.primary_for("xcom:{any}:i").client()
    old = str(node.config_get("maxmemory")["maxmemory"])
    watch = MemoryWatch(r, warn_ratio=0.8)
    caplog.set_level(logging.INFO, logger="leoflow_xcom.telemetry.memory")
    try:
        watch.check()
        assert not watch.warning
        node.config_set("maxmemory", int(int(node.info("memory")["used_memory"]) / 0.9))
        watch.check()
        watch.check()
        assert watch.warning
    finally:
        node.config_set("maxmemory", old)
        node.close()
    watch.check()
    assert not watch.warning
    messages = [rec.getMessage() for rec in caplog.records]
    assert len(messages) == 2
    assert "of maxmemory (warning at 80%)" in messages[0]
    assert "back under 80%" in messages[1]
