"""The service's background loops outlive any failure: an exception is logged, the loop goes on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import DagNotRegisteredError
from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.periodic import PeriodicWorker
from leoflow_xcom.store.registry import LivePolicies, PolicyStore
from tests.dag_data import TEST_DAG

WAIT = 20.0  # an upper bound for a busy machine, never a timing assertion


class _Signal(logging.Handler):
    """Sets an event when a record from `logger` at ERROR or above arrives."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen = threading.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.seen.set()


@pytest.fixture
def errors() -> Iterator[_Signal]:
    handler = _Signal()
    logger = logging.getLogger("leoflow_xcom.periodic")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_a_tick_raising_any_exception_is_logged_and_the_loop_goes_on(errors: _Signal) -> None:
    calls: list[int] = []
    more_after_failure = threading.Event()

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ZeroDivisionError("a bug nobody foresaw")
        if len(calls) >= 3:
            more_after_failure.set()

    worker = PeriodicWorker("test-loop", 0.01, tick, run_first=True)
    worker.start()
    try:
        assert more_after_failure.wait(WAIT)
    finally:
        worker.stop()
    assert errors.seen.is_set()
    record = errors.records[0]
    assert "test-loop failed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert not any(t.name == "test-loop" for t in threading.enumerate())  # stop() ended it


def test_stop_before_start_and_twice_is_harmless() -> None:
    worker = PeriodicWorker("never-started", 60, lambda: None)
    worker.stop()
    worker.start()
    worker.stop()
    worker.stop()


def test_policy_refresh_survives_an_error_that_is_not_an_xcom_error(
    r: redis.Redis, errors: _Signal
) -> None:
    # A revision that is not a number makes int() raise ValueError inside the refresh: before
    # the shared worker, the refresh thread caught XComError only and died on it for good.
    r.set(keys.POLICIES_REV_KEY, "not-a-number")
    live = LivePolicies(PolicyStore(r), interval=0.02)
    live.start()
    try:
        assert errors.seen.wait(WAIT)
        assert errors.records[0].exc_info is not None
        assert errors.records[0].exc_info[0] is ValueError
        r.delete(keys.POLICIES_REV_KEY)
        PolicyStore(r).publish([policy_from_document(TEST_DAG, "tests")])
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                live.get("test_dag")
                break
            except DagNotRegisteredError:
                time.sleep(0.02)
        assert live.get("test_dag").policy.dag_id == "test_dag"
    finally:
        live.stop()
