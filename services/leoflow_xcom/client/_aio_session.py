"""AsyncSessionTransport: SessionTransport (_session.py) for asyncio, over grpc.aio.

The same protocol and rules; writes go under a lock and a reader task resolves each call's
future by id. Create it inside the event loop that uses it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import _core
from leoflow_xcom.client._core import SessionOp
from leoflow_xcom.core.errors import XComError

_Answer = pb.SessionResponse | XComError


class _Stream:
    """One XComSession call: writes under a lock, a reader task resolving futures by id."""

    def __init__(self, open_stream: Callable[..., Any], metadata: tuple[tuple[str, str], ...]):
        self.broken = False
        self.error: XComError | None = None  # why it broke, for calls that could not send
        self.waiters: dict[int, asyncio.Future[_Answer]] = {}
        self._write_lock = asyncio.Lock()
        self._call = open_stream(metadata=metadata, wait_for_ready=True)
        self._reader = asyncio.get_running_loop().create_task(self._receive())

    async def send(self, request: pb.SessionRequest, waiter: asyncio.Future[_Answer]) -> bool:
        """Register the waiter and send; False if this stream has already broken."""
        if self.broken:
            return False
        self.waiters[request.id] = waiter
        try:
            async with self._write_lock:
                await self._call.write(request)
        except Exception:  # the stream broke under us: the reader fails the waiters
            self.waiters.pop(request.id, None)
            return False
        return True

    def forget(self, request_id: int) -> None:
        self.waiters.pop(request_id, None)

    def close(self) -> None:
        self._call.cancel()

    async def _receive(self) -> None:
        failure: grpc.RpcError | None = None
        error: XComError | None = None
        try:
            async for response in self._call:
                waiter = self.waiters.pop(response.id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(response)
        except grpc.RpcError as exc:
            failure = exc
        except asyncio.CancelledError:
            error = _core.closed()
        self.error = error or _core.stream_error(failure)
        self.broken = True
        waiters, self.waiters = self.waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(self.error)


class AsyncSessionTransport:
    """Session items over one stream, reopened on demand; for one event loop."""

    def __init__(
        self, open_stream: Callable[..., Any], token: str, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self._open_stream = open_stream
        self._token = token
        self._metadata = metadata
        self._ids = itertools.count(1)
        self._stream: _Stream | None = None
        self._closed = False

    async def call(self, op: SessionOp, message: Message, timeout: float) -> Message:
        """Send one item; its reply message, or its error raised."""
        request = _core.session_request(next(self._ids), self._token, op, message, timeout)
        waiter: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        stream = self._current()
        if not await stream.send(request, waiter):
            stream = self._current(replacing=stream)
            if not await stream.send(request, waiter):
                raise _core.not_sent(stream.error)
        try:
            answer = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            stream.forget(request.id)
            raise _core.no_answer(timeout) from None
        return _core.session_reply(answer, op)

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _current(self, replacing: _Stream | None = None) -> _Stream:
        if self._closed:
            raise _core.closed()
        stream = self._stream
        if stream is None or stream.broken or stream is replacing:
            stream = _Stream(self._open_stream, self._metadata)
            self._stream = stream
        return stream
