"""SDK behaviour against a real server: deadlines, retries on UNAVAILABLE only."""

from __future__ import annotations

import time
from typing import Literal

import pytest
import redis

from leoflow_xcom.client import (
    DeadlineExceededError,
    RetryPolicy,
    ServiceUnavailableError,
    XComClient,
    XComNotFoundError,
)
from leoflow_xcom.testing.ports import free_port
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint, StartService


@pytest.mark.parametrize(
    ("transport", "error"),
    [("unary", ServiceUnavailableError), ("session", DeadlineExceededError)],
)
def test_unreachable_service_is_reported_within_the_deadline(
    mint: Mint, transport: Literal["unary", "session"], error: type[Exception]
) -> None:
    # Unary calls retry UNAVAILABLE; a session waits for the service (it may be restarting).
    target = f"127.0.0.1:{free_port()}"
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    with XComClient(target, mint(), timeout=2, retry=retry, transport=transport) as client:
        started = time.monotonic()
        with pytest.raises(error, match=r"unavailable|deadline"):
            client.push("k", 1)
        assert time.monotonic() - started < 4


def test_a_full_replica_refuses_sessions_and_the_sdk_goes_unary(
    r: redis.Redis, start_service: StartService, mint: Mint
) -> None:
    publish_test_policies(r)
    from leoflow_xcom.client import _core

    running = start_service(workers=6, max_sessions=2)
    target = f"127.0.0.1:{running.port}"
    clients = [XComClient(target, mint(task_id="b"), timeout=5) for _ in range(4)]
    for i, client in enumerate(clients):  # each keeps its session open
        client.push(f"k{i}", i)
    # The two refused clients' calls now go unary (the session gate is closed for a while).
    open_gate = [c._core.use_session(_core.PUSH) is not None for c in clients]
    assert open_gate == [True, True, False, False]
    assert [clients[0].pull("b", f"k{i}") for i in range(4)] == [0, 1, 2, 3]
    for client in clients:
        client.close()


def test_not_found_is_not_retried(target: str, mint: Mint) -> None:
    retry = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=1.0)
    with XComClient(target, mint(task_id="b"), retry=retry) as client:
        started = time.monotonic()
        with pytest.raises(XComNotFoundError):
            client.pull("a", "missing")
        # Five attempts would have slept about a second each.
        assert time.monotonic() - started < 0.9


def test_retry_backoff_is_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, multiplier=2)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
