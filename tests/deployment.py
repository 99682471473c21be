"""The Redis deployment the suite's everyday fixtures run against.

`LEOFLOW_TEST_REDIS_MODE=standalone|cluster|sentinel` (default standalone) switches, for the
whole session, what `r`, `start_service`, `service` and the UI proxy's `proxy` fixture talk
to: one Redis process (`make test`), a 3+3 Redis Cluster or a Sentinel group (1 primary,
2 replicas, 3 Sentinels), both started once per session by tests/redis_modes.py.
`make cluster-test` runs the proxy suite and the service's store-touching suites once per
non-standalone mode. A test that cannot mean anything on a mode carries
`@pytest.mark.standalone_only("why")`: on the other modes it is reported as skipped with
that reason (pytest's `-ra` summary prints it), never dropped in silence.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import redis

from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import StoreClient, connect, node_for, primaries
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.sentinel import LocalSentinelGroup

MODES = ("standalone", "cluster", "sentinel")
TEST_REDIS_MODE = os.environ.get("LEOFLOW_TEST_REDIS_MODE", "standalone") or "standalone"


class Deployment:
    """One running deployment: how the product connects to it (`settings`, `env`), its data
    nodes (`nodes`: ACLs are per node), a raw admin client (`client`) and the process holding
    a key's primary copy (`primary_for`: pause it to stall that key's store)."""

    def __init__(
        self,
        mode: str,
        nodes: list[RedisProcess],
        fields: dict[str, str],
        env: dict[str, str],
        sentinel_primary: Callable[[], int | None] | None = None,
    ) -> None:
        self.mode = mode
        self.nodes = nodes
        self._fields = fields
        self._env = env
        self._sentinel_primary = sentinel_primary

    def settings(self, **overrides: object) -> RedisSettings:
        return RedisSettings(**{**self._fields, **overrides})  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """LEOFLOW_REDIS_* for a subprocess (`leoflow-xcom ui`, `serve`)."""
        return dict(self._env)

    def client(self) -> redis.Redis:
        """An admin client with the product's own connection code (a RedisCluster on a
        cluster, typed as redis.Redis so tests read alike on every mode); the caller closes
        it."""
        if self.mode == "standalone":
            return self.nodes[0].client()
        return cast(redis.Redis, connect(self.settings(socket_timeout=5, connect_timeout=5)))

    def primary_for(self, key: str) -> RedisProcess:
        if self._sentinel_primary is not None:  # where the Sentinels say the primary is now
            port = self._sentinel_primary()
        elif self.mode == "standalone":
            return self.nodes[0]
        else:
            raw: StoreClient = self.client()
            try:
                port = node_for(raw, key).connection_pool.connection_kwargs["port"]
            finally:
                raw.close()
        return next(n for n in self.nodes if n.port == port)

    def flushall(self, client: redis.Redis) -> None:
        for node in primaries(client):
            node.flushall()


def standalone(server: RedisProcess) -> Deployment:
    return Deployment(
        "standalone", [server], {"url": server.url}, {"LEOFLOW_REDIS_URL": server.url}
    )


def cluster(group: LocalCluster) -> Deployment:
    nodes = group.nodes_setting
    return Deployment(
        "cluster",
        group.nodes,
        {"mode": "cluster", "nodes": nodes},
        {"LEOFLOW_REDIS_MODE": "cluster", "LEOFLOW_REDIS_NODES": nodes},
    )


def sentinel(group: LocalSentinelGroup) -> Deployment:
    fields = {"mode": "sentinel", "nodes": group.nodes_setting, "sentinel_master": group.master}
    return Deployment(
        "sentinel",
        group.servers,
        fields,
        {
            "LEOFLOW_REDIS_MODE": "sentinel",
            "LEOFLOW_REDIS_NODES": group.nodes_setting,
            "LEOFLOW_REDIS_SENTINEL_MASTER": group.master,
        },
        sentinel_primary=group.current_primary_port,
    )


class Throwaway:
    """A small deployment of LEOFLOW_TEST_REDIS_MODE that a test may take down: one Redis;
    a one-primary cluster without replicas; a primary watched by one Sentinel."""

    def __init__(self, binary: str, directory: Path) -> None:
        self._group: RedisProcess | LocalCluster | LocalSentinelGroup
        if TEST_REDIS_MODE == "cluster":
            self._group = LocalCluster(binary, directory, primaries=1, replicas=0, use_cli=False)
            self.deployment = cluster(self._group.start())
        elif TEST_REDIS_MODE == "sentinel":
            self._group = LocalSentinelGroup(binary, directory, replicas=0, sentinels=1)
            self.deployment = sentinel(self._group.start())
        else:
            self._group = RedisProcess(binary, directory).start()
            self.deployment = standalone(self._group)

    def stop(self) -> None:
        """Every process of it, Sentinels too: no primary anywhere."""
        self._group.stop()


def started_deployment(request: pytest.FixtureRequest) -> Deployment:
    """The deployment of LEOFLOW_TEST_REDIS_MODE, from the session fixture that starts it."""
    if TEST_REDIS_MODE not in MODES:
        pytest.fail(
            f"LEOFLOW_TEST_REDIS_MODE={TEST_REDIS_MODE!r}: use one of {', '.join(MODES)}",
            pytrace=False,
        )
    if TEST_REDIS_MODE == "cluster":
        return cluster(request.getfixturevalue("redis_cluster"))
    if TEST_REDIS_MODE == "sentinel":
        return sentinel(request.getfixturevalue("redis_sentinel"))
    return standalone(request.getfixturevalue("redis_server"))


def mark_standalone_only(items: list[pytest.Item]) -> None:
    """On a cluster or Sentinel run, tests marked standalone_only are reported skipped with
    their reason."""
    if TEST_REDIS_MODE == "standalone":
        return
    for item in items:
        marker = item.get_closest_marker("standalone_only")
        if marker is not None:
            why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            if not why:
                raise pytest.UsageError(f"{item.nodeid}: standalone_only needs its reason")
            item.add_marker(
                pytest.mark.skip(reason=f"standalone only, not on {TEST_REDIS_MODE}: {why}")
            )
