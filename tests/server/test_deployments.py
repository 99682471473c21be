"""The real gRPC service (in-process, on a loopback socket) on a real Redis Cluster and a real
Sentinel group, through the SDK: push, fetch, list, mapped fan-in, clear, a policy published
while it runs (live reload), health, and the runs listed across shards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leoflow_xcom.client import NO_RETRY, XComClient
from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.server import app
from leoflow_xcom.settings import ServeSettings
from leoflow_xcom.store.registry import PolicyStore
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint
from tests.redis_modes import RedisTarget, cluster_settings, sentinel_settings


@pytest.fixture(params=["cluster", "sentinel"])
def deployed(
    request: pytest.FixtureRequest, signing_key_file: Path
) -> Iterator[tuple[RedisTarget, str]]:
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        settings = cluster_settings(cluster)
    else:
        group: LocalSentinelGroup = request.getfixturevalue("redis_sentinel")
        settings = sentinel_settings(group)
    target = RedisTarget(
        request.param, settings.model_dump(include={"mode", "nodes", "sentinel_master"})
    )
    target.flushall()
    raw = target.raw()
    publish_test_policies(cast(redis.Redis, raw))
    raw.close()
    running = app.start(
        ServeSettings(
            listen="127.0.0.1:0",
            signing_key_file=signing_key_file,
            workers=16,
            metrics_listen="",
            policy_refresh_seconds=0.1,
        ),
        settings,
    )
    yield target, f"127.0.0.1:{running.port}"
    running.stop(0)


def test_the_service_works_on_each_deployment(
    deployed: tuple[RedisTarget, str], mint: Mint
) -> None:
    target, address = deployed

    def sdk(**claims: object) -> XComClient:
        return XComClient(address, mint(**claims), timeout=5, retry=NO_RETRY)

    runs = [f"run_{i}" for i in range(9)]
    for run in runs:
        with sdk(run_id=run, task_id="a") as a:
            a.push("typed", {"rows": 3})
        for index in range(3):
            with sdk(run_id=run, task_id="mapped", map_index=index) as m:
                m.push("out", index)
    with sdk(run_id="run_4", task_id="b") as b:
        assert b.pull("a", "typed") == {"rows": 3}
    with sdk(run_id="run_4", task_id="fanin") as f:
        assert f.pull_many("mapped", "out") == {0: 0, 1: 1, 2: 2}
        assert f.list(task_id="mapped").total_entries == 3
    with sdk(run_id="run_8", task_id="a", control_plane=True) as control:
        assert control.clear("test_dag", "run_8") == 4
    runs.remove("run_8")
    raw = target.raw()
    try:
        assert sorted(r for _, r in RunRegistry(raw).page("test_dag", 0, 100)) == runs
        # A policy published while the service runs is picked up without a restart.
        PolicyStore(raw).publish(
            [policy_from_document({"dag_id": "late_dag", "tasks": [{"task_id": "t"}]}, "test")]
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with sdk(dag_id="late_dag", run_id="r", task_id="t") as late:
                    late.push("k", 1)
                break
            except Exception:
                assert time.monotonic() < deadline, "the new policy never reached the service"
                time.sleep(0.2)
    finally:
        raw.close()
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
