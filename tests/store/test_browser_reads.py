"""The XCom browser's reads, on every Redis-protocol server and deployment we support: run
summaries (live XComs only, no value read) and value heads (never more than asked)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from leoflow_xcom.core.errors import XComNotFoundError
from leoflow_xcom.core.model import RunInfo, XComRef
from leoflow_xcom.store.connection import StoreClient, connect
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.summary import RunSummaries
from leoflow_xcom.store.writer import XComWriter
from tests.redis_modes import RedisTarget


@pytest.fixture
def client(redis_target: RedisTarget) -> Iterator[StoreClient]:
    redis_target.flushall()
    made = connect(redis_target.settings())
    yield made
    made.close()


def test_summaries_count_live_xcoms_their_bytes_and_push_times(client: StoreClient) -> None:
    writer = XComWriter(client)
    writer.push("d", "r1", XComRef("a", "k"), b"[1,2,3]", 3600, b'{"logical_date": "x"}')
    writer.push("d", "r1", XComRef("b", "k", 4), b'"abc"', 3600)
    writer.push("d", "r1", XComRef("c", "gone"), b"12345", 1)  # expires in a second
    writer.push("d", "r2", XComRef("a", "k"), b"1", 3600)
    time.sleep(1.1)
    client.script_flush()  # the script is loaded again on demand
    r1, r2, none = RunSummaries(client)([("d", "r1"), ("d", "r2"), ("d", "never")])
    assert (r1.xcoms, r1.bytes, r1.run_info) == (2, 12, RunInfo(logical_date="x"))
    assert r1.first_pushed_ms is not None and r1.last_pushed_ms is not None
    assert r1.first_pushed_ms <= r1.last_pushed_ms <= int(time.time() * 1000)
    assert (r2.xcoms, r2.bytes) == (1, 1)
    assert (none.xcoms, none.bytes, none.first_pushed_ms, none.last_pushed_ms) == (0, 0, None, None)
    assert RunSummaries(client)([]) == []


def test_a_value_head_is_at_most_the_limit_with_the_full_size(client: StoreClient) -> None:
    writer, reader = XComWriter(client), XComReader(client)
    value = ('"' + "é" * 100 + '"').encode()
    writer.push("d", "r", XComRef("t", "k"), value, 3600)
    head, size = reader.fetch_head("d", "r", XComRef("t", "k"), 10)
    assert (head, size) == (value[:10], len(value))  # may end inside a character: the page cuts
    assert reader.fetch_head("d", "r", XComRef("t", "k"), 10_000) == (value, len(value))
    with pytest.raises(XComNotFoundError):
        reader.fetch_head("d", "r", XComRef("t", "nope"), 10)
