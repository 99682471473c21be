"""XComSession: the long-lived request/response stream that agents use by default.

Each SessionRequest is answered by one SessionResponse with the same id. A session's items are
answered in order, each by the stream's own coroutine on the worker's event loop; sessions run
concurrently with each other, their store calls pipelined together (store/pipelined.py). A
failed item answers with its google.rpc.Status and the stream stays open; only a broken
transport, the service draining, or the stream guard (server/streams.py: no valid token in
time, or idle too long) ends it.

An item's `timeout_ms` counts from when the item is read off the stream: gRPC gives the
service no earlier arrival time, and items wait unread (in transit or in flow-control buffers)
while an earlier item is answered. So the per-item deadline stops an item whose time ran out
inside the service before its store work, and the client's own wait bounds the rest.
"""

from __future__ import annotations

import logging
import time

import grpc
import grpc.aio
from google.rpc import status_pb2

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.core.errors import (
    InvalidRequestError,
    SessionsExhaustedError,
    StatusCode,
    XComError,
)
from leoflow_xcom.server import servicer
from leoflow_xcom.server.context import Context, bearer_token
from leoflow_xcom.server.handlers import XComHandlers
from leoflow_xcom.server.observe import CallObserver, request_id_of
from leoflow_xcom.server.status import INTERNAL_MESSAGE, to_status, to_status_proto
from leoflow_xcom.server.streams import Kind, Stream, StreamClosedError, StreamGuard
from leoflow_xcom.telemetry import logs

log = logging.getLogger(__name__)

DEADLINE_MESSAGE = "the item's deadline passed before the service could start it; not applied"

_CODE_NAMES = {int(code): code.name for code in StatusCode}


class XComSessionServicer(servicer.XComServicer):
    """The unary XComService plus the session stream, over the same handlers."""

    def __init__(
        self, handlers: XComHandlers, guard: StreamGuard, observer: CallObserver | None = None
    ) -> None:
        super().__init__(handlers, observer)
        self._guard = guard

    async def XComSession(  # type: ignore[override]
        self, request_iterator: object, context: Context
    ) -> None:
        # read()/write() on the context rather than an async generator: one coroutine less
        # per item.
        stream_token = bearer_token(context)
        # Items are logged as `<stream id>.<item id>`; the stream's id is echoed when it ends.
        stream_rid = request_id_of(context)
        context.set_trailing_metadata(((logs.REQUEST_ID_HEADER, stream_rid),))
        if self._guard.draining:
            return
        stream = await self._admit(stream_token, context)
        try:
            while True:
                try:
                    request = await self._guard.read(stream, context.read)
                except StreamClosedError as closed:
                    if closed.why == "drain":
                        return  # a clean end: the client reconnects and resends
                    await context.abort(grpc.StatusCode.CANCELLED, str(closed))
                if request is grpc.aio.EOF:
                    return
                # The item's clock starts when it is read off the stream (see `answer`).
                arrived = time.monotonic()
                if not stream.trusted:
                    refusal = self._authenticate_pending(stream, request, stream_token)
                    if refusal is not None:
                        await context.write(refusal)
                        return
                await context.write(
                    await self.observed_answer(request, stream_token, stream_rid, arrived)
                )
                self._guard.end(stream)
        finally:
            self._guard.close(stream)

    async def _admit(self, stream_token: str | None, context: Context) -> Stream:
        """A place in the trusted pool for a stream with a valid token, else in the small
        untrusted one; refused at once when the pool is full, so the client falls back to
        unary calls instead of queueing behind streams that hold every place."""
        trusted = False
        if stream_token:
            try:
                self._handlers.authenticate(stream_token)
                trusted = True
            except XComError:
                pass  # the items may still carry valid tokens: treat it as pending
        if trusted:
            stream = self._guard.open_trusted()
            refusal = SessionsExhaustedError.at(self._guard.max_trusted)
        else:
            stream = self._guard.open_untrusted(Kind.SESSION)
            refusal = SessionsExhaustedError.unauthenticated(self._guard.max_untrusted)
        if stream is None:
            await context.abort_with_status(to_status(refusal))
        assert stream is not None
        return stream

    def _authenticate_pending(
        self, stream: Stream, request: pb.SessionRequest, stream_token: str | None
    ) -> pb.SessionResponse | None:
        """A pending session's item with a valid token makes it trusted; an answer ending the
        stream when the trusted pool is full. Items with bad tokens are answered TOKEN_INVALID
        by `answer` and the stream keeps its first deadline."""
        try:
            self._handlers.authenticate(request.token or stream_token)
        except XComError:
            return None
        if self._guard.promote(stream):
            return None
        response = pb.SessionResponse(id=request.id)
        response.status.CopyFrom(
            to_status_proto(SessionsExhaustedError.at(self._guard.max_trusted))
        )
        return response

    def open_sessions(self) -> int:
        """Sessions that showed a valid token (the others count as unauthenticated streams)."""
        return self._guard.counts()[0]

    async def observed_answer(
        self,
        request: pb.SessionRequest,
        stream_token: str | None,
        stream_rid: str,
        arrived: float,
    ) -> pb.SessionResponse:
        reset = logs.request_id.set(f"{stream_rid}.{request.id}")
        started = time.perf_counter()
        try:
            response, error = await self.answer(request, stream_token, arrived)
            method = f"XComSession/{request.WhichOneof('op') or 'none'}"
            code = _CODE_NAMES.get(response.status.code, "UNKNOWN")
            self.observer.done(method, code, started, error, request, response)
            return response
        finally:
            logs.request_id.reset(reset)

    def end_sessions(self) -> None:  # on the event loop
        """Draining: a busy session ends after the item it is answering, an idle one now;
        clients reconnect (to another replica) and resend what was not answered."""
        self._guard.drain()

    async def answer(
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
                response.push.CopyFrom(await servicer.push(self._handlers, claims, request.push))
            elif op == "fetch":
                response.fetch.CopyFrom(await servicer.fetch(self._handlers, claims, request.fetch))
            elif op == "fetch_many":
                response.fetch_many.CopyFrom(
                    await servicer.fetch_many(self._handlers, claims, request.fetch_many)
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
