"""XComClient: what an agent uses to push a task's outputs and pull its inputs."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import grpc

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client._config import CHANNEL_OPTIONS, DEFAULT_RETRY, DEFAULT_TIMEOUT, RetryPolicy
from leoflow_xcom.client._errors import from_rpc_error
from leoflow_xcom.client._session import SessionTransport
from leoflow_xcom.core import codec, ids
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import StatusCode, XComError
from leoflow_xcom.core.model import XComEntry

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True, slots=True)
class PushResult:
    size_bytes: int
    expires_at_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class ListResult:
    entries: list[XComEntry]
    total_entries: int


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
        transport: Literal["session", "unary"] = "session",
    ) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout
        self._retry = retry
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.XComServiceStub(self._channel)
        self._session: SessionTransport | None = None
        if transport == "session":
            self._session = SessionTransport(self._stub.XComSession, token, self._metadata)
        elif transport != "unary":
            raise ValueError(f"transport must be 'session' or 'unary', not {transport!r}")

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
        return self.push_json(key, codec.encode(value, ids.check_key(key)), timeout=timeout)

    def push_json(self, key: str, data: bytes, *, timeout: float | None = None) -> PushResult:
        """Push already-encoded UTF-8 JSON bytes (checked for size before sending)."""
        codec.check_size(len(data), key)
        request = pb.PushXComRequest(key=key, value=data)
        reply = self._hot("push", self._stub.PushXCom, request, timeout)
        return PushResult(reply.size_bytes, reply.expires_at_ms)

    def pull(
        self, task_id: str, key: str, map_index: int | None = None, *, timeout: float | None = None
    ) -> JsonValue:
        """Fetch and decode one value of this run, from this task or a declared dependency."""
        return codec.decode(self.pull_json(task_id, key, map_index, timeout=timeout), key)

    def pull_json(
        self, task_id: str, key: str, map_index: int | None = None, *, timeout: float | None = None
    ) -> bytes:
        request = pb.FetchXComRequest(task_id=task_id, key=key, **_given(map_index=map_index))
        return self._hot("fetch", self._stub.FetchXCom, request, timeout).value

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
        if map_indexes is None:
            selectors = [pb.XComSelector(task_id=task_id, key=key, all_map_indexes=True)]
        else:
            selectors = [
                pb.XComSelector(task_id=task_id, key=key, map_index=i) for i in map_indexes
            ]
        request = pb.FetchXComsRequest(selectors=selectors)
        reply = self._hot("fetch_many", self._stub.FetchXComs, request, timeout)
        return {r.ref.map_index: codec.decode(r.value, key) for r in reply.results if r.found}

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
        request = pb.ListXComsRequest(
            limit=limit,
            offset=offset,
            **_given(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key),
        )
        reply = self._call(self._stub.ListXComs, request, timeout)
        entries = [
            XComEntry(
                e.dag_id,
                e.run_id,
                e.task_id,
                e.map_index,
                e.key,
                e.size_bytes,
                e.pushed_at_ms,
                e.expires_at_ms,
            )
            for e in reply.entries
        ]
        return ListResult(entries, reply.total_entries)

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
        request = pb.ClearXComsRequest(
            dag_id=dag_id,
            run_id=run_id,
            all_map_indexes=all_map_indexes,
            **_given(task_id=task_id, map_index=map_index),
        )
        return self._call(self._stub.ClearXComs, request, timeout).deleted

    # -- transport ---------------------------------------------------------------------------

    def _hot(
        self, field: str, method: Callable[..., _T], request: Any, timeout: float | None
    ) -> _T:
        """push, fetch, fetch_many: over the session, or unary with transport="unary"."""
        session = self._session
        if session is None:
            return self._call(method, request, timeout)

        def attempt(remaining: float) -> _T:
            answer = session.call(field, request, remaining)
            return getattr(answer, field)  # type: ignore[no-any-return]

        return self._retrying(attempt, timeout)

    def _call(self, method: Callable[..., _T], request: Any, timeout: float | None) -> _T:
        def attempt(remaining: float) -> _T:
            try:
                return method(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from None

        return self._retrying(attempt, timeout)

    def _retrying(self, attempt: Callable[[float], _T], timeout: float | None) -> _T:
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        tries = 0
        while True:
            tries += 1
            try:
                return attempt(max(deadline - time.monotonic(), 0.001))
            except XComError as exc:
                error = exc
            if not _retryable(error) or tries >= self._retry.max_attempts:
                raise error
            # Full jitter keeps many agents from retrying in lockstep after an outage.
            pause = random.uniform(0, self._retry.backoff(tries))
            if time.monotonic() + pause >= deadline:
                raise error
            time.sleep(pause)


def _given(**fields: Any) -> dict[str, Any]:
    """Only the optional fields that were given: an unset proto3 optional is not None."""
    return {name: value for name, value in fields.items() if value is not None}


def _retryable(error: XComError) -> bool:
    return error.code == StatusCode.UNAVAILABLE
