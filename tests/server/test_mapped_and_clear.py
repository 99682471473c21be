"""Mapped task instances, fan-in batches, retries that start clean, and odd ids."""

from __future__ import annotations

import time

import pytest
import redis

from leoflow_xcom.client import XComNotFoundError
from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.server.app import RunningService
from leoflow_xcom.store.registry import PolicyStore
from tests.dag_data import NASTY_DAG, NASTY_RUN, NASTY_TASKS
from tests.fixture_types import ClientFor


def test_mapped_instances_push_and_fan_in_in_one_call(client_for: ClientFor) -> None:
    for i in (0, 3, 1, 2):
        client_for(task_id="mapped", map_index=i).push("out", {"i": i})
    client_for(task_id="b").push("out", "b")
    fanin = client_for(task_id="fanin")
    assert fanin.pull_many("mapped", "out") == {0: {"i": 0}, 1: {"i": 1}, 2: {"i": 2}, 3: {"i": 3}}
    assert list(fanin.pull_many("mapped", "out")) == [0, 1, 2, 3]
    assert fanin.pull_many("mapped", "out", [3, 7]) == {3: {"i": 3}}
    assert fanin.pull("mapped", "out", 2) == {"i": 2}
    with pytest.raises(XComNotFoundError):
        fanin.pull("mapped", "out")  # map_index omitted means -1, not 0
    assert fanin.pull("b", "out") == "b"


def test_clearing_a_task_instance_for_a_retry_removes_only_its_xcoms(
    client_for: ClientFor,
) -> None:
    for i in (0, 1):
        client_for(task_id="mapped", map_index=i).push("out", i)
        client_for(task_id="mapped", map_index=i).push("extra", i)
    client_for(task_id="a").push("typed", {"rows": 1})
    client_for(run_id="run_2", task_id="mapped", map_index=0).push("out", 0)
    cp = client_for(control_plane=True)
    assert cp.clear("test_dag", "run_1", task_id="mapped", map_index=0) == 2
    fanin = client_for(task_id="fanin")
    assert fanin.pull_many("mapped", "out") == {1: 1}
    listed = {
        (e.task_id, e.map_index, e.key) for e in cp.list(dag_id="test_dag", run_id="run_1").entries
    }
    assert listed == {("mapped", 1, "out"), ("mapped", 1, "extra"), ("a", -1, "typed")}
    assert client_for(run_id="run_2", task_id="fanin").pull("mapped", "out", 0) == 0
    assert cp.clear("test_dag", "run_1") == 3
    assert cp.list(dag_id="test_dag", run_id="run_1").total_entries == 0


def test_odd_ids_and_long_keys_never_collide(client_for: ClientFor) -> None:
    long_key = "key:{x}/ ü" + "k" * 502
    assert len(long_key) == 512
    for task in NASTY_TASKS:
        for key in (long_key, "k", "k:-1"):
            client_for(NASTY_DAG, NASTY_RUN, task).push(key, [task, key])
    reader = client_for(NASTY_DAG, NASTY_RUN, "reader")
    for task in NASTY_TASKS:
        for key in (long_key, "k", "k:-1"):
            assert reader.pull(task, key) == [task, key]
    assert reader.list(limit=1000).total_entries == len(NASTY_TASKS) * 3


def test_policy_changes_reach_a_running_server_without_restart(
    client_for: ClientFor, service: RunningService, r: redis.Redis
) -> None:
    doc = {"dag_id": "brand_new", "tasks": [{"task_id": "t"}]}
    PolicyStore(r).publish([policy_from_document(doc, "test")])
    deadline = time.monotonic() + 10
    while True:  # bounded: the server polls every 0.5 s
        try:
            client_for("brand_new", "r", "t").push("k", 1)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
