"""The `cluster` profile end to end: six Redis nodes (3 primaries + 3 replicas) created by the
idempotent create job, `leoflow-xcom init` setting up ACL users on every node, and the README
walk-through through the service and the proxy in cluster mode. Host network, free ports."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import XComClient
from leoflow_xcom.store import acl
from tests.e2e.conftest import Stack, cluster_ports

pytestmark = pytest.mark.e2e

RUN = "manual__cluster"


@pytest.fixture(scope="module")
def cluster_stack(engine: None, workdir: Path) -> Iterator[tuple[Stack, list[int]]]:
    ports = cluster_ports(6)
    env = {
        "COMPOSE_PROFILES": "cluster",
        "LEOFLOW_REDIS_MODE": "cluster",
        "LEOFLOW_REDIS_NODES": ",".join(f"127.0.0.1:{p}" for p in ports[:3]),
        **{f"LEOFLOW_REDIS_NODE_{i}_PORT": str(p) for i, p in enumerate(ports, start=1)},
    }
    made = Stack(workdir, overlays=("compose.hostnet.cluster.yaml",), env=env)
    try:
        yield made, ports
    finally:
        made.down(volumes=True)


def _cli(stack: Stack, token: str, *args: str) -> str:
    return stack.exec("xcom", "leoflow-xcom", *args, env={"LEOFLOW_XCOM_TOKEN": token})


def _token(stack: Stack, run: str, task: str) -> str:
    return stack.exec(
        "xcom", "leoflow-xcom", "token", "--dag", "etl_daily", "--run", run, "--task", task
    ).strip()


@pytest.mark.timeout(300)  # six nodes, a create job and the stack, on a shared machine
def test_cluster_profile_up_walkthrough_and_acls_on_every_node(
    cluster_stack: tuple[Stack, list[int]],
) -> None:
    stack, ports = cluster_stack
    took = stack.up()
    print(f"cluster profile up (6 nodes, create job, init, service, proxy healthy) in {took:.1f} s")
    assert stack.container_state("redis-cluster-create")["ExitCode"] == 0
    assert stack.container_state("xcom-init-redis")["ExitCode"] == 0

    # README's walk-through, in cluster mode.
    pushed = _cli(
        stack,
        _token(stack, RUN, "extract"),
        "push",
        "output",
        '{"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}',
    )
    assert "pushed 'output'" in pushed
    reader = _token(stack, RUN, "transform")
    assert json.loads(_cli(stack, reader, "fetch", "extract", "output"))["rows"] == 42
    assert "output" in _cli(stack, reader, "ls")

    # The proxy reads it from the cluster too.
    password = stack.read_secret("ui-password")
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.ui_port}/api/v1/dags/etl_daily/dagRuns/{RUN}"
        "/taskInstances/extract/xcomEntries/output"
    )
    basic = base64.b64encode(f"leoflow:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert "42" in json.dumps(json.loads(reply.read())["value"])

    # More runs spread over the shards, through the SDK on the published port.
    for i in range(12):
        token = stack.token(f"{RUN}_{i}", "extract")
        with XComClient(f"127.0.0.1:{stack.xcom_port}", token, timeout=5.0) as client:
            client.push("output", {"rows": i})

    # ACL users on every node, replicas included; replicas linked as the replication user.
    admin_password = stack.read_secret("redis-admin-password")
    holding = 0
    roles = []
    for port in ports:
        with redis.Redis(
            host="127.0.0.1", port=port, username=acl.ADMIN_USER, password=admin_password
        ) as node:
            assert set(acl.APPLIANCE_USERS) <= {str(u) for u in node.acl_users()}, port
            assert node.config_get("masteruser")["masteruser"] == acl.REPLICATION_USER
            replication = node.info("replication")
            roles.append(replication["role"])
            if replication["role"] == "slave":
                assert replication["master_link_status"] == "up", port
            else:
                holding += node.dbsize() > 0
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
    assert sorted(roles) == ["master"] * 3 + ["slave"] * 3
    assert holding >= 2, "the runs should have landed on more than one shard"


def test_cluster_create_job_is_idempotent(cluster_stack: tuple[Stack, list[int]]) -> None:
    stack, _ = cluster_stack
    started = time.monotonic()
    again = stack.compose_run("run", "--rm", "--no-deps", "redis-cluster-create", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "the cluster exists" in again.stdout
    print(f"create job re-run on an existing cluster: no-op in {time.monotonic() - started:.1f} s")
