"""XComClient: what an agent uses to push a task's outputs and pull its inputs.

A thin I/O shell over _core: each method builds its Call there and `_run` sends it, over the
session or unary, retrying as the core decides. AsyncXComClient (_aio.py) is the same shell
for asyncio.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import _core
from leoflow_xcom.client._channel import open_channel
from leoflow_xcom.client._core import MISSING, Call, ListResult, PushResult, SessionOp
from leoflow_xcom.client._errors import from_rpc_error
from leoflow_xcom.client._session import SessionTransport
from leoflow_xcom.client._shared import ClientBase
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import XComError

__all__ = ["ListResult", "PushResult", "XComClient"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class XComClient(ClientBase):
    """A client bound to one task token.

    Push and pull travel over one long-lived XComSession stream per client (reconnected on
    demand); `transport="unary"` sends them as unary RPCs instead. list and clear are unary.

    >>> with XComClient("127.0.0.1:50051", token) as xcom:
    ...     xcom.push("output", {"rows": 42})
    ...     rows = xcom.pull("extract", "output")["rows"]
    """

    def _open(
        self, target: str, credentials: grpc.ChannelCredentials | None, tls_server_name: str | None
    ) -> None:
        self._channel = open_channel(target, credentials, tls_server_name)
        self._stub = pb_grpc.XComServiceStub(self._channel)
        self._session: SessionTransport | None = None
        if self._core.sessions:
            self._session = SessionTransport(
                self._stub.XComSession, self._core.token, self._core.metadata
            )

    def __enter__(self) -> XComClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session and the channel; calls after this fail."""
        if self._session is not None:
            self._session.close()
        self._channel.close()

    # -- calls -------------------------------------------------------------------------------

    def push(self, key: str, value: JsonValue, *, timeout: float | None = None) -> PushResult:
        """Push a JSON-serialisable value as this task instance's XCom `key`.

        The size limit is checked here, before anything is sent."""
        return self._run(_core.push(key, _core.encode(key, value)), timeout)

    def push_json(self, key: str, data: bytes, *, timeout: float | None = None) -> PushResult:
        """Push already-encoded UTF-8 JSON bytes (checked for size before sending)."""
        return self._run(_core.push(key, data), timeout)

    def pull(
        self,
        task_id: str,
        key: str,
        map_index: int | None = None,
        *,
        default: JsonValue | _core._Missing = MISSING,
        timeout: float | None = None,
    ) -> JsonValue:
        """Fetch and decode one value of this run, from this task or a declared dependency.

        With `default`, a value that does not exist (XCOM_NOT_FOUND: never pushed, expired or
        cleared) returns it instead of raising; every other error still raises."""
        return self._run(_core.pull(task_id, key, map_index, default), timeout)

    def pull_json(
        self, task_id: str, key: str, map_index: int | None = None, *, timeout: float | None = None
    ) -> bytes:
        """Fetch one value as the UTF-8 JSON bytes that were pushed, undecoded."""
        return self._run(_core.fetch(task_id, key, map_index), timeout)

    def pull_many(
        self,
        task_id: str,
        key: str,
        map_indexes: Iterable[int] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[int, JsonValue]:
        """Fetch one key of many map indexes in one round trip: {map_index: value}.

        With map_indexes None, every map index that pushed `key` (fan-in of a mapped task).
        Map indexes asked for explicitly that have no value are left out."""
        return self._run(_core.fetch_many(task_id, key, map_indexes), timeout)

    def list(
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
        """Metadata (no values) of this run's XComs, or one task's, in (task_id, map_index,
        key) order: `limit` entries (0: 100, at most 1000) from `offset`."""
        call = _core.list_(task_id, map_index, key, dag_id, run_id, limit, offset)
        return self._run(call, timeout)

    def clear(
        self,
        dag_id: str,
        run_id: str,
        *,
        task_id: str | None = None,
        map_index: int | None = None,
        all_map_indexes: bool = False,
        timeout: float | None = None,
    ) -> int:
        """Control plane only: delete a task instance's, a task's or a run's XComs; returns
        how many were deleted."""
        call = _core.clear(dag_id, run_id, task_id, map_index, all_map_indexes)
        return self._run(call, timeout)

    # -- transport ---------------------------------------------------------------------------

    def _run(self, call: Call[Any, _R], timeout: float | None) -> _R:
        try:
            reply = self._send(call, timeout)
        except XComError as exc:
            return call.failed(exc)
        return call.decode(reply)

    def _send(self, call: Call[Any, Any], timeout: float | None) -> Any:
        """Over the session, or unary (see ClientCore.use_session)."""
        op = self._core.use_session(call.operation)
        if op is not None and self._session is not None:
            try:
                return self._over_session(self._session, op, call.request, timeout)
            except XComError as exc:
                if not self._core.falls_back(exc):
                    raise
        return self._call(getattr(self._stub, call.operation.rpc), call.request, timeout)

    def _over_session(
        self, session: SessionTransport, op: SessionOp, request: Message, timeout: float | None
    ) -> Message:
        return self._retrying(lambda remaining: session.call(op, request, remaining), timeout)

    def _call(self, method: Callable[..., _T], request: Message, timeout: float | None) -> _T:
        """One unary RPC with the client's token, deadline and retries."""

        def attempt(remaining: float) -> _T:
            try:
                return method(request, timeout=remaining, metadata=self._core.metadata)
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from None

        return self._retrying(attempt, timeout)

    def _retrying(self, attempt: Callable[[float], _T], timeout: float | None) -> _T:
        attempts = self._core.attempts(timeout)
        while True:
            try:
                return attempt(attempts.remaining())
            except XComError as exc:
                time.sleep(attempts.pause_after(exc))
