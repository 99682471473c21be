"""A catastrophic regex in a DAG schema, over the real service: the issue's 29-byte push is
refused at once, a 250 KB one too, and another tenant's pushes go on meanwhile. Prints the
figures (`pytest -s`); timers are not asserted (noisy on a shared machine)."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
import redis

from leoflow_xcom.client import NO_RETRY, XComClient, XComSchemaMismatchError
from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.store.registry import PolicyStore
from tests.fixture_types import Mint

REDOS_DAG = {
    "dag_id": "redos",
    "tasks": [
        {
            "task_id": "t",
            "xcom_schema": {
                "out": {"type": "string", "pattern": "^(a+)+$"},
                "obj": {
                    "type": "object",
                    "patternProperties": {"^(a|aa)+$": {"type": "integer"}},
                    "additionalProperties": False,
                },
            },
        }
    ],
}


@pytest.fixture
def redos_policy(r: redis.Redis) -> None:
    PolicyStore(r).publish([policy_from_document(REDOS_DAG, "test")])


def test_catastrophic_pattern_push_is_refused_at_once_and_stalls_nobody(
    redos_policy: None, target: str, mint: Mint
) -> None:
    attacker = XComClient(target, mint("redos", "r1", "t"), transport="unary", retry=NO_RETRY)
    tenant = XComClient(target, mint(task_id="a"), retry=NO_RETRY)
    value = "a" * 26 + "!"  # 29 bytes of JSON with its quotes
    try:
        started = time.perf_counter()
        with pytest.raises(XComSchemaMismatchError, match="does not match"):
            attacker.push("out", value)
        small_ms = (time.perf_counter() - started) * 1000
        attacker.push("out", "a" * 1000)  # a match is still a match

        stop = threading.Event()
        refused = [0]

        def attack() -> None:
            while not stop.is_set():
                for key, bad in (("out", "a" * 250_000 + "!"), ("obj", {"a" * 30_000 + "!": 1})):
                    try:
                        attacker.push(key, bad)
                    except XComSchemaMismatchError:
                        refused[0] += 1

        thread = threading.Thread(target=attack)
        thread.start()
        latencies = []
        try:
            for i in range(100):
                started = time.perf_counter()
                tenant.push(f"k{i}", {"rows": i})
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            stop.set()
            thread.join(30)
        print(
            f"\n29-byte push against ^(a+)+$ refused in {small_ms:.1f} ms; while "
            f"{refused[0]} pushes of 250 KB against catastrophic patterns were refused, another "
            f"tenant's 100 pushes (measured under load): p50 {statistics.median(latencies):.1f} "
            f"ms, max {max(latencies):.1f} ms"
        )
        assert refused[0] > 0
    finally:
        attacker.close()
        tenant.close()
