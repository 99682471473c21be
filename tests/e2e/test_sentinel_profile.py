"""The `sentinel` profile end to end, started with compose/sentinel.env as a user starts it
(plus the host-network override, compose.hostnet.sentinel.yaml, on free ports): one primary,
two replicas, three Sentinels, pushes acknowledged only once a replica has them
(LEOFLOW_REDIS_MIN_REPLICA_ACKS=1 from the profile's env file).

The SDK pushes and fetches through both service replicas and the proxy reads; then the primary's
container is SIGKILLed under SDK load through both replicas: Sentinel promotes a replica,
pushes are acknowledged again, and every push acknowledged before, during and after is read
back through the SDK. Then the old primary's container starts again and must rejoin as a replica
of the promoted one; the promoted primary is restarted too (its role must survive: Sentinel
saves roles in each node's own /data/redis.conf); every acknowledged push still reads back and
the service takes new pushes through both replicas."""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import XComClient
from leoflow_xcom.store import acl
from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.sentinel import MASTER_NAME
from tests.cluster.failover.load import Load, Writer, wait_until_all_back
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

RUN = "manual__sentinel"
WRITERS = 4  # one DAG run each, alternating between the two service replicas
BEFORE_S = 1.5  # load before the kill
AFTER_S = 1.5  # load after every writer was acknowledged again
RECOVERY_BOUND_S = 60.0  # Sentinel must promote a replica and pushes come back within this


@pytest.fixture(scope="module")
def sentinel_stack(engine: None, workdir: Path) -> Iterator[tuple[Stack, list[int], list[int]]]:
    nodes, sentinels = [free_port() for _ in range(3)], [free_port() for _ in range(3)]
    env = {
        # The Sentinels' addresses on the host network; the rest comes from sentinel.env.
        "LEOFLOW_REDIS_NODES": ",".join(f"127.0.0.1:{p}" for p in sentinels),
        **{f"LEOFLOW_REDIS_HA_{i}_PORT": str(p) for i, p in enumerate(nodes, start=1)},
        **{f"LEOFLOW_REDIS_SENTINEL_{i}_PORT": str(p) for i, p in enumerate(sentinels, start=1)},
    }
    made = Stack(
        workdir,
        overlays=("compose.hostnet.sentinel.yaml",),
        env_files=("sentinel.env",),
        env=env,
    )
    try:
        yield made, nodes, sentinels
    finally:
        made.down(volumes=True)


def _primary_port(sentinels: list[int]) -> int | None:
    """The primary's port as a majority of the Sentinels sees it (None while they disagree)."""
    seen: collections.Counter[int] = collections.Counter()
    for port in sentinels:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as sentinel:
                addr = sentinel.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        except redis.exceptions.RedisError:
            continue
        if addr:
            seen[int(addr[1])] += 1
    best = seen.most_common(1)
    return best[0][0] if best and best[0][1] >= 2 else None


def _replicates(node: redis.Redis, primary: int | None) -> bool:
    try:
        info = node.info("replication")
    except redis.exceptions.RedisError:  # still starting
        return False
    return bool(
        info.get("role") == "slave"
        and info.get("master_port") == primary
        and info.get("master_link_status") == "up"
    )


def _wait_until(check: Callable[[], bool], bound: float, what: str) -> float:
    """Polls `check` until it holds; the seconds it took, or AssertionError(`what`) after
    `bound` seconds."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound, f"{what} within {bound:.0f} s"
        time.sleep(0.2)
    return time.monotonic() - started


def _admin(port: int, password: str) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, username=acl.ADMIN_USER, password=password, socket_timeout=2
    )


def _settled(nodes: list[int], sentinels: list[int], password: str) -> int | None:
    """The primary's port once the group agrees on it: a majority of the Sentinels names it,
    it says ROLE master, and both other nodes replicate from it (link up); else None."""
    primary = _primary_port(sentinels)
    if primary is None:
        return None
    for port in nodes:
        with _admin(port, password) as node:
            if port != primary and not _replicates(node, primary):
                return None
            if port == primary:
                try:
                    if node.execute_command("ROLE")[0] != b"master":
                        return None
                except redis.exceptions.RedisError:
                    return None
    return primary


def _read_back(stack: Stack, writers: list[Writer]) -> tuple[int, int]:
    """(acknowledged, lost): every acknowledged push pulled through the SDK, alternating
    between the two service replicas."""
    ports = (stack.xcom_port, stack.xcom_port_2)
    acknowledged = lost = 0
    for i, w in enumerate(writers):
        target = f"127.0.0.1:{ports[i % 2]}"
        with XComClient(target, stack.token(w.run_id, "notify")) as reader:
            got = {k: reader.pull("load", k, default=None) for k in w.acknowledged}
        acknowledged += len(w.acknowledged)
        lost += sum(got[k] != {"i": i} for k, i in w.acknowledged.items())
    return acknowledged, lost


def _proxy_value(stack: Stack, run: str, task: str, key: str) -> object:
    """The entry's `value` as the proxy's Airflow API serves it (a string, as Airflow's)."""
    password = stack.read_secret("ui-password")
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.ui_port}/api/v1/dags/etl_daily/dagRuns/{run}"
        f"/taskInstances/{task}/xcomEntries/{key}"
    )
    basic = base64.b64encode(f"leoflow:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["value"]


@contextlib.contextmanager
def _logs_on_failure(stack: Stack) -> Iterator[None]:
    """A failed step prints the tail of every container's log (the stack is removed after)."""
    try:
        yield
    except BaseException:
        logs = stack.compose_run("logs", "--no-color", "--tail", "40")
        print(f"compose logs:\n{logs.stdout[-20000:]}{logs.stderr[-2000:]}")
        raise


# Six Redis processes, the init jobs and two service replicas, then a failover: more than the
# suite's default 120 s on a busy 2-core machine.
@pytest.mark.timeout(480)
def test_sentinel_profile_up_walkthrough_primary_sigkill_and_restarts(
    sentinel_stack: tuple[Stack, list[int], list[int]],
) -> None:
    stack, nodes, sentinels = sentinel_stack
    with _logs_on_failure(stack):
        writers, after_failover = _walkthrough_and_failover(stack, nodes, sentinels)
        _restarts(stack, nodes, sentinels, writers, after_failover)


def _walkthrough_and_failover(
    stack: Stack, nodes: list[int], sentinels: list[int]
) -> tuple[list[Writer], int]:
    """Returns the load's writers and how many pushes were acknowledged after the failover."""
    took = stack.up()
    print(f"sentinel profile up (3 nodes, 3 Sentinels, init, 2 services, proxy) in {took:.1f} s")
    assert stack.container_state("xcom-init-redis")["ExitCode"] == 0
    # The profile's own env file asks for WAIT 1 and it reaches both service replicas.
    for service in ("xcom", "xcom-2"):
        assert stack.exec(service, "printenv", "LEOFLOW_REDIS_MIN_REPLICA_ACKS").strip() == "1"
    assert _primary_port(sentinels) == nodes[0]

    # README's walk-through through the SDK: push on one replica, fetch on the other, then the
    # proxy reads it.
    value = {"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}
    with XComClient(f"127.0.0.1:{stack.xcom_port}", stack.token(RUN, "extract")) as writer:
        writer.push("output", value)
    with XComClient(f"127.0.0.1:{stack.xcom_port_2}", stack.token(RUN, "transform")) as reader:
        assert reader.pull("extract", "output") == value
    assert "s3://bucket/etl/part-0.parquet" in str(_proxy_value(stack, RUN, "extract", "output"))

    # SDK load through both replicas, then the primary's container dies (SIGKILL).
    ports = (stack.xcom_port, stack.xcom_port_2)
    writers = [
        Writer(f"{RUN}_{i}", f"127.0.0.1:{ports[i % 2]}", stack.token(f"{RUN}_{i}", "load"))
        for i in range(WRITERS)
    ]
    (primary,) = stack.compose_run("ps", "-q", "redis-ha-1").stdout.split()
    with Load(writers):
        time.sleep(BEFORE_S)
        done = subprocess.run(
            ["docker", "kill", "--signal", "KILL", primary],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # From here the primary is certainly dead: a push that starts later and is
        # acknowledged went to a promoted replica.
        killed = time.monotonic()
        assert done.returncode == 0, done.stderr
        deadline = killed + RECOVERY_BOUND_S
        while _primary_port(sentinels) in (nodes[0], None):
            assert time.monotonic() < deadline, "Sentinel promoted no replica"
            time.sleep(0.05)
        promoted = time.monotonic()
        back = wait_until_all_back(writers, killed, deadline)
        time.sleep(AFTER_S)

    refusals = [r for w in writers for r in w.refusals]
    unexpected = {code for _, _, code in refusals} - {"UNAVAILABLE/STORE_UNAVAILABLE"}
    assert not unexpected, f"refusals other than STORE_UNAVAILABLE: {unexpected}"
    assert stack.container_state("redis-ha-1")["Running"] is False

    # Every acknowledged push, read back through the SDK from the promoted primary.
    acknowledged, lost = _read_back(stack, writers)
    after = sum(1 for w in writers for start, _ in w.successes if start >= back)
    print(
        f"sentinel profile: primary SIGKILLed; replica promoted after {promoted - killed:.2f} s, "
        f"pushes refused for {back - killed:.2f} s ({len(refusals)} refusals), "
        f"acknowledged={acknowledged} ({after} after the failover) lost={lost}"
    )
    assert after > 0
    assert lost == 0, f"{lost} of {acknowledged} acknowledged pushes lost"
    # The proxy follows the failover too.
    assert "s3://bucket/etl/part-0.parquet" in str(_proxy_value(stack, RUN, "extract", "output"))

    return writers, after


def _restarts(
    stack: Stack, nodes: list[int], sentinels: list[int], writers: list[Writer], after: int
) -> None:
    password = stack.read_secret("redis-admin-password")
    promoted = _primary_port(sentinels)
    assert promoted is not None and promoted != nodes[0]

    # The old primary comes back (as its restart policy would bring back a crashed one). Its
    # own config file still makes it a primary; Sentinel turns it into a replica of the
    # promoted node and saves that role in its /data/redis.conf (CONFIG REWRITE).
    assert stack.compose_run("start", "redis-ha-1").returncode == 0
    with _admin(nodes[0], password) as old:
        took = _wait_until(
            lambda: _replicates(old, promoted), RECOVERY_BOUND_S, "the old primary rejoined"
        )
        role = old.execute_command("ROLE")
    assert (role[0], int(role[2])) == (b"slave", promoted)
    print(f"old primary restarted, replicating from the promoted one after {took:.1f} s")
    stack.exec("redis-ha-1", "grep", "-qx", f"replicaof 127.0.0.1 {promoted}", "/data/redis.conf")
    # It now holds the replication password (masterauth) too.
    assert stack.exec("redis-ha-1", "stat", "-c", "%a", "/data/redis.conf").strip() == "600"

    # The promoted primary restarts (an upgrade, a host reboot): it must come back as the
    # primary Sentinel knows, not in its first role (a replica of redis-ha-1), or the group
    # is left with no primary at all.
    name = f"redis-ha-{nodes.index(promoted) + 1}"
    assert stack.compose_run("restart", name).returncode == 0
    settled = _wait_until(
        lambda: _settled(nodes, sentinels, password) is not None,
        RECOVERY_BOUND_S,
        "one primary that every node and a majority of Sentinels agree on",
    )
    primary = _settled(nodes, sentinels, password)
    print(
        f"{name} (the promoted primary) restarted: the group agreed on one primary "
        f"({'the same node' if primary == promoted else 'after another failover'}) "
        f"{settled:.1f} s later"
    )

    # Nothing acknowledged was lost through the failover and both restarts, pushes made after
    # the failover included.
    acknowledged, lost = _read_back(stack, writers)
    assert lost == 0, f"{lost} of {acknowledged} acknowledged pushes lost"
    print(
        f"after both restarts: {acknowledged} acknowledged pushes read back ({after} made after "
        f"the failover), lost={lost}"
    )

    # The service keeps working: a new push through each replica (WAIT 1 again), read through
    # the other replica and the proxy.
    ports = (stack.xcom_port, stack.xcom_port_2)
    for i, port in enumerate(ports):
        value = {"after": "restarts", "via": i}
        with XComClient(f"127.0.0.1:{port}", stack.token(RUN, "extract")) as writer:
            writer.push(f"restarted_{i}", value)
        with XComClient(f"127.0.0.1:{ports[1 - i]}", stack.token(RUN, "transform")) as reader:
            assert reader.pull("extract", f"restarted_{i}") == value
        assert "restarts" in str(_proxy_value(stack, RUN, "extract", f"restarted_{i}"))
