"""The client's logic, once, with no I/O: what XComClient and AsyncXComClient share.

The two clients are thin shells (httpx's BaseClient idea, "sans-I/O"): a public method builds a
`Call` here (the operation from the table below, its request, how to read its reply), and the
shell only sends it, sync or with await. Everything else is decided here: which transport a
call takes (`ClientCore.use_session`, the SESSIONS_EXHAUSTED gate), whether and when to retry
(`Attempts`), how a session item is built and its answer read, and what a broken stream means.

Why a shared core rather than generating the sync client from the async one: the two differ
only where they block (a thread and a queue against a task and a future), so the shells are a
few lines per method, all of them calls into this module; a generator would have to
translate the session transport too, where threads and asyncio differ in more than `await`.
tests/client/test_api_parity.py keeps the two public APIs identical (names, signatures,
docstrings).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, Literal, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client._config import RetryPolicy
from leoflow_xcom.client._errors import (
    DeadlineExceededError,
    ServiceUnavailableError,
    from_rpc_error,
    from_status_proto,
)
from leoflow_xcom.core import codec, ids
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import (
    SessionsExhaustedError,
    StatusCode,
    XComError,
    XComNotFoundError,
)
from leoflow_xcom.core.model import XComEntry

Transport = Literal["session", "unary"]
_Reply = TypeVar("_Reply", bound=Message)
_Result = TypeVar("_Result")


class _Missing(enum.Enum):
    """pull()'s `default` when the caller gave none (None is a valid default value)."""

    MISSING = enum.auto()


MISSING = _Missing.MISSING


@dataclasses.dataclass(frozen=True, slots=True)
class PushResult:
    """What the service stored: the value's encoded size and when it expires (Unix ms)."""

    size_bytes: int
    expires_at_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class ListResult:
    """One page of metadata (no values), and how many entries match in all."""

    entries: list[XComEntry]
    total_entries: int


# -- the operation table ---------------------------------------------------------------------


class SessionOp(enum.StrEnum):
    """The operations an XComSession item may carry: its `op` oneof field."""

    PUSH = "push"
    FETCH = "fetch"
    FETCH_MANY = "fetch_many"


@dataclasses.dataclass(frozen=True, slots=True)
class Operation(Generic[_Reply]):
    """One XComService operation: its unary RPC, and its session field when it has one."""

    rpc: str
    reply: type[_Reply]
    session: SessionOp | None = None


PUSH = Operation("PushXCom", pb.PushXComResponse, SessionOp.PUSH)
FETCH = Operation("FetchXCom", pb.FetchXComResponse, SessionOp.FETCH)
FETCH_MANY = Operation("FetchXComs", pb.FetchXComsResponse, SessionOp.FETCH_MANY)
LIST = Operation("ListXComs", pb.ListXComsResponse)
CLEAR = Operation("ClearXComs", pb.ClearXComsResponse)


@dataclasses.dataclass(frozen=True, slots=True)
class Call(Generic[_Reply, _Result]):
    """One public call, built without I/O: what to send and how to read what comes back."""

    operation: Operation[_Reply]
    request: Message
    decode: Callable[[_Reply], _Result]
    # An error that is an answer (pull's `default` for XCOM_NOT_FOUND); None: errors raise.
    recover: Callable[[XComError], _Result] | None = None

    def failed(self, error: XComError) -> _Result:
        """The result for a call that failed with `error`, or `error` raised."""
        if self.recover is None:
            raise error
        return self.recover(error)


def push(key: str, data: bytes) -> Call[pb.PushXComResponse, PushResult]:
    """The size limit is checked here, before anything is sent."""
    codec.check_size(len(data), key)
    request = pb.PushXComRequest(key=key, value=data)
    return Call(PUSH, request, lambda reply: PushResult(reply.size_bytes, reply.expires_at_ms))


def encode(key: str, value: JsonValue) -> bytes:
    return codec.encode(value, ids.check_key(key))


def fetch(task_id: str, key: str, map_index: int | None) -> Call[pb.FetchXComResponse, bytes]:
    request = pb.FetchXComRequest(task_id=task_id, key=key, **given(map_index=map_index))
    return Call(FETCH, request, lambda reply: bytes(reply.value))


def pull(
    task_id: str, key: str, map_index: int | None, default: JsonValue | _Missing
) -> Call[pb.FetchXComResponse, JsonValue]:
    """fetch, decoded; with a default, XCOM_NOT_FOUND answers it instead of raising."""
    raw = fetch(task_id, key, map_index)
    recover = None
    if default is not MISSING:

        def recover(error: XComError) -> JsonValue:
            if not isinstance(error, XComNotFoundError):
                raise error
            return default

    return Call(raw.operation, raw.request, lambda reply: codec.decode(reply.value, key), recover)


def fetch_many(
    task_id: str, key: str, map_indexes: Iterable[int] | None
) -> Call[pb.FetchXComsResponse, dict[int, JsonValue]]:
    if map_indexes is None:
        selectors = [pb.XComSelector(task_id=task_id, key=key, all_map_indexes=True)]
    else:
        selectors = [pb.XComSelector(task_id=task_id, key=key, map_index=i) for i in map_indexes]

    def values(reply: pb.FetchXComsResponse) -> dict[int, JsonValue]:
        return {r.ref.map_index: codec.decode(r.value, key) for r in reply.results if r.found}

    return Call(FETCH_MANY, pb.FetchXComsRequest(selectors=selectors), values)


def list_(
    task_id: str | None,
    map_index: int | None,
    key: str | None,
    dag_id: str | None,
    run_id: str | None,
    limit: int,
    offset: int,
) -> Call[pb.ListXComsResponse, ListResult]:
    request = pb.ListXComsRequest(
        limit=limit,
        offset=offset,
        **given(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key),
    )
    return Call(LIST, request, _list_result)


def _list_result(reply: pb.ListXComsResponse) -> ListResult:
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
    dag_id: str, run_id: str, task_id: str | None, map_index: int | None, all_map_indexes: bool
) -> Call[pb.ClearXComsResponse, int]:
    request = pb.ClearXComsRequest(
        dag_id=dag_id,
        run_id=run_id,
        all_map_indexes=all_map_indexes,
        **given(task_id=task_id, map_index=map_index),
    )
    return Call(CLEAR, request, lambda reply: int(reply.deleted))


def given(**fields: Any) -> dict[str, Any]:
    """Only the optional fields that were given: an unset proto3 optional is not None."""
    return {name: value for name, value in fields.items() if value is not None}


# -- sessions ----------------------------------------------------------------------------------


def session_request(
    request_id: int, token: str, op: SessionOp, message: Message, timeout: float
) -> pb.SessionRequest:
    request = pb.SessionRequest(id=request_id, token=token, timeout_ms=math.ceil(timeout * 1000))
    getattr(request, op.value).CopyFrom(message)
    return request


def session_reply(answer: pb.SessionResponse | XComError, op: SessionOp) -> Message:
    """The item's reply message, or its error raised (a status, or the stream's failure)."""
    if isinstance(answer, XComError):
        raise answer
    if answer.status.code:
        raise from_status_proto(answer.status)
    reply: Message = getattr(answer, op.value)
    return reply


def stream_error(error: grpc.RpcError | None) -> XComError:
    """Why a session stream ended, for every call still waiting on it (they are retried)."""
    if error is None:
        return ServiceUnavailableError("the XCom session stream was closed by the service")
    if isinstance(error, grpc.Call | grpc.aio.AioRpcError) and (
        error.code() == grpc.StatusCode.CANCELLED
    ):
        # A draining service cancels idle streams: nothing waiting was answered.
        return ServiceUnavailableError("the XCom session was cancelled by the service")
    return from_rpc_error(error)


def not_sent(error: XComError | None) -> XComError:
    """Two streams in a row broke before the item could be sent (e.g. SESSIONS_EXHAUSTED:
    the caller decides, nothing was sent)."""
    return error or ServiceUnavailableError("the XCom session broke")


def no_answer(timeout: float) -> DeadlineExceededError:
    return DeadlineExceededError(f"no answer within the call's deadline ({timeout:.3f} s)")


def closed() -> ServiceUnavailableError:
    return ServiceUnavailableError("the XCom client is closed")


# -- per-client decisions -----------------------------------------------------------------------

SESSION_RETRY_AFTER = 10.0


class SessionGate:
    """When a replica refuses a session (SESSIONS_EXHAUSTED), calls go unary for a while and
    then try a session again."""

    __slots__ = ("_unary_until",)

    def __init__(self) -> None:
        self._unary_until = 0.0

    def open(self) -> bool:
        return time.monotonic() >= self._unary_until

    def refused(self) -> None:
        self._unary_until = time.monotonic() + SESSION_RETRY_AFTER


class Attempts:
    """One call's retry budget: UNAVAILABLE only, capped jittered backoff, never past the
    call's deadline."""

    def __init__(self, retry: RetryPolicy, timeout: float) -> None:
        self._retry = retry
        self.deadline = time.monotonic() + timeout
        self._tries = 0

    def remaining(self) -> float:
        self._tries += 1
        return max(self.deadline - time.monotonic(), 0.001)

    def pause_after(self, error: XComError) -> float:
        """Seconds to wait before the next attempt; raises `error` when there is none."""
        if error.code != StatusCode.UNAVAILABLE or self._tries >= self._retry.max_attempts:
            raise error
        # Full jitter keeps many agents from retrying in lockstep after an outage.
        pause = random.uniform(0, self._retry.backoff(self._tries))
        if time.monotonic() + pause >= self.deadline:
            raise error
        return pause


class ClientCore:
    """A client's settings and its transport decisions, shared by the sync and async shells."""

    def __init__(
        self, token: str, timeout: float, retry: RetryPolicy, transport: Transport
    ) -> None:
        if transport not in ("session", "unary"):
            raise ValueError(f"transport must be 'session' or 'unary', not {transport!r}")
        self.token = token
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.sessions = transport == "session"
        self._timeout = timeout
        self._retry = retry
        self._gate = SessionGate()

    def attempts(self, timeout: float | None) -> Attempts:
        return Attempts(self._retry, self._timeout if timeout is None else timeout)

    def use_session(self, operation: Operation[Any]) -> SessionOp | None:
        """The session field to send `operation` as, or None: unary (transport="unary", an
        operation sessions do not carry, or a replica that just refused a session)."""
        if not self.sessions or operation.session is None or not self._gate.open():
            return None
        return operation.session

    def falls_back(self, error: XComError) -> bool:
        """A session call that failed with `error` goes unary instead: the replica had no room
        for another session and refused at once, so nothing was sent."""
        if isinstance(error, SessionsExhaustedError):
            self._gate.refused()
            return True
        return False
