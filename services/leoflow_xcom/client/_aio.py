"""AsyncXComClient: the SDK for asyncio agents, over grpc.aio.

Same API, transports, errors, retries and deadlines as XComClient, built on the same pure
helpers in _base; only the I/O differs. Measured here, an asyncio caller on uvloop saves
~50 µs per session round trip over the sync client (docs/performance.md). Create it inside the
event loop that uses it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any, Literal

import grpc
import grpc.aio

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import _base
from leoflow_xcom.client._base import ListResult, PushResult
from leoflow_xcom.client._config import (
    CHANNEL_OPTIONS,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    channel_options,
)
from leoflow_xcom.client._env import read_env
from leoflow_xcom.client._errors import (
    DeadlineExceededError,
    ServiceUnavailableError,
    from_rpc_error,
)
from leoflow_xcom.core import codec
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import SessionsExhaustedError, XComError, XComNotFoundError

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
        error: XComError
        try:
            async for response in self._call:
                waiter = self.waiters.pop(response.id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(response)
            error = ServiceUnavailableError("the XCom session stream was closed by the service")
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.CANCELLED:
                error = ServiceUnavailableError("the XCom session was cancelled")
            else:
                error = from_rpc_error(exc)
        except asyncio.CancelledError:
            error = ServiceUnavailableError("the XCom client is closed")
        self.error = error
        self.broken = True
        waiters, self.waiters = self.waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(error)


class _SessionTransport:
    def __init__(
        self, open_stream: Callable[..., Any], token: str, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self._open_stream = open_stream
        self._token = token
        self._metadata = metadata
        self._ids = itertools.count(1)
        self._stream: _Stream | None = None
        self._closed = False

    async def call(self, field: str, message: Any, timeout: float) -> Any:
        request = _base.session_request(next(self._ids), self._token, field, message, timeout)
        waiter: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        stream = self._current()
        if not await stream.send(request, waiter):
            stream = self._current(replacing=stream)
            if not await stream.send(request, waiter):
                # e.g. SESSIONS_EXHAUSTED: the caller decides (go unary), nothing was sent
                raise stream.error or ServiceUnavailableError("the XCom session broke")
        try:
            answer = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            stream.forget(request.id)
            raise DeadlineExceededError(
                f"no answer within the call's deadline ({timeout:.3f} s)"
            ) from None
        if isinstance(answer, XComError):
            raise answer
        return _base.session_result(answer, field)

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _current(self, replacing: _Stream | None = None) -> _Stream:
        if self._closed:
            raise ServiceUnavailableError("the XCom client is closed")
        stream = self._stream
        if stream is None or stream.broken or stream is replacing:
            stream = _Stream(self._open_stream, self._metadata)
            self._stream = stream
        return stream


class AsyncXComClient:
    """XComClient for asyncio code.

    >>> async with AsyncXComClient("127.0.0.1:50051", token) as xcom:
    ...     await xcom.push("output", {"rows": 42})
    ...     rows = (await xcom.pull("extract", "output"))["rows"]
    """

    def __init__(
        self,
        target: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        credentials: grpc.ChannelCredentials | None = None,
        tls_server_name: str | None = None,
        transport: Literal["session", "unary"] = "session",
    ) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout
        self._retry = retry
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            options = channel_options(tls_server_name)
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        self._stub: Any = pb_grpc.XComServiceStub(self._channel)
        self._session: _SessionTransport | None = None
        self._gate = _base.SessionGate()
        if transport == "session":
            self._session = _SessionTransport(self._stub.XComSession, token, self._metadata)
        elif transport != "unary":
            raise ValueError(f"transport must be 'session' or 'unary', not {transport!r}")

    @classmethod
    def from_env(
        cls,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: Literal["session", "unary"] = "session",
    ) -> AsyncXComClient:
        """A client configured the way the CLI is: address from LEOFLOW_XCOM_ADDR (default
        127.0.0.1:50051), token from LEOFLOW_XCOM_TOKEN (required), deadline from
        LEOFLOW_XCOM_TIMEOUT (seconds, default 5), TLS when LEOFLOW_XCOM_TLS_CA_FILE is set
        (LEOFLOW_XCOM_TLS_SERVER_NAME: the name to verify). A missing or bad variable raises
        ClientConfigError naming it."""
        env = read_env()
        return cls(
            env.addr,
            env.require_token(),
            timeout=env.timeout,
            retry=retry,
            credentials=env.credentials(),
            tls_server_name=env.tls_server_name,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncXComClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            self._session.close()
        await self._channel.close()

    async def push(self, key: str, value: JsonValue, *, timeout: float | None = None) -> PushResult:
        return await self.push_json(key, _base.encode(key, value), timeout=timeout)

    async def push_json(self, key: str, data: bytes, *, timeout: float | None = None) -> PushResult:
        request = _base.push_request(key, data)
        return _base.push_result(await self._hot("push", self._stub.PushXCom, request, timeout))

    async def pull(
        self,
        task_id: str,
        key: str,
        map_index: int | None = None,
        *,
        default: JsonValue | _base._Missing = _base.MISSING,
        timeout: float | None = None,
    ) -> JsonValue:
        """Fetch and decode one value of this run, from this task or a declared dependency.

        With `default`, a value that does not exist (XCOM_NOT_FOUND: never pushed, expired or
        cleared) returns it instead of raising; every other error still raises."""
        try:
            data = await self.pull_json(task_id, key, map_index, timeout=timeout)
        except XComNotFoundError:
            if default is _base.MISSING:
                raise
            return default
        return codec.decode(data, key)

    async def pull_json(
        self, task_id: str, key: str, map_index: int | None = None, *, timeout: float | None = None
    ) -> bytes:
        request = _base.fetch_request(task_id, key, map_index)
        reply = await self._hot("fetch", self._stub.FetchXCom, request, timeout)
        return bytes(reply.value)

    async def pull_many(
        self,
        task_id: str,
        key: str,
        map_indexes: Iterable[int] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[int, JsonValue]:
        request = _base.fetch_many_request(task_id, key, map_indexes)
        reply = await self._hot("fetch_many", self._stub.FetchXComs, request, timeout)
        return _base.many_values(reply, key)

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
        request = _base.list_request(task_id, map_index, key, dag_id, run_id, limit, offset)
        return _base.list_result(await self._call(self._stub.ListXComs, request, timeout))

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
        request = _base.clear_request(dag_id, run_id, task_id, map_index, all_map_indexes)
        return int((await self._call(self._stub.ClearXComs, request, timeout)).deleted)

    async def _hot(
        self, field: str, method: Callable[..., Any], request: Any, timeout: float | None
    ) -> Any:
        session = self._session
        if session is None or not self._gate.open():
            return await self._call(method, request, timeout)
        attempts = _base.Attempts(self._retry, self._timeout if timeout is None else timeout)
        while True:
            try:
                return await session.call(field, request, attempts.remaining())
            except SessionsExhaustedError:
                self._gate.refused()  # refused at once: nothing was sent, the call goes unary
                return await self._call(method, request, timeout)
            except XComError as exc:
                await asyncio.sleep(attempts.pause_after(exc))

    async def _call(self, method: Callable[..., Any], request: Any, timeout: float | None) -> Any:
        attempts = _base.Attempts(self._retry, self._timeout if timeout is None else timeout)
        while True:
            try:
                return await method(request, timeout=attempts.remaining(), metadata=self._metadata)
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            await asyncio.sleep(attempts.pause_after(error))
