"""The redis-py client, built once per process, and the one place redis errors are translated.

Three deployments, one client type to the rest of store/ (LEOFLOW_REDIS_MODE):
- standalone: `redis.Redis` on LEOFLOW_REDIS_URL;
- cluster: `redis.cluster.RedisCluster` seeded from LEOFLOW_REDIS_NODES (it follows MOVED/ASK
  and refreshes its slot map itself);
- sentinel: a `redis.Redis` whose pool asks the Sentinels at LEOFLOW_REDIS_NODES for the
  current primary of LEOFLOW_REDIS_SENTINEL_MASTER on every new connection, so it follows a
  failover.

Above this package nothing sees a redis-py exception: they become StoreUnavailableError
(unreachable, stalled, loading, read-only replica, cluster down or resharding, no primary
known to the Sentinels, not enough replicas) or StoreFullError (maxmemory, noeviction).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeAlias

import redis
import redis.backoff
import redis.cluster
import redis.exceptions
import redis.retry
import redis.sentinel

from leoflow_xcom.core.errors import StoreFullError, StoreUnavailableError
from leoflow_xcom.settings import RedisSettings

# What store/ is given: a standalone or Sentinel-managed Redis, or a Redis Cluster.
StoreClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster

# redis-py names this error "OOM command not allowed when used memory > 'maxmemory'".
_FULL = redis.exceptions.OutOfMemoryError
_UNAVAILABLE = (
    # Includes BusyLoadingError (Redis replaying its AOF), MaxConnectionsError and Sentinel's
    # MasterNotFoundError (no Sentinel knows a primary).
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    # CLUSTERDOWN (also MASTERDOWN), TRYAGAIN during resharding, MOVED/ASK that the client
    # could not follow: all pass once the cluster settles, so the caller may retry.
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,
    # The client's own cluster errors (no slot map, slot not covered, keys of one call in
    # several slots): not redis.exceptions.RedisError subclasses.
    redis.exceptions.RedisClusterException,
)
# Replies Redis gives as plain errors while it cannot take a write for now.
_UNAVAILABLE_PREFIXES = ("NOREPLICAS", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "LOADING")


def connect(settings: RedisSettings, password: str | None = None) -> StoreClient:
    """A client as the settings say; `password` overrides the password file (init tries a
    rotated-away admin password that has no file)."""
    if password is None:
        secret = settings.password()
        password = secret.get_secret_value() if secret else None
    common: dict[str, Any] = {
        "username": settings.username,
        "password": password,
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.connect_timeout,
        "socket_keepalive": True,
    }
    if settings.tls:
        common["ssl"] = True
    if settings.mode == "cluster":
        return _cluster(settings, common)
    if settings.mode == "sentinel":
        sentinels = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            settings.node_addresses(),
            sentinel_kwargs={
                **{k: v for k, v in common.items() if k not in ("username", "password")},
                # redis-py's default retries each Sentinel for seconds: one quick retry each.
                "retry": redis.retry.Retry(redis.backoff.ConstantBackoff(0.01), 1),
            },
            **common,
        )
        master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
            settings.sentinel_master,
            max_connections=settings.max_connections,
            retry=redis.retry.Retry(redis.backoff.ConstantBackoff(0.01), 1),
        )
        return master
    pool = redis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        # A caller waits for a free connection at most this long: a stall can't pile up threads.
        timeout=settings.socket_timeout,
        # One quick retry recovers a connection that died with a Redis restart; no more, so the
        # caller's deadline holds.
        retry=redis.retry.Retry(redis.backoff.ConstantBackoff(0.01), 1),
        **common,
    )
    return redis.Redis(connection_pool=pool)


def _cluster(settings: RedisSettings, common: dict[str, Any]) -> redis.cluster.RedisCluster:
    """RedisCluster reads the slot map from a seed node while it is built: with none reachable
    that fails at once, as StoreUnavailableError like any later call (the service waits for
    the store at start; init and the CLI report it)."""
    try:
        return redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                for h, p in settings.node_addresses()
            ],
            max_connections=settings.max_connections,  # per node
            # Bounded: a failover's few seconds of CLUSTERDOWN/MOVED are retried a few times
            # within the caller's deadline, then the caller gets STORE_UNAVAILABLE and retries.
            retry=redis.retry.Retry(redis.backoff.ExponentialBackoff(cap=0.1, base=0.01), 3),
            **common,
        )
    except redis.exceptions.RedisClusterException as exc:
        raise StoreUnavailableError.because(_describe(exc)) from None


def is_cluster(client: StoreClient) -> bool:
    return isinstance(client, redis.cluster.RedisCluster)


def primaries(client: StoreClient) -> list[redis.Redis]:
    """A plain client per primary: one for standalone and Sentinel, one per shard on a
    cluster (INFO and other per-node reads are summed or compared over these)."""
    if isinstance(client, redis.cluster.RedisCluster):
        with translated():
            nodes = client.get_primaries()  # type: ignore[no-untyped-call]
            return [_node_client(client, node) for node in nodes]
    return [client]


def node_for(client: StoreClient, key: str) -> redis.Redis:
    """A plain client on the primary owning `key`'s slot (the client itself outside a cluster):
    a pipeline there runs on one connection of that node, e.g. a write followed by WAIT."""
    if isinstance(client, redis.cluster.RedisCluster):
        with translated():
            node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            return _node_client(client, node)
    return client


def refresh_slots(client: StoreClient) -> None:
    """Re-read the slot map after a MOVED/ASK seen on a node client (a failover or reshard)."""
    if isinstance(client, redis.cluster.RedisCluster):
        with translated():
            client.nodes_manager.initialize()


def _node_client(client: redis.cluster.RedisCluster, node: Any) -> redis.Redis:
    found: redis.Redis | None = node.redis_connection or client.get_redis_connection(node)
    if found is None:
        raise redis.exceptions.RedisClusterException(f"no connection to node {node.name}")
    return found


@contextlib.contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except _FULL:
        raise StoreFullError.default() from None
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError.because(_describe(exc)) from None
    except redis.exceptions.NoPermissionError:
        raise StoreUnavailableError.because(
            "Redis refused the command for this service's ACL user; check the ACL users that "
            "`leoflow-xcom init` writes"
        ) from None
    except redis.exceptions.ResponseError as exc:
        text = str(exc)
        if text.startswith(_UNAVAILABLE_PREFIXES):
            raise StoreUnavailableError.because(_describe(exc)) from None
        if isinstance(exc, redis.exceptions.ClusterCrossSlotError) or text.startswith("CROSSSLOT"):
            raise StoreUnavailableError.because(
                "Redis Cluster refused a call whose keys span several hash slots: the data "
                "layout is older than this service; run `leoflow-xcom init` to migrate it"
            ) from None
        raise


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, redis.exceptions.BusyLoadingError) or text.startswith("LOADING"):
        return "Redis is loading its data after a restart"
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "Redis did not answer in time"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "Redis is a read-only replica"
    if isinstance(exc, redis.sentinel.MasterNotFoundError):
        return "no Sentinel knows a reachable primary (a failover may be under way)"
    if isinstance(exc, redis.exceptions.ClusterDownError) or text.startswith(
        ("CLUSTERDOWN", "MASTERDOWN")
    ):
        return "Redis Cluster is down for some slots (a failover may be under way)"
    if isinstance(exc, redis.exceptions.TryAgainError) or text.startswith("TRYAGAIN"):
        return "Redis Cluster is moving the slot (resharding)"
    if isinstance(exc, redis.exceptions.AskError):
        return "Redis Cluster moved the slot (failover or resharding)"
    if isinstance(exc, redis.exceptions.SlotNotCoveredError):
        return "no Redis Cluster node serves the slot (a failover may be under way)"
    if isinstance(exc, redis.exceptions.CrossSlotTransactionError):
        return "Redis Cluster refused a transaction across hash slots"
    if isinstance(exc, redis.exceptions.RedisClusterException):
        return "cannot reach the Redis Cluster"
    if text.startswith("NOREPLICAS"):
        return "Redis has too few replicas in sync to take writes"
    return "cannot connect to Redis"
