"""XComClient: what an agent uses to push a task's outputs and pull its inputs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import grpc

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
from leoflow_xcom.client._errors import from_rpc_error
from leoflow_xcom.client._session import SessionTransport
from leoflow_xcom.core import codec
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import SessionsExhaustedError, XComError, XComNotFoundError

__all__ = ["ListResult", "PushResult", "XComClient"]

_T = TypeVar("_T")


class XComClient:
    """A client bound to one task token.

    Push and pull travel over one long-lived XComSession stream per client (reconnected on
    demand); `transport="unary"` sends them as unary RPCs instead. list and clear are unary.

    >>> with XComClient("127.0.0.1:50051", token) as xcom:
    ...     xcom.push("output", {"rows": 42})
    ...     rows = xcom.pull("extract", "output")["rows"]
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
            self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            options = channel_options(tls_server_name)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = pb_grpc.XComServiceStub(self._channel)
        self._session: SessionTransport | None = None
        self._gate = _base.SessionGate()
        if transport == "session":
            self._session = SessionTransport(self._stub.XComSession, token, self._metadata)
        elif transport != "unary":
            raise ValueError(f"transport must be 'session' or 'unary', not {transport!r}")

    @classmethod
    def from_env(
        cls,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: Literal["session", "unary"] = "session",
    ) -> XComClient:
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

    def __enter__(self) -> XComClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._channel.close()

    # -- calls -------------------------------------------------------------------------------

    def push(self, key: str, value: JsonValue, *, timeout: float | None = None) -> PushResult:
        """Push a JSON-serialisable value as this task instance's XCom `key`.

        The size limit is checked here, before anything is sent."""
        return self.push_json(key, _base.encode(key, value), timeout=timeout)

    def push_json(self, key: str, data: bytes, *, timeout: float | None = None) -> PushResult:
        """Push already-encoded UTF-8 JSON bytes (checked for size before sending)."""
        request = _base.push_request(key, data)
        return _base.push_result(self._hot("push", self._stub.PushXCom, request, timeout))

    def pull(
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
            data = self.pull_json(task_id, key, map_index, timeout=timeout)
        except XComNotFoundError:
            if default is _base.MISSING:
                raise
            return default
        return codec.decode(data, key)

    def pull_json(
        self, task_id: str, key: str, map_index: int | None = None, *, timeout: float | None = None
    ) -> bytes:
        request = _base.fetch_request(task_id, key, map_index)
        return self._hot("fetch", self._stub.FetchXCom, request, timeout).value  # type: ignore[no-any-return]

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
        request = _base.fetch_many_request(task_id, key, map_indexes)
        reply = self._hot("fetch_many", self._stub.FetchXComs, request, timeout)
        return _base.many_values(reply, key)

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
        request = _base.list_request(task_id, map_index, key, dag_id, run_id, limit, offset)
        return _base.list_result(self._call(self._stub.ListXComs, request, timeout))

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
        """Control plane only: delete a task instance's, a task's or a run's XComs."""
        request = _base.clear_request(dag_id, run_id, task_id, map_index, all_map_indexes)
        return self._call(self._stub.ClearXComs, request, timeout).deleted

    # -- transport ---------------------------------------------------------------------------

    def _hot(
        self, field: str, method: Callable[..., Any], request: Any, timeout: float | None
    ) -> Any:
        """push, fetch, fetch_many: over the session, or unary with transport="unary" or while
        the replica has no room for another session."""
        session = self._session
        if session is None or not self._gate.open():
            return self._call(method, request, timeout)
        try:
            return self._retrying(
                lambda remaining: session.call(field, request, remaining), timeout
            )
        except SessionsExhaustedError:
            self._gate.refused()  # refused at once: nothing was sent, the call goes unary
            return self._call(method, request, timeout)

    def _call(self, method: Callable[..., _T], request: Any, timeout: float | None) -> _T:
        def attempt(remaining: float) -> _T:
            try:
                return method(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from None

        return self._retrying(attempt, timeout)

    def _retrying(self, attempt: Callable[[float], _T], timeout: float | None) -> _T:
        attempts = _base.Attempts(self._retry, self._timeout if timeout is None else timeout)
        while True:
            try:
                return attempt(attempts.remaining())
            except XComError as exc:
                time.sleep(attempts.pause_after(exc))
