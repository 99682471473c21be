"""AsyncXComClient against the real service: same results and typed errors as the sync client
on both transports, many concurrent calls on one stream, client-side deadlines, reconnects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from leoflow_xcom.client import (
    DEFAULT_RETRY,
    NO_RETRY,
    AsyncXComClient,
    DeadlineExceededError,
    XComForbiddenError,
    XComNotFoundError,
    XComSchemaMismatchError,
    XComTooLargeError,
)
from leoflow_xcom.core.limits import MAX_VALUE_BYTES
from leoflow_xcom.server import app
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint, StartService


@pytest.fixture(params=["session", "unary"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(body())  # type: ignore[arg-type]


def client(target: str, token: str, transport: str = "session", **kw: Any) -> AsyncXComClient:
    kw.setdefault("retry", NO_RETRY)
    return AsyncXComClient(target, token, transport=transport, **kw)  # type: ignore[arg-type]


def test_push_pull_and_pull_many(target: str, mint: Mint, transport: str) -> None:
    async def body() -> None:
        async with client(target, mint(task_id="a"), transport) as a:
            assert (await a.push("k", {"v": 1})).size_bytes == 7
        for i in range(3):
            async with client(target, mint(task_id="mapped", map_index=i), transport) as m:
                await m.push("out", i)
        async with client(target, mint(task_id="fanin"), transport) as fanin:
            assert await fanin.pull_many("mapped", "out") == {0: 0, 1: 1, 2: 2}
            assert await fanin.pull("mapped", "out", 2) == 2
            assert (await fanin.list(task_id="mapped")).total_entries == 3

    run(body)


@pytest.mark.parametrize(
    ("task_id", "action", "error"),
    [
        ("a", lambda c: c.push_json("typed", b'{"rows": "x"}'), XComSchemaMismatchError),
        ("a", lambda c: c.push_json("big", b"1" * (MAX_VALUE_BYTES + 1)), XComTooLargeError),
        ("other", lambda c: c.pull("a", "k"), XComForbiddenError),
        ("b", lambda c: c.pull("a", "nope"), XComNotFoundError),
    ],
)
def test_typed_errors(
    target: str, mint: Mint, transport: str, task_id: str, action: Any, error: type
) -> None:
    async def body() -> None:
        async with client(target, mint(task_id=task_id), transport) as c:
            with pytest.raises(error):
                await action(c)

    run(body)


def test_concurrent_calls_share_one_stream(target: str, mint: Mint) -> None:
    async def body() -> list[Any]:
        async with client(target, mint(task_id="a")) as a:
            await asyncio.gather(*(a.push(f"k{i}", {"i": i}) for i in range(200)))
            return list(await asyncio.gather(*(a.pull("a", f"k{i}") for i in range(200))))

    assert run(body) == [{"i": i} for i in range(200)]


def test_deadline_is_enforced_by_the_client(
    target: str, mint: Mint, redis_server: RedisProcess
) -> None:
    async def body() -> None:
        async with client(target, mint(task_id="a"), timeout=0.15) as a:
            await a.push("warm", 1)
            redis_server.pause()
            try:
                started = time.monotonic()
                with pytest.raises(DeadlineExceededError):
                    await a.push("k", 1)
                assert time.monotonic() - started < 0.4
            finally:
                redis_server.resume()

    run(body)


def test_reconnects_after_a_service_restart(
    r: redis.Redis, start_service: StartService, mint: Mint
) -> None:
    publish_test_policies(r)

    def serve(listen: str) -> app.RunningService:
        return start_service(listen=listen, workers=8)

    first = serve("127.0.0.1:0")
    target = f"127.0.0.1:{first.port}"

    async def body() -> None:
        async with client(target, mint(task_id="a"), retry=DEFAULT_RETRY, timeout=10) as a:
            await a.push("before", 1)
            first.stop(0)
            second = serve(target)
            try:
                await a.push("after", 2)
                async with client(target, mint(task_id="b")) as b:
                    assert [await b.pull("a", k) for k in ("before", "after")] == [1, 2]
            finally:
                second.stop(0)

    run(body)
