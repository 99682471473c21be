"""XComSession: the long-lived request/response stream that agents use by default.

Each SessionRequest is answered by one SessionResponse with the same id. A session's items are
answered in order, inline on the stream's own server thread: handing them to another thread
(to stamp arrival times or overlap items) measured ~90 µs more service CPU per item on this
machine (docs/performance.md). Sessions run in parallel with each other. A failed item answers
with its google.rpc.Status and the stream stays open; only a broken transport, or the service
draining, ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import grpc
from google.rpc import status_pb2

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.core.errors import (
    InvalidRequestError,
    SessionsExhaustedError,
    StatusCode,
    XComError,
)
from leoflow_xcom.server import servicer
from leoflow_xcom.server.handlers import XComHandlers
from leoflow_xcom.server.observe import CallObserver, request_id_of
from leoflow_xcom.server.status import INTERNAL_MESSAGE, to_status, to_status_proto
from leoflow_xcom.telemetry import logs

log = logging.getLogger(__name__)

DEADLINE_MESSAGE = "the item's deadline passed before the service could start it; not applied"

_CODE_NAMES = {int(code): code.name for code in StatusCode}


class _Open:
    __slots__ = ("busy", "context")

    def __init__(self, context: grpc.ServicerContext) -> None:
        self.context = context
        self.busy = False


class XComSessionServicer(servicer.XComServicer):
    """The unary XComService plus the session stream, over the same handlers."""

    def __init__(
        self, handlers: XComHandlers, max_sessions: int, observer: CallObserver | None = None
    ) -> None:
        super().__init__(handlers, observer)
        self._max_sessions = max_sessions
        self._open: set[_Open] = set()
        self._lock = threading.Lock()
        self._draining = False

    def XComSession(
        self, request_iterator: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse]:
        stream_token = servicer.bearer_token(context)
        # Items are logged as `<stream id>.<item id>`; the stream's id is echoed when it ends.
        stream_rid = request_id_of(context)
        context.set_trailing_metadata(((logs.REQUEST_ID_HEADER, stream_rid),))
        session = _Open(context)
        with self._lock:
            if self._draining:
                return
            full = len(self._open) >= self._max_sessions
            if not full:
                self._open.add(session)
        if full:
            # Refused at once, so the client falls back to unary calls instead of queueing
            # behind sessions that hold every thread.
            context.abort_with_status(to_status(SessionsExhaustedError.at(self._max_sessions)))
        try:
            for request in request_iterator:
                session.busy = True
                yield self.observed_answer(request, stream_token, stream_rid)
                session.busy = False
                if self._draining:
                    return
        except grpc.RpcError:
            pass  # the client went away or the drain cancelled an idle session
        finally:
            with self._lock:
                self._open.discard(session)

    def open_sessions(self) -> int:
        return len(self._open)

    def observed_answer(
        self, request: pb.SessionRequest, stream_token: str | None, stream_rid: str
    ) -> pb.SessionResponse:
        reset = logs.request_id.set(f"{stream_rid}.{request.id}")
        started = time.perf_counter()
        try:
            response, error = self.answer(request, stream_token, time.monotonic())
            method = f"XComSession/{request.WhichOneof('op') or 'none'}"
            code = _CODE_NAMES.get(response.status.code, "UNKNOWN")
            self.observer.done(method, code, started, error, request, response)
            return response
        finally:
            logs.request_id.reset(reset)

    def end_sessions(self) -> None:
        """Draining: a busy session ends after the item it is answering, an idle one now;
        clients reconnect (to another replica) and resend what was not answered."""
        with self._lock:
            self._draining = True
            idle = [s for s in self._open if not s.busy]
        for session in idle:
            session.context.cancel()

    def answer(
        self, request: pb.SessionRequest, stream_token: str | None, arrived: float
    ) -> tuple[pb.SessionResponse, XComError | None]:
        """The response, and the refusal it carries (for the observer)."""
        response = pb.SessionResponse(id=request.id)
        try:
            claims = self._handlers.authenticate(request.token or stream_token)
            # Checked after the cheap parts, right before the work that touches the store.
            if request.timeout_ms and time.monotonic() > arrived + request.timeout_ms / 1000:
                response.status.CopyFrom(
                    status_pb2.Status(
                        code=int(StatusCode.DEADLINE_EXCEEDED), message=DEADLINE_MESSAGE
                    )
                )
                return response, None
            op = request.WhichOneof("op")
            if op == "push":
                response.push.CopyFrom(servicer.push(self._handlers, claims, request.push))
            elif op == "fetch":
                response.fetch.CopyFrom(servicer.fetch(self._handlers, claims, request.fetch))
            elif op == "fetch_many":
                response.fetch_many.CopyFrom(
                    servicer.fetch_many(self._handlers, claims, request.fetch_many)
                )
            else:
                raise InvalidRequestError.field("op", "one of push, fetch, fetch_many is required")
        except XComError as exc:
            response.status.CopyFrom(to_status_proto(exc))
            return response, exc
        except Exception:
            log.exception("unexpected error in XComSession item")
            response.status.CopyFrom(
                status_pb2.Status(code=int(StatusCode.INTERNAL), message=INTERNAL_MESSAGE)
            )
        return response, None
