"""Bounds on the streams that hold a server thread, so unary calls and health checks always
find one.

The sync grpcio server runs a stream handler on a pool thread for the stream's whole life: its
request iterator blocks that thread until the client sends a message or the call ends. Nothing
but the end of the call wakes it, and the public `ServicerContext.cancel()` ends a call from
any thread; a watchdog thread here cancels the streams that overstay.

Two pools, both below the worker count together (settings enforce it):

- *trusted*: session streams that showed a valid task token (LEOFLOW_XCOM_MAX_SESSIONS), closed
  after LEOFLOW_XCOM_SESSION_IDLE_SECONDS without an item;
- *untrusted*: session streams that have not shown a valid token yet, and server-reflection
  streams (LEOFLOW_XCOM_MAX_UNAUTHENTICATED_STREAMS). A session must show a valid token within
  LEOFLOW_XCOM_STREAM_AUTH_SECONDS of opening; a reflection stream is closed after that long
  without a request.

A stream is only cancelled while it waits for its next message, never while it answers one;
clients see CANCELLED and reconnect (the SDK does so transparently, resending what was not
answered, which is safe because pushes are idempotent).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable

import grpc

from leoflow_xcom.periodic import PeriodicWorker

log = logging.getLogger(__name__)


# How long a unary-request call may wait for its message before, when too many wait at once,
# it may be cancelled. Far above the time an honest call's message takes to follow its headers
# on a loaded machine; short enough that a flood of calls without messages drains in a second.
WAIT_GRACE_SECONDS = 0.25


class Kind(enum.Enum):
    SESSION = "session"
    REFLECTION = "reflection"
    REQUEST = "request"  # a unary-request call waiting for its one message


class Stream:
    """One open stream: its context (to cancel it), its pool and when it must move on."""

    __slots__ = ("busy", "context", "deadline", "kind", "since", "trusted")

    def __init__(
        self,
        context: grpc.ServicerContext,
        kind: Kind,
        trusted: bool,
        deadline: float,
        since: float = 0.0,
    ) -> None:
        self.context = context
        self.kind = kind
        self.trusted = trusted
        self.deadline = deadline
        self.since = since
        self.busy = False


class StreamGuard:
    def __init__(
        self,
        *,
        max_trusted: int,
        max_untrusted: int,
        auth_seconds: float,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_trusted = max_trusted
        self.max_untrusted = max_untrusted
        self._auth_seconds = auth_seconds
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._trusted: set[Stream] = set()
        self._untrusted: set[Stream] = set()
        self._waiting: dict[Stream, None] = {}  # insertion-ordered: the oldest first
        self._lock = threading.Lock()
        self.draining = False
        self.cancelled = 0  # streams the watchdog closed (metrics, tests)
        # Often enough that an overstaying stream is closed within ~¼ of its allowance, and
        # calls that never send their message leave soon after their grace. The worker logs a
        # failed sweep and goes on: the watchdog must outlive any one bad stream.
        sweep_every = min(max(min(auth_seconds, idle_seconds) / 4, 0.02), WAIT_GRACE_SECONDS)
        self._worker = PeriodicWorker("stream-guard", sweep_every, self._watch)

    # -- admission ---------------------------------------------------------------------------

    def open_trusted(self, context: grpc.ServicerContext) -> Stream | None:
        """A session with a valid token; None when the trusted pool is full or draining."""
        stream = Stream(context, Kind.SESSION, True, self._clock() + self._idle_seconds)
        with self._lock:
            if self.draining or len(self._trusted) >= self.max_trusted:
                return None
            self._trusted.add(stream)
        return stream

    def open_untrusted(self, context: grpc.ServicerContext, kind: Kind) -> Stream | None:
        """A stream without a valid token yet; None when the untrusted pool is full."""
        stream = Stream(context, kind, False, self._clock() + self._auth_seconds)
        with self._lock:
            if self.draining or len(self._untrusted) >= self.max_untrusted:
                return None
            self._untrusted.add(stream)
        return stream

    def promote(self, stream: Stream) -> bool:
        """A pending session showed a valid token: move it to the trusted pool if it fits."""
        with self._lock:
            if stream.trusted:
                return True
            if len(self._trusted) >= self.max_trusted:
                return False
            self._untrusted.discard(stream)
            stream.trusted = True
            stream.deadline = self._clock() + self._idle_seconds
            self._trusted.add(stream)
        return True

    def wait_for_request(self, context: grpc.ServicerContext) -> Stream:
        """A unary-request call is about to wait for its message. Never refused: an honest
        call's message comes with its headers. While more calls than the untrusted pool holds
        are waiting, those waiting longer than WAIT_GRACE_SECONDS are cancelled, the longest
        first (here and by the watchdog): an honest call that a busy CPU delays between its
        start and its message is never chosen, one that never sends its message soon is."""
        now = self._clock()
        stream = Stream(context, Kind.REQUEST, False, now + self._auth_seconds, now)
        with self._lock:
            self._waiting[stream] = None
        self._evict_waiting(now)
        return stream

    def _evict_waiting(self, now: float) -> int:
        evicted = []
        with self._lock:
            while len(self._waiting) > self.max_untrusted:
                oldest = next(iter(self._waiting))
                if now - oldest.since <= WAIT_GRACE_SECONDS:
                    break
                del self._waiting[oldest]
                evicted.append(oldest)
        for stream in evicted:
            stream.context.cancel()
        self.cancelled += len(evicted)
        return len(evicted)

    def request_arrived(self, stream: Stream) -> None:
        with self._lock:
            self._waiting.pop(stream, None)

    def close(self, stream: Stream) -> None:
        with self._lock:
            (self._trusted if stream.trusted else self._untrusted).discard(stream)

    # -- activity ----------------------------------------------------------------------------

    def begin(self, stream: Stream) -> None:
        stream.busy = True

    def end(self, stream: Stream) -> None:
        """An item was answered. A pending session keeps its first deadline: answering items
        with bad tokens does not buy it time."""
        if stream.trusted:
            stream.deadline = self._clock() + self._idle_seconds
        elif stream.kind is Kind.REFLECTION:
            stream.deadline = self._clock() + self._auth_seconds
        stream.busy = False

    def overdue(self, stream: Stream) -> bool:
        return self._clock() > stream.deadline

    def counts(self) -> tuple[int, int]:
        """(trusted, untrusted) streams open now."""
        return len(self._trusted), len(self._untrusted)

    def unauthenticated(self) -> int:
        """Streams and calls holding a thread without a valid token yet (metrics)."""
        return len(self._untrusted) + len(self._waiting)

    # -- watchdog and drain ------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def drain(self) -> None:
        """Refuse new streams; a busy stream ends after the item it is answering (the session
        loop checks `draining`), an idle one now."""
        with self._lock:
            self.draining = True
            idle = [s for s in (*self._trusted, *self._untrusted) if not s.busy]
        for stream in idle:
            stream.context.cancel()

    def sweep(self) -> int:
        """Cancel every idle stream past its deadline; returns how many."""
        now = self._clock()
        with self._lock:
            due = [
                s
                for s in (*self._trusted, *self._untrusted, *self._waiting)
                if not s.busy and now > s.deadline
            ]
        for stream in due:
            stream.deadline = float("inf")  # cancelled once; it leaves when its handler ends
            stream.context.cancel()
        self.cancelled += len(due)
        return len(due) + self._evict_waiting(now)

    def _watch(self) -> None:
        closed = self.sweep()
        if closed:
            log.info("closed %d idle or unauthenticated streams", closed)
