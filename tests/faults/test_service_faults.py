"""SIGTERM to the gRPC service while writers push: in-flight calls finish, the process exits
cleanly within its drain time, and Redis holds no half-written push (every index member has
its value and meta, and every value its index member)."""

from __future__ import annotations

import time

import pytest
import redis

from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.faults.load import WRITER_TASK, Load, audit, figures
from tests.fixture_types import Mint

pytestmark = pytest.mark.fault

DAG, RUN = "test_dag", "run_1"


def test_sigterm_under_load_drains_and_leaves_no_half_written_push(
    fault_redis: RedisProcess,
    fault_service: ServiceProcess,
    raw: redis.Redis,
    mint: Mint,
) -> None:
    assert fault_service.proc is not None
    with Load(fault_service.target, lambda: mint(DAG, RUN, WRITER_TASK), timeout=3.0) as load:
        time.sleep(1.5)
        signalled = time.monotonic()
        code = fault_service.terminate(timeout=30)
        exited = time.monotonic()
        time.sleep(0.3)  # writers now see a service that is gone
    # Calls started before the signal: the in-flight ones. Calls started during the drain are
    # refused and retried on a new stream that waits (wait_for_ready) for a service that, here,
    # never comes back: they end at their deadline and are reported, not asserted.
    in_flight = load.tally.refused_between(0.0, signalled)
    during_drain = load.tally.refused_between(signalled, float("inf"))
    result = audit(raw, DAG, RUN, load.tally)
    figures(
        "sigterm-service",
        result,
        load.tally,
        exit_code=code,
        drain_s=round(exited - signalled, 3),
        refused_in_flight=dict(in_flight),
        refused_after_signal=dict(during_drain),
    )
    assert code == 0
    assert result.acknowledged > 0 and result.lost == 0
    assert result.dangling_index == result.orphan_values == 0
    # A call refused by the stopping server is UNAVAILABLE (the SDK retries those on another
    # replica); nothing in flight was cut off with INTERNAL/UNKNOWN/CANCELLED or left hanging
    # to its deadline. (Calls made after the exit wait for a service that never comes back.)
    assert all(code.startswith("UNAVAILABLE/") for code in in_flight), in_flight
