"""XComSession: the long-lived request/response stream that agents use by default.

Each SessionRequest is answered by one SessionResponse with the same id. A reader thread per
session takes items off the wire as they arrive and stamps their arrival time (the start of
their deadline); the stream's server thread answers them in arrival order. Sessions run in
parallel with each other. A failed item answers with its google.rpc.Status and the stream stays
open; only a broken transport, or the service draining, ends it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

import grpc
from google.rpc import status_pb2

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.core.errors import InvalidRequestError, StatusCode, XComError
from leoflow_xcom.server import servicer
from leoflow_xcom.server.handlers import XComHandlers
from leoflow_xcom.server.status import INTERNAL_MESSAGE, to_status_proto

log = logging.getLogger(__name__)

DEADLINE_MESSAGE = "the item's deadline passed before the service could start it; not applied"


_Arrival = tuple[pb.SessionRequest, float] | None


class XComSessionServicer(servicer.XComServicer):
    """The unary XComService plus the session stream, over the same handlers."""

    def __init__(self, handlers: XComHandlers) -> None:
        super().__init__(handlers)
        self._open: set[queue.SimpleQueue[_Arrival]] = set()
        self._lock = threading.Lock()
        self._draining = False

    def XComSession(
        self, request_iterator: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse]:
        stream_token = servicer.bearer_token(context)
        arrivals: queue.SimpleQueue[_Arrival] = queue.SimpleQueue()
        with self._lock:
            if self._draining:
                return
            self._open.add(arrivals)
        threading.Thread(
            target=_read, args=(request_iterator, arrivals), name="xcom-session", daemon=True
        ).start()
        try:
            while (item := arrivals.get()) is not None:
                yield self.answer(item[0], stream_token, item[1])
        finally:
            with self._lock:
                self._open.discard(arrivals)

    def end_sessions(self) -> None:
        """Draining: each session ends after the item it is answering; clients reconnect
        (to another replica) and resend what was not answered."""
        with self._lock:
            self._draining = True
            for arrivals in self._open:
                arrivals.put(None)

    def answer(
        self, request: pb.SessionRequest, stream_token: str | None, arrived: float
    ) -> pb.SessionResponse:
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
                return response
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
        except Exception:
            log.exception("unexpected error in XComSession item")
            response.status.CopyFrom(
                status_pb2.Status(code=int(StatusCode.INTERNAL), message=INTERNAL_MESSAGE)
            )
        return response


def _read(requests: Iterator[pb.SessionRequest], arrivals: queue.SimpleQueue[_Arrival]) -> None:
    try:
        for request in requests:
            arrivals.put((request, time.monotonic()))
    except grpc.RpcError:
        pass  # the client cancelled or went away: the session is over
    finally:
        arrivals.put(None)
