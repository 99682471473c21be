"""SessionTransport: one long-lived XComSession stream per sync client, shared by its calls.

A call sends one SessionRequest with a fresh correlation id and waits, up to its own deadline,
for the SessionResponse with that id; answers may come in any order. A receiver thread reads
the stream and hands each answer to its waiter. When the stream breaks, every call still
waiting gets ServiceUnavailableError, and the client's retry loop sends it again on a new
stream (opened on demand, on whichever replica the channel picks) within the call's deadline.
Pushes are idempotent per key, so a push whose answer was lost can be sent again without
duplicating anything; an answered push is never sent again. close() (or the interpreter's exit,
for a client never closed) ends the stream and its receiver before returning.

AsyncSessionTransport (_aio_session.py) is the same transport for asyncio; what both do apart
from waiting (item building, answers, why a stream broke) is in _core.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import _core
from leoflow_xcom.client._core import SessionOp
from leoflow_xcom.core.errors import XComError

_Answer = pb.SessionResponse | XComError

# How long close() waits for the receiver thread; a cancelled call ends it at once.
_CLOSE_SECONDS = 5.0


class _Stream:
    """One XComSession call: an outgoing queue, the waiters by id, and the receiver thread."""

    def __init__(
        self, open_stream: Callable[..., Any], metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self.waiters: dict[int, queue.SimpleQueue[_Answer]] = {}
        self.broken = False
        self.error: XComError | None = None  # why it broke, for calls that could not send
        self._outgoing: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # wait_for_ready: a stream opened while the service restarts waits for it (each call
        # still waits only up to its own deadline) instead of failing at once.
        self._call = open_stream(
            iter(self._outgoing.get, None), metadata=metadata, wait_for_ready=True
        )
        self._receiver = threading.Thread(
            target=self._receive, args=(self._call,), name="xcom-session-receiver", daemon=True
        )
        self._receiver.start()
        self.pid = os.getpid()
        _open_streams.add(self)

    def send(self, request: pb.SessionRequest, waiter: queue.SimpleQueue[_Answer]) -> bool:
        """Register the waiter and send; False if this stream has already broken."""
        with self._lock:
            if self.broken:
                return False
            self.waiters[request.id] = waiter
        self._outgoing.put(request)
        return True

    def forget(self, request_id: int) -> None:
        with self._lock:
            self.waiters.pop(request_id, None)

    def close(self) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        _open_streams.discard(self)
        self._outgoing.put(None)
        call.cancel()
        # Finish here, while every thread still runs. Left to the interpreter's exit, the call
        # is finalised by a garbage collection that takes the call's lock, which a daemon
        # thread frozen by that exit may hold: the process then never exits. With the receiver
        # done, `call` is the last reference, so the finaliser runs on return, lock free.
        if self._receiver is not threading.current_thread():
            self._receiver.join(_CLOSE_SECONDS)

    def _receive(self, call: Any) -> None:
        failure: grpc.RpcError | None = None
        try:
            for response in call:
                with self._lock:
                    waiter = self.waiters.pop(response.id, None)
                if waiter is not None:  # None: the caller already gave up (deadline)
                    waiter.put(response)
        except grpc.RpcError as exc:
            # The call is the exception: its traceback holds this frame, which holds the call.
            # Dropped, so no cycle is left for a garbage collection at exit (see close()).
            failure = exc.with_traceback(None)
        error = _core.stream_error(failure)
        with self._lock:
            self.error = error
            self.broken = True
            waiters, self.waiters = self.waiters, {}
        self._outgoing.put(None)  # ends the request iterator grpc consumes
        for waiter in waiters.values():
            waiter.put(error)


# Streams not closed yet: a client the program never closed is closed before the interpreter
# exits, while every thread still runs (see _Stream.close), so a forgotten close() cannot hang.
_open_streams: weakref.WeakSet[_Stream] = weakref.WeakSet()


@atexit.register
def close_open_streams() -> None:
    for stream in list(_open_streams):
        if stream.pid == os.getpid():  # a forked child must not touch its parent's calls
            stream.close()


class SessionTransport:
    """Session items over one stream, reopened on demand; thread-safe."""

    def __init__(
        self, open_stream: Callable[..., Any], token: str, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self._open_stream = open_stream
        self._token = token
        self._metadata = metadata
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stream: _Stream | None = None
        self._closed = False

    def call(self, op: SessionOp, message: Message, timeout: float) -> Message:
        """Send one item; its reply message, or its error raised."""
        request = _core.session_request(next(self._ids), self._token, op, message, timeout)
        waiter: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        stream = self._current()
        if not stream.send(request, waiter):
            stream = self._current(replacing=stream)
            if not stream.send(request, waiter):
                raise _core.not_sent(stream.error)
        try:
            answer = waiter.get(timeout=timeout)
        except queue.Empty:
            stream.forget(request.id)
            raise _core.no_answer(timeout) from None
        return _core.session_reply(answer, op)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def _current(self, replacing: _Stream | None = None) -> _Stream:
        with self._lock:
            if self._closed:
                raise _core.closed()
            stream = self._stream
            if stream is None or stream.broken or stream is replacing:
                stream = _Stream(self._open_stream, self._metadata)
                self._stream = stream
            return stream
