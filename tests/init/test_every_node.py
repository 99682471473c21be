"""`leoflow-xcom init` sets up every node of a replication group, not just the one it reaches.

A real primary and a real replica, both started as Compose's cluster and Sentinel profiles start
their nodes: with init's ACL file (default user off) and its `replication.conf` include, so the
replica can only replicate as the replication ACL user.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.cli.main import main
from leoflow_xcom.init import job, secrets
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import acl, admin
from leoflow_xcom.store.nodes import Node, parse_cluster_nodes, replication_peers
from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.init.test_job import dirs  # noqa: F401  (fixture)
from tests.servers import PRIMARY_KIND


def _node(directory: Path, acl_dir: Path, *extra: str) -> RedisProcess:
    binary = find_binary(PRIMARY_KIND)
    assert binary, f"no {PRIMARY_KIND} server binary: `make test` installs it"
    return RedisProcess(
        binary,
        directory,
        "--aclfile",
        str(acl_dir / job.ACL_FILE_NAME),
        "--include",
        str(acl_dir / job.REPLICATION_CONF_NAME),
        *extra,
    )


def _admin(server: RedisProcess, secrets_dir: Path) -> redis.Redis:
    password = (secrets_dir / secrets.REDIS_ADMIN_PASSWORD).read_text()
    return server.client(username=acl.ADMIN_USER, password=password)


def _start(server: RedisProcess, secrets_dir: Path) -> RedisProcess:
    # RedisProcess.start pings as the default user, which the ACL file turns off.
    original = server.client
    admin = {
        "username": acl.ADMIN_USER,
        "password": (secrets_dir / secrets.REDIS_ADMIN_PASSWORD).read_text(),
    }
    server.client = lambda **kw: original(**{**admin, **kw})  # type: ignore[method-assign]
    return server.start()


def _link_up(replica: redis.Redis, within: float = 15.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if replica.info("replication").get("master_link_status") == "up":
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("the replica never linked to its primary as the replication user")


@pytest.fixture
def group(
    dirs: dict[str, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[RedisProcess, RedisProcess]]:
    assert main(["init", "--stage", "prepare"]) == 0
    primary = _start(_node(dirs["acl"].parent / "primary", dirs["acl"]), dirs["secrets"])
    replica = _node(dirs["acl"].parent / "replica", dirs["acl"])
    replica.extra += ["--replicaof", "127.0.0.1", str(primary.port)]
    try:
        _start(replica, dirs["secrets"])
        # Init reaches the primary; it must find and set up the replica too.
        monkeypatch.setenv("LEOFLOW_REDIS_URL", primary.url)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_replica_links_as_the_replication_user_and_init_sets_up_both(
    dirs: dict[str, Path],  # noqa: F811
    group: tuple[RedisProcess, RedisProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary, replica = group
    replica_admin = _admin(replica, dirs["secrets"])
    _link_up(replica_admin)
    # Every ACL-dir secret is private to the ACL directory's mode, never in the secrets dir.
    for name in secrets.ACL_DIR_NAMES:
        assert (dirs["acl"] / name).exists() and not (dirs["secrets"] / name).exists()
    conf = (dirs["acl"] / job.REPLICATION_CONF_NAME).read_text()
    assert conf.startswith(f"masteruser {acl.REPLICATION_USER}\n")

    assert main(["init", "--stage", "apply"]) == 0
    out = capsys.readouterr()
    assert "done" in out.out or "applied" in out.out
    for server in (primary, replica):
        client = _admin(server, dirs["secrets"])
        users = {str(u) for u in client.acl_users()}
        assert set(acl.APPLIANCE_USERS) <= users, server.port
        assert client.config_get("masteruser")["masteruser"] == acl.REPLICATION_USER
        client.close()

    # From a replica, discovery follows the link to its primary and on to its siblings.
    found = admin.data_nodes(
        replica_admin,
        RedisSettings(url=replica.url),
        [(dirs["secrets"] / secrets.REDIS_ADMIN_PASSWORD).read_text()],
        5,
    )
    assert found == sorted([Node("127.0.0.1", primary.port), Node("127.0.0.1", replica.port)])

    # Rotating the replication password: init sets the new masterauth on every node before
    # loading the new ACL file, so the replica relinks with it.
    assert main(["init", "--rotate", secrets.REPLICATION_PASSWORD]) == 0
    replica_admin.execute_command("CLIENT", "KILL", "TYPE", "master")  # type: ignore[no-untyped-call]
    took = _link_up(replica_admin)
    print(f"replica relinked with the rotated replication password in {took:.2f} s")
    replica_admin.close()


def test_replication_user_is_least_privilege(
    dirs: dict[str, Path],  # noqa: F811
    group: tuple[RedisProcess, RedisProcess],
) -> None:
    primary, _ = group
    assert main(["init", "--stage", "apply"]) == 0
    as_replication = primary.client(
        username=acl.REPLICATION_USER,
        password=(dirs["acl"] / secrets.REPLICATION_PASSWORD).read_text(),
    )
    assert as_replication.ping()
    for command in (("GET", "xcom:x"), ("KEYS", "*"), ("CONFIG", "GET", "*"), ("ACL", "LIST")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_replication.execute_command(*command)  # type: ignore[no-untyped-call]
    as_sentinel = primary.client(
        username=acl.SENTINEL_USER,
        password=(dirs["acl"] / secrets.SENTINEL_PASSWORD).read_text(),
    )
    assert as_sentinel.execute_command("ROLE")[0] == b"master"  # type: ignore[no-untyped-call]
    refused: list[tuple[str, ...]] = [("GET", "xcom:x"), ("CONFIG", "SET", "maxmemory", "1")]
    for denied in [*refused, ("FLUSHALL",)]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_sentinel.execute_command(*denied)  # type: ignore[no-untyped-call]
    as_sentinel.close()
    as_replication.close()


def test_cluster_nodes_parsing_reports_failed_nodes() -> None:
    text = (
        "a1 127.0.0.1:7001@17001,node-1 myself,master - 0 0 1 connected 0-5460\n"
        "b2 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922\n"
        "c3 127.0.0.1:7003@17003 master,fail - 0 1 3 connected 10923-16383\n"
        "d4 [::1]:7004@17004 slave a1 0 1 1 connected\n"
    )
    found = parse_cluster_nodes(text, Node("seed", 1))
    assert found.reachable == [Node("127.0.0.1", 7001), Node("127.0.0.1", 7002), Node("::1", 7004)]
    assert found.unreachable == ["127.0.0.1:7003 (master,fail)"]
    lone = parse_cluster_nodes("a1 :0@0 myself,master - 0 0 0 connected\n", Node("seed", 1))
    assert lone.reachable == [Node("seed", 1)]
    peers = replication_peers(
        {"role": "master", "slave0": {"ip": "10.0.0.2", "port": 6380, "state": "online"}},
        Node("10.0.0.1", 6379),
    )
    assert peers == [Node("10.0.0.1", 6379), Node("10.0.0.2", 6380)]
