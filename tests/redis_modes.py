"""Session fixtures for the other two deployments: a real Redis Cluster (3 primaries + 3
replicas) and a real Sentinel group (1 primary, 2 replicas, 3 Sentinels), each started once per
session on loopback by the suite, with its bring-up time printed.

`LEOFLOW_TEST_REDIS_MODES` chooses which deployments the mode-parametrized suites run against:
`standalone` by default (`make test`), `standalone,cluster,sentinel` in `make cluster-test`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import StoreClient, connect, node_for, primaries
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.redis_proc import RedisProcess, find_binary

REDIS_MODES = [m for m in os.environ.get("LEOFLOW_TEST_REDIS_MODES", "standalone").split(",") if m]
SERVER_KINDS = [k for k in os.environ.get("LEOFLOW_TEST_SERVERS", "valkey,redis").split(",") if k]
# The server binary the cluster and Sentinel group run: the first of LEOFLOW_TEST_SERVERS.
_KIND = SERVER_KINDS[0]


def _binary() -> str:
    binary = find_binary(_KIND)
    if binary is None:
        pytest.fail(f"no {_KIND} server binary (`make test` installs it)", pytrace=False)
    return binary


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(_binary(), tmp_path_factory.mktemp(f"{_KIND}-cluster")).start()
    print(f"\n{_KIND} cluster 3+3 up in {cluster.bring_up_seconds:.2f} s")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinelGroup]:
    group = LocalSentinelGroup(_binary(), tmp_path_factory.mktemp(f"{_KIND}-sentinel")).start()
    print(
        f"\n{_KIND} Sentinel group (1 primary, 2 replicas, 3 Sentinels) up in "
        f"{group.bring_up_seconds:.2f} s"
    )
    yield group
    group.stop()


def cluster_settings(cluster: LocalCluster, **overrides: object) -> RedisSettings:
    return RedisSettings(mode="cluster", nodes=cluster.nodes_setting, **overrides)  # type: ignore[arg-type]


def sentinel_settings(group: LocalSentinelGroup, **overrides: object) -> RedisSettings:
    base = {"mode": "sentinel", "nodes": group.nodes_setting, "sentinel_master": group.master}
    return RedisSettings(**{**base, **overrides})  # type: ignore[arg-type]


class RedisTarget:
    """One deployment the store contract runs against: how the product connects to it
    (`settings`), a raw admin client for assertions (`raw`, a RedisCluster on a cluster), and
    the plain client of the primary owning a key (`node_of`: per-node INFO, CONFIG, DBSIZE)."""

    def __init__(self, name: str, base: dict[str, object]) -> None:
        self.name = name
        self._base = base

    @property
    def mode(self) -> str:
        return str(self._base.get("mode", "standalone"))

    def settings(self, **overrides: object) -> RedisSettings:
        return RedisSettings(**{**self._base, **overrides})  # type: ignore[arg-type]

    def raw(self) -> StoreClient:
        return connect(self.settings(socket_timeout=5, connect_timeout=5))

    def node_of(self, raw: StoreClient, key: str) -> redis.Redis:
        return node_for(raw, key)

    def flushall(self) -> None:
        raw = self.raw()
        try:
            for node in primaries(raw):
                node.flushall()
                node.config_set("maxmemory", "512mb")
        finally:
            raw.close()


@pytest.fixture(scope="session")
def _standalone_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    started: dict[str, RedisProcess] = {}
    urls: dict[str, str] = {}
    for kind in SERVER_KINDS:
        if "standalone" not in REDIS_MODES:
            break
        binary = find_binary(kind)
        if binary is None:
            pytest.fail(f"no {kind} server binary (`make test` installs it)", pytrace=False)
        started[kind] = RedisProcess(binary, tmp_path_factory.mktemp(f"{kind}-target")).start()
        urls[kind] = started[kind].url
    yield urls
    for server in started.values():
        server.stop()


def _target_ids() -> list[str]:
    ids = [k for k in SERVER_KINDS] if "standalone" in REDIS_MODES else []
    return ids + [m for m in REDIS_MODES if m in ("cluster", "sentinel")]


@pytest.fixture(scope="session", params=_target_ids())
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    """Every deployment of LEOFLOW_TEST_REDIS_MODES (standalone: every server kind)."""
    name = str(request.param)
    if name == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return RedisTarget(name, {"mode": "cluster", "nodes": cluster.nodes_setting})
    if name == "sentinel":
        group: LocalSentinelGroup = request.getfixturevalue("redis_sentinel")
        return RedisTarget(
            name,
            {"mode": "sentinel", "nodes": group.nodes_setting, "sentinel_master": group.master},
        )
    urls: dict[str, str] = request.getfixturevalue("_standalone_servers")
    return RedisTarget(name, {"url": urls[name]})
