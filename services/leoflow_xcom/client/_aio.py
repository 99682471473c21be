"""AsyncXComClient: the SDK for asyncio agents, over grpc.aio.

The same thin I/O shell over _core as XComClient (same API, transports, errors, retries and
deadlines; tests/client/test_api_parity.py keeps them identical), with awaits where the sync
client blocks. Measured here, an asyncio caller on uvloop saves ~50 µs per session round trip
over the sync client (docs/performance.md). Create it inside the event loop that uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import _core
from leoflow_xcom.client._aio_session import AsyncSessionTransport
from leoflow_xcom.client._channel import open_aio_channel
from leoflow_xcom.client._client import XComClient
from leoflow_xcom.client._core import MISSING, Call, ListResult, PushResult
from leoflow_xcom.client._errors import from_rpc_error
from leoflow_xcom.client._shared import ClientBase, same_doc
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import XComError

_T = TypeVar("_T")
_R = TypeVar("_R")


class AsyncXComClient(ClientBase):
    """XComClient for asyncio code.

    >>> async with AsyncXComClient("127.0.0.1:50051", token) as xcom:
    ...     await xcom.push("output", {"rows": 42})
    ...     rows = (await xcom.pull("extract", "output"))["rows"]
    """

    def _open(
        self, target: str, credentials: grpc.ChannelCredentials | None, tls_server_name: str | None
    ) -> None:
        self._channel = open_aio_channel(target, credentials, tls_server_name)
        self._stub: Any = pb_grpc.XComServiceStub(self._channel)
        self._session: AsyncSessionTransport | None = None
        if self._core.sessions:
            self._session = AsyncSessionTransport(
                self._stub.XComSession, self._core.token, self._core.metadata
            )

    async def __aenter__(self) -> AsyncXComClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @same_doc(XComClient.close)
    async def close(self) -> None:
        if self._session is not None:
            self._session.close()
        await self._channel.close()

    # -- calls -------------------------------------------------------------------------------

    @same_doc(XComClient.push)
    async def push(self, key: str, value: JsonValue, *, timeout: float | None = None) -> PushResult:
        return await self._run(_core.push(key, _core.encode(key, value)), timeout)

    @same_doc(XComClient.push_json)
    async def push_json(self, key: str, data: bytes, *, timeout: float | None = None) -> PushResult:
        return await self._run(_core.push(key, data), timeout)

    @same_doc(XComClient.pull)
    async def pull(
        self,
        task_id: str,
        key: str,
        map_index: int | None = None,
        *,
        default: JsonValue | _core._Missing = MISSING,
        timeout: float | None = None,
    ) -> JsonValue:
        return await self._run(_core.pull(task_id, key, map_index, default), timeout)

    @same_doc(XComClient.pull_json)
    async def pull_json(
        self, task_id: str, key: str, map_index: int | None = None, *, timeout: float | None = None
    ) -> bytes:
        return await self._run(_core.fetch(task_id, key, map_index), timeout)

    @same_doc(XComClient.pull_many)
    async def pull_many(
        self,
        task_id: str,
        key: str,
        map_indexes: Iterable[int] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[int, JsonValue]:
        return await self._run(_core.fetch_many(task_id, key, map_indexes), timeout)

    @same_doc(XComClient.list)
    async def list(
        self,
        *,
        task_id: str | None = None,
        map_index: int | None = None,
        key: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        limit: int = 0,
        offset: int = 0,
        timeout: float | None = None,
    ) -> ListResult:
        call = _core.list_(task_id, map_index, key, dag_id, run_id, limit, offset)
        return await self._run(call, timeout)

    @same_doc(XComClient.clear)
    async def clear(
        self,
        dag_id: str,
        run_id: str,
        *,
        task_id: str | None = None,
        map_index: int | None = None,
        all_map_indexes: bool = False,
        timeout: float | None = None,
    ) -> int:
        call = _core.clear(dag_id, run_id, task_id, map_index, all_map_indexes)
        return await self._run(call, timeout)

    # -- transport ---------------------------------------------------------------------------

    async def _run(self, call: Call[Any, _R], timeout: float | None) -> _R:
        try:
            reply = await self._send(call, timeout)
        except XComError as exc:
            return call.failed(exc)
        return call.decode(reply)

    async def _send(self, call: Call[Any, Any], timeout: float | None) -> Any:
        """Over the session, or unary (see ClientCore.use_session)."""
        op = self._core.use_session(call.operation)
        session = self._session
        if op is not None and session is not None:
            try:
                return await self._retrying(
                    lambda remaining: session.call(op, call.request, remaining), timeout
                )
            except XComError as exc:
                if not self._core.falls_back(exc):
                    raise
        return await self._call(getattr(self._stub, call.operation.rpc), call.request, timeout)

    async def _call(
        self, method: Callable[..., Awaitable[_T]], request: Message, timeout: float | None
    ) -> _T:
        """One unary RPC with the client's token, deadline and retries."""

        async def attempt(remaining: float) -> _T:
            try:
                return await method(request, timeout=remaining, metadata=self._core.metadata)
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from None

        return await self._retrying(attempt, timeout)

    async def _retrying(
        self, attempt: Callable[[float], Awaitable[_T]], timeout: float | None
    ) -> _T:
        attempts = self._core.attempts(timeout)
        while True:
            try:
                return await attempt(attempts.remaining())
            except XComError as exc:
                await asyncio.sleep(attempts.pause_after(exc))
