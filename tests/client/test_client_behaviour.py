"""SDK behaviour against a real server: deadlines, retries on UNAVAILABLE only."""

from __future__ import annotations

import time

import pytest

from leoflow_xcom.client import (
    RetryPolicy,
    ServiceUnavailableError,
    XComClient,
    XComNotFoundError,
)
from tests.conftest import Mint
from tests.redis_proc import free_port


def test_unreachable_service_is_retried_then_reported_within_the_deadline(mint: Mint) -> None:
    target = f"127.0.0.1:{free_port()}"
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    with XComClient(target, mint(), timeout=2, retry=retry) as client:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError, match="unavailable"):
            client.push("k", 1)
        assert time.monotonic() - started < 4


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
