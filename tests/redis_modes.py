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

from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.redis_proc import find_binary

REDIS_MODES = [m for m in os.environ.get("LEOFLOW_TEST_REDIS_MODES", "standalone").split(",") if m]
# The server binary the cluster and Sentinel group run: the first of LEOFLOW_TEST_SERVERS.
_KIND = os.environ.get("LEOFLOW_TEST_SERVERS", "valkey,redis").split(",")[0]


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
