"""What each call leaves behind: its request id, a log line, and (when enabled) metrics.

Used by `status.mapped_errors` (unary calls) and the session stream (per item), the two places
that see every call's outcome. Log lines name the method, code and ErrorInfo reason only:
never a token, a value, or an error message (a schema message can quote the value).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import Counter

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.server.context import Context, metadata_value
from leoflow_xcom.telemetry.logs import REQUEST_ID_HEADER, accept_request_id
from leoflow_xcom.telemetry.metrics import CallMetrics

log = logging.getLogger("leoflow_xcom.calls")


def request_id_of(context: Context) -> str:
    """The caller's `x-request-id` metadata when plausible, else a new id."""
    return accept_request_id(metadata_value(context, REQUEST_ID_HEADER))


@dataclasses.dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def with_request_id(status: grpc.Status, rid: str) -> grpc.Status:
    """`abort_with_status` replaces the trailing metadata: carry the request id inside it."""
    return _Status(
        status.code, status.details, (*status.trailing_metadata, (REQUEST_ID_HEADER, rid))
    )


def _fetched_sizes(response: pb.FetchXComsResponse) -> list[int]:
    return [len(r.value) for r in response.results if r.found]


# Value sizes per method: what was pushed, or what was fetched (each value of a batch).
_PAYLOADS: dict[str, Callable[[Any, Any], list[int]]] = {
    "PushXCom": lambda request, response: [len(request.value)],
    "FetchXCom": lambda request, response: [len(response.value)],
    "FetchXComs": lambda request, response: _fetched_sizes(response),
    "XComSession/push": lambda request, response: [len(request.push.value)],
    "XComSession/fetch": lambda request, response: [len(response.fetch.value)],
    "XComSession/fetch_many": lambda request, response: _fetched_sizes(response.fetch_many),
}


class CallObserver:
    """Without metrics (LEOFLOW_XCOM_METRICS_LISTEN empty) it still logs."""

    __slots__ = ("metrics", "worker_calls")

    def __init__(
        self, metrics: CallMetrics | None = None, worker_calls: Counter | None = None
    ) -> None:
        self.metrics = metrics
        # A worker process's own call counter (a bound Counter child), None otherwise.
        self.worker_calls = worker_calls

    def done(
        self,
        method: str,
        code: str,
        started: float,
        error: XComError | None = None,
        request: Any = None,
        response: Any = None,
    ) -> None:
        seconds = time.perf_counter() - started
        metrics = self.metrics
        if metrics is not None:
            metrics.observe(method, code, seconds)
            if self.worker_calls is not None:
                self.worker_calls.inc()
            if error is not None:
                metrics.rejected(error)
            elif response is not None and method in _PAYLOADS:
                for size in _PAYLOADS[method](request, response):
                    metrics.payload_size(method, size)
        if error is not None:
            log.info(
                "refused %s: %s",
                method,
                error.reason,
                extra={
                    "method": method,
                    "code": code,
                    "reason": error.reason,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug(
                "answered %s: %s",
                method,
                code,
                extra={"method": method, "code": code, "duration_ms": round(seconds * 1000, 3)},
            )
