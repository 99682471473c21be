"""What `leoflow-xcom init` does to Redis as its admin user: connect (bounded wait), load the
ACL file, check the result. Redis errors are translated here, as everywhere in store/.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import cast

import redis
import redis.cluster
import redis.exceptions
import redis.sentinel

from leoflow_xcom.core.errors import StoreUnavailableError
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import acl
from leoflow_xcom.store.connection import StoreClient, connect, is_cluster
from leoflow_xcom.store.nodes import Node, parse_cluster_nodes, replication_peers


class AdminError(Exception):
    """Redis cannot be set up; the message says why and what to do. Never holds a password."""


def wait_for_admin(
    settings: RedisSettings, passwords: Sequence[str], wait_seconds: float
) -> StoreClient:
    """A client logged in as the admin user, trying each candidate password (the current one,
    then the one before a rotation). Waits at most `wait_seconds` for Redis to answer."""
    deadline = time.monotonic() + wait_seconds
    last = "no answer"
    while True:
        refused = 0
        for password in passwords:
            try:
                client = _client(settings, password)
            except StoreUnavailableError as exc:  # a cluster with no reachable node yet
                last = exc.message
                continue
            try:
                client.ping()
                return client
            except redis.exceptions.AuthenticationError:
                refused += 1
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                last = type(exc).__name__
            client.close()
        if refused == len(passwords):
            raise AdminError(
                f"Redis at {settings.url} refused the {acl.ADMIN_USER} user's password: it runs "
                "with ACL users from other secrets. Restart Redis so it loads the ACL file "
                "`leoflow-xcom init` wrote (e.g. `docker compose restart redis`), then run init "
                "again"
            )
        if time.monotonic() >= deadline:
            raise AdminError(
                f"Redis at {settings.url} did not answer within {wait_seconds:.0f} s ({last})"
            )
        time.sleep(0.2)


def _url_for(settings: RedisSettings, node: Node) -> str:
    scheme = settings.url.split("://", 1)[0] if "://" in settings.url else "redis"
    host = f"[{node.host}]" if ":" in node.host else node.host
    return f"{scheme}://{host}:{node.port}/0"


def admin_on(
    settings: RedisSettings, node: Node, passwords: Sequence[str], wait_seconds: float
) -> redis.Redis:
    """The admin user on this one node, as a plain connection (same TLS and timeouts)."""
    one = settings.model_copy(
        update={"url": _url_for(settings, node), "mode": "standalone", "nodes": ""}
    )
    client = wait_for_admin(one, passwords, wait_seconds)
    assert isinstance(client, redis.Redis)  # standalone mode builds a plain client
    return client


def seed_node(client: StoreClient) -> Node:
    """A data node this client reaches: a cluster's live node, a Sentinel group's current
    primary, or the standalone server."""
    if isinstance(client, redis.cluster.RedisCluster):
        node = client.get_default_node()  # type: ignore[no-untyped-call]
        return Node(str(node.host), int(node.port))
    pool = client.connection_pool
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        host, port = pool.get_master_address()  # type: ignore[no-untyped-call]
        return Node(str(host), int(port))
    kwargs = pool.connection_kwargs
    return Node(str(kwargs.get("host", "127.0.0.1")), int(kwargs.get("port", 6379)))


def data_nodes(
    client: StoreClient, settings: RedisSettings, passwords: Sequence[str], wait_seconds: float
) -> list[Node]:
    """Every data node reachable from this one: with cluster mode on, all primaries and
    replicas that CLUSTER NODES lists (a node the cluster marks failed is an error: it would
    come back with stale users); otherwise this node's replication group, followed from
    node to node (a primary lists its replicas, a replica its primary)."""
    me = seed_node(client)
    if is_cluster(client):
        plain = admin_on(settings, me, passwords, wait_seconds)
        try:
            raw = plain.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
        finally:
            plain.close()
        found = parse_cluster_nodes(raw.decode() if isinstance(raw, bytes) else str(raw), me)
        if found.unreachable:
            raise AdminError(
                f"Redis Cluster nodes {', '.join(found.unreachable)} are failed or unreachable: "
                "their ACL users cannot be set. Bring them back, or remove them from the cluster "
                "(CLUSTER FORGET on every node), then run init again"
            )
        return found.reachable
    assert isinstance(client, redis.Redis)
    seen: set[Node] = set()
    todo = [me]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        peer = client if node == me else admin_on(settings, node, passwords, wait_seconds)
        try:
            info = cast(dict[str, object], peer.info("replication"))
        finally:
            if peer is not client:
                peer.close()
        todo.extend(n for n in replication_peers(info, node) if n not in seen)
    return sorted(seen)


def set_replication_auth(client: redis.Redis, password: str) -> None:
    """Make this node authenticate as the replication user when it replicates (now, or after a
    failover turns it into a replica). At runtime only: a node restarted later needs the same in
    its configuration (Compose includes the `replication.conf` init writes)."""
    try:
        client.config_set("masteruser", acl.REPLICATION_USER)
        client.config_set("masterauth", password)
    except redis.exceptions.ResponseError as exc:
        raise AdminError(f"Redis refused to set masteruser/masterauth: {exc}") from None


def prepare_nodes(
    settings: RedisSettings,
    nodes: Sequence[Node],
    passwords: Sequence[str],
    replication_password: str,
    wait_seconds: float,
) -> None:
    """On every node: replication credentials first (so a replica whose link ACL LOAD cuts
    reconnects as the replication user), then ACL LOAD everywhere, then check everywhere."""
    clients = [admin_on(settings, node, passwords, wait_seconds) for node in nodes]
    try:
        for node, client in zip(nodes, clients, strict=True):
            _on(node, set_replication_auth, client, replication_password)
        for node, client in zip(nodes, clients, strict=True):
            _on(node, load_acl_file, client)
        for node, client in zip(nodes, clients, strict=True):
            _on(node, check_users, client, acl.APPLIANCE_USERS)
    finally:
        for client in clients:
            client.close()


def _on(node: Node, step: Callable[..., None], *args: object) -> None:
    try:
        step(*args)
    except AdminError as exc:
        raise AdminError(f"node {node}: {exc}") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise AdminError(f"node {node}: {type(exc).__name__} while setting up its ACL") from None


def _client(settings: RedisSettings, password: str) -> StoreClient:
    admin = settings.model_copy(update={"username": acl.ADMIN_USER, "password_file": None})
    # The candidate password is passed directly: a rotated-away one has no file.
    return connect(admin, password=password)


def load_acl_file(client: StoreClient) -> None:
    """Make a running Redis take the ACL file as it is on disk (ACL LOAD is all or nothing)."""
    try:
        client.acl_load()
    except redis.exceptions.ResponseError as exc:
        text = str(exc)
        if "not configured to use an ACL file" in text:
            raise AdminError(
                "Redis runs without an ACL file: start it with `--aclfile` pointing at the file "
                "`leoflow-xcom init` writes (compose.yaml and `make run` do)"
            ) from None
        raise AdminError(f"Redis refused to load the ACL file: {text}") from None


def check_users(client: StoreClient, expected: Sequence[str]) -> None:
    """Every appliance user exists, and the default user cannot log in."""
    names = {n.decode() if isinstance(n, bytes) else str(n) for n in client.acl_users()}
    missing = sorted(set(expected) - names)
    if missing:
        raise AdminError(f"Redis lacks the ACL users {', '.join(missing)} after ACL LOAD")
    flags = cast(dict[str, object], client.acl_getuser("default")).get("flags", [])
    if "off" not in cast(list[str], flags):
        raise AdminError("the Redis default user is still enabled after ACL LOAD")


def configure_sentinels(settings: RedisSettings, sentinel_password: str) -> int:
    """Sentinel mode: make every Sentinel log in to the nodes it watches as the Sentinel ACL
    user (SENTINEL SET auth-user/auth-pass; each Sentinel saves it in its own config). Returns
    how many Sentinels took it; any Sentinel that refuses is an error naming it."""
    if settings.mode != "sentinel":
        return 0
    done = 0
    for host, port in settings.node_addresses():
        sentinel = redis.Redis(
            host=host,
            port=port,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            ssl=settings.tls,
        )
        try:
            for field, value in (
                ("auth-user", acl.SENTINEL_USER),
                ("auth-pass", sentinel_password),
            ):
                sentinel.execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "SET", settings.sentinel_master, field, value
                )
            done += 1
        except redis.exceptions.RedisError as exc:
            raise AdminError(
                f"Sentinel {Node(host, port)} refused SENTINEL SET {settings.sentinel_master} "
                f"auth-user/auth-pass ({type(exc).__name__}); set `sentinel auth-user "
                f"{settings.sentinel_master} {acl.SENTINEL_USER}` and its auth-pass (the "
                "redis-sentinel-password file) in every Sentinel's config"
            ) from None
        finally:
            sentinel.close()
    return done
