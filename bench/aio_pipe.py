"""A second store for the grpc.aio twin: one Redis connection per worker, auto-pipelined.

redis.asyncio spends a lock, a condition and a pool checkout per command; on one event loop none
of that is needed. Here every command of the loop goes down one connection: commands issued in
the same loop iteration leave in one write, replies come back in order and hiredis parses them
(FIFO futures). Bench-only, to see whether the aio design wins once its Redis client is lean:
no AUTH, no per-call timeout, no reconnect (a real version needs all three: one timer per
connection watching the oldest reply is enough).
"""

from __future__ import annotations

import asyncio
import collections
import urllib.parse
from typing import Any, cast

import hiredis

from leoflow_xcom.core.errors import StoreFullError, StoreUnavailableError


class PipelinedRedis(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._pending: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._scripts: dict[str, bytes] = {}

    @classmethod
    async def connect(cls, url: str) -> PipelinedRedis:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            raise ValueError("the bench's pipelined store speaks no AUTH")
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            cls, parts.hostname or "127.0.0.1", parts.port or 6379
        )
        db = (parts.path or "/0").strip("/") or "0"
        if db != "0":
            await protocol.call("SELECT", db)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(StoreUnavailableError.because("cannot connect to Redis"))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            future = self._waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_translated(reply))
            else:
                future.set_result(reply)

    def _flush(self) -> None:
        if self._transport is not None and self._pending:
            self._transport.write(b"".join(self._pending))
        self._pending.clear()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        if self._transport is None:
            raise StoreUnavailableError.because("cannot connect to Redis")
        if not self._pending:
            self._loop.call_soon(self._flush)  # one write for all of this iteration's calls
        self._pending.append(hiredis.pack_command(args))
        future: asyncio.Future[Any] = self._loop.create_future()
        self._waiting.append(future)
        return future

    async def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        sha = self._scripts.get(source)
        if sha is None:
            sha = await self.call("SCRIPT", "LOAD", source)
            self._scripts[source] = sha
        return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _translated(error: hiredis.ReplyError) -> Exception:
    text = str(error)
    if text.startswith("OOM"):
        return StoreFullError.default()
    if text.startswith(("LOADING", "READONLY")):
        return StoreUnavailableError.because(text.split(" ", 1)[0].lower())
    return error
