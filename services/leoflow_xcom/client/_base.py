"""What the sync and asyncio clients share: request building, reply decoding, retry decisions.

No I/O here (httpx's BaseClient idea): XComClient and AsyncXComClient only do the calls.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
import time
from collections.abc import Iterable
from typing import Any

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client._config import RetryPolicy
from leoflow_xcom.client._errors import from_status_proto
from leoflow_xcom.core import codec, ids
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import StatusCode, XComError
from leoflow_xcom.core.model import XComEntry


class _Missing(enum.Enum):
    """pull()'s `default` when the caller gave none (None is a valid default value)."""

    MISSING = enum.auto()


MISSING = _Missing.MISSING


@dataclasses.dataclass(frozen=True, slots=True)
class PushResult:
    size_bytes: int
    expires_at_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class ListResult:
    entries: list[XComEntry]
    total_entries: int


def encode(key: str, value: JsonValue) -> bytes:
    return codec.encode(value, ids.check_key(key))


def push_request(key: str, data: bytes) -> pb.PushXComRequest:
    """The size limit is checked here, before anything is sent."""
    codec.check_size(len(data), key)
    return pb.PushXComRequest(key=key, value=data)


def push_result(reply: pb.PushXComResponse) -> PushResult:
    return PushResult(reply.size_bytes, reply.expires_at_ms)


def fetch_request(task_id: str, key: str, map_index: int | None) -> pb.FetchXComRequest:
    return pb.FetchXComRequest(task_id=task_id, key=key, **given(map_index=map_index))


def fetch_many_request(
    task_id: str, key: str, map_indexes: Iterable[int] | None
) -> pb.FetchXComsRequest:
    if map_indexes is None:
        selectors = [pb.XComSelector(task_id=task_id, key=key, all_map_indexes=True)]
    else:
        selectors = [pb.XComSelector(task_id=task_id, key=key, map_index=i) for i in map_indexes]
    return pb.FetchXComsRequest(selectors=selectors)


def many_values(reply: pb.FetchXComsResponse, key: str) -> dict[int, JsonValue]:
    return {r.ref.map_index: codec.decode(r.value, key) for r in reply.results if r.found}


def list_request(
    task_id: str | None,
    map_index: int | None,
    key: str | None,
    dag_id: str | None,
    run_id: str | None,
    limit: int,
    offset: int,
) -> pb.ListXComsRequest:
    return pb.ListXComsRequest(
        limit=limit,
        offset=offset,
        **given(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key),
    )


def list_result(reply: pb.ListXComsResponse) -> ListResult:
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


def clear_request(
    dag_id: str, run_id: str, task_id: str | None, map_index: int | None, all_map_indexes: bool
) -> pb.ClearXComsRequest:
    return pb.ClearXComsRequest(
        dag_id=dag_id,
        run_id=run_id,
        all_map_indexes=all_map_indexes,
        **given(task_id=task_id, map_index=map_index),
    )


def session_request(
    request_id: int, token: str, field: str, message: Any, timeout: float
) -> pb.SessionRequest:
    request = pb.SessionRequest(id=request_id, token=token, timeout_ms=math.ceil(timeout * 1000))
    getattr(request, field).CopyFrom(message)
    return request


def session_result(answer: pb.SessionResponse, field: str) -> Any:
    """The item's result, or its status raised as the typed error."""
    if answer.status.code:
        raise from_status_proto(answer.status)
    return getattr(answer, field)


def given(**fields: Any) -> dict[str, Any]:
    """Only the optional fields that were given: an unset proto3 optional is not None."""
    return {name: value for name, value in fields.items() if value is not None}


SESSION_RETRY_AFTER = 10.0


class SessionGate:
    """When a replica refuses a session (SESSIONS_EXHAUSTED), calls go unary for a while and
    then try a session again. Shared by the sync and asyncio clients."""

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
