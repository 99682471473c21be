"""The UI proxy (`leoflow-xcom ui`, gunicorn + uvicorn, its read-only ACL user) against a real
Redis Cluster and a real Sentinel group: `~` listings across runs on every shard, an entry's
value, the browser's overview, health and metrics. Data is written by the store's own writer,
as the service writes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

from leoflow_xcom.core import keys
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.store.connection import node_for, primaries
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.dag_data import publish_test_policies
from tests.proxy import conftest as proxy_fixtures
from tests.proxy.conftest import (
    Proxy,
    start_proxy,
    stop_proxy,
)
from tests.redis_modes import RedisTarget, cluster_settings, sentinel_settings

RUNS = 12


@pytest.fixture(params=["cluster", "sentinel"])
def deployed(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RedisTarget, Proxy]]:
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        nodes = cluster.nodes
        settings = cluster_settings(cluster)
        env: dict[str, str] = {
            "LEOFLOW_REDIS_MODE": "cluster",
            "LEOFLOW_REDIS_NODES": cluster.nodes_setting,
        }
    else:
        group: LocalSentinelGroup = request.getfixturevalue("redis_sentinel")
        nodes = group.servers
        settings = sentinel_settings(group)
        env = {
            "LEOFLOW_REDIS_MODE": "sentinel",
            "LEOFLOW_REDIS_NODES": group.nodes_setting,
            "LEOFLOW_REDIS_SENTINEL_MASTER": group.master,
        }
    target = RedisTarget(
        request.param, settings.model_dump(include={"mode", "nodes", "sentinel_master"})
    )
    target.flushall()
    # ACLs are per node, and only the product's own rules: a cluster client's needs (slot map,
    # READONLY, ASKING) must already be in them.
    for node in nodes:
        proxy_fixtures.create_acl_users(node)
    # start_proxy would write the standalone rules on one node only: these stand.
    monkeypatch.setattr(proxy_fixtures, "create_acl_users", lambda server: None)
    proxy = start_proxy(nodes[0], tmp_path, verify=True, **env)
    yield target, proxy
    stop_proxy(proxy)


def test_listings_values_and_overview_through_the_proxy(
    deployed: tuple[RedisTarget, Proxy],
) -> None:
    target, proxy = deployed
    client = target.raw()
    publish_test_policies(cast(redis.Redis, client))
    writer = XComWriter(client)
    for i in range(RUNS):
        writer.push("test_dag", f"run_{i:02d}", XComRef("a", "out"), f'{{"n": {i}}}'.encode(), 600)
    if target.mode == "cluster":  # the runs really are spread over the shards
        owners = {
            node_for(
                client, keys.run_keys("test_dag", f"run_{i:02d}").index
            ).connection_pool.connection_kwargs["port"]
            for i in range(RUNS)
        }
        assert len(owners) == len(primaries(client)) == 3
    with proxy.client() as http:
        assert http.get("/health").status_code == 200
        listing = http.get(
            "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries", params={"limit": 100}
        ).json()
        assert listing["total_entries"] == RUNS
        assert sorted(e["run_id"] for e in listing["xcom_entries"]) == [
            f"run_{i:02d}" for i in range(RUNS)
        ]
        entry = http.get(
            "/api/v2/dags/test_dag/dagRuns/run_07/taskInstances/a/xcomEntries/out"
        ).json()
        assert entry["value"] == '{"n": 7}' or entry["value"] == {"n": 7}
        overview = http.get("/")
        assert overview.status_code == 200 and "test_dag" in overview.text
        metrics = http.get("/metrics").text
        assert "redis" in metrics
    client.close()
