"""Bounds on open streams and on calls waiting for their message, so neither tokenless clients
nor idle ones can crowd out the calls that matter.

On the event loop an idle stream is a suspended coroutine, not a held thread, so what is left to
bound is how many there are and how long they stay:

- *trusted*: session streams that showed a valid task token (LEOFLOW_XCOM_MAX_SESSIONS), closed
  after LEOFLOW_XCOM_SESSION_IDLE_SECONDS without an item;
- *untrusted*: session streams that have not shown a valid token yet, and server-reflection
  streams (LEOFLOW_XCOM_MAX_UNAUTHENTICATED_STREAMS). A session must show a valid token within
  LEOFLOW_XCOM_STREAM_AUTH_SECONDS of opening; a reflection stream is closed after that long
  without a request;
- unary calls waiting for their one message (server/first_message.py): never refused, but while
  more wait than the untrusted pool holds, those waiting past WAIT_GRACE_SECONDS are closed, the
  longest first.

Each stream has one timer at its deadline; when it fires on a stream that is waiting for a
message, the waiting task is cancelled and the stream closed (no watchdog thread, and no timer
work per item: answering an item only moves the deadline, and the timer looks again when it
fires). Closing a stream early (drain, eviction) cancels its wait the same way. A stream is
only closed while it waits for its next message, never while it answers one; clients see
CANCELLED and reconnect (the SDK does so transparently, resending what was not answered, which
is safe because pushes are idempotent).

Everything here runs on the server's event loop: no locks.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# How long a unary-request call may wait for its message before, when too many wait at once,
# it may be closed. Far above the time an honest call's message takes to follow its headers
# on a loaded machine; short enough that a flood of calls without messages drains in a second.
WAIT_GRACE_SECONDS = 0.25

CLOSED_MESSAGES = {
    "auth": "no valid task token within LEOFLOW_XCOM_STREAM_AUTH_SECONDS; open a new stream "
    "with a valid token",
    "idle": "closed after LEOFLOW_XCOM_SESSION_IDLE_SECONDS without an item; open a new one "
    "(the SDK does)",
    "drain": "the replica is draining; reconnect (another replica answers) and resend",
    "crowded": "too many calls were waiting for their request message; send the message with "
    "the call",
}


class Kind(enum.Enum):
    SESSION = "session"
    REFLECTION = "reflection"
    REQUEST = "request"  # a unary-request call waiting for its one message


class StreamClosedError(Exception):
    """The guard closed the stream while it waited; `why` keys CLOSED_MESSAGES."""

    def __init__(self, why: str) -> None:
        super().__init__(CLOSED_MESSAGES[why])
        self.why = why


class Stream:
    """One open stream: its pool, its deadline, and the task that waits for its messages (to
    end the wait early)."""

    __slots__ = ("closed_for", "deadline", "kind", "reading", "since", "task", "timer", "trusted")

    def __init__(self, kind: Kind, trusted: bool, deadline: float, since: float = 0.0) -> None:
        self.kind = kind
        self.trusted = trusted
        self.deadline = deadline  # loop time
        self.since = since
        self.reading = False  # waiting for a message: the only time it may be closed
        self.task: asyncio.Task[Any] | None = None
        # One timer per stream, moved only when it fires (answering an item just moves the
        # deadline): no timer work per item.
        self.timer: asyncio.TimerHandle | None = None
        self.closed_for: str | None = None

    def close_now(self, why: str) -> None:
        """End the current (or the next) wait for a message at once."""
        if self.closed_for is None:
            self.closed_for = why
        if self.reading and self.task is not None:
            self.task.cancel()

    def due(self) -> None:
        """The timer fired: close the stream if it waits past its deadline, else look again
        at the deadline (an answered item moved it)."""
        self.timer = None
        if not self.reading:
            return  # answering: the next wait checks the deadline and re-arms the timer
        loop = asyncio.get_running_loop()
        if loop.time() >= self.deadline:
            self.close_now("idle" if self.trusted else "auth")
        else:
            self.timer = loop.call_at(self.deadline, self.due)

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class StreamGuard:
    def __init__(
        self,
        *,
        max_trusted: int,
        max_untrusted: int,
        auth_seconds: float,
        idle_seconds: float,
    ) -> None:
        self.max_trusted = max_trusted
        self.max_untrusted = max_untrusted
        self._auth_seconds = auth_seconds
        self._idle_seconds = idle_seconds
        self._trusted: set[Stream] = set()
        self._untrusted: set[Stream] = set()
        self._waiting: dict[Stream, None] = {}  # insertion-ordered: the oldest first
        self._evicting: asyncio.TimerHandle | None = None
        self.draining = False

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # -- admission ---------------------------------------------------------------------------

    def open_trusted(self) -> Stream | None:
        """A session with a valid token; None when the trusted pool is full or draining."""
        if self.draining or len(self._trusted) >= self.max_trusted:
            return None
        stream = Stream(Kind.SESSION, True, self._now() + self._idle_seconds)
        self._trusted.add(stream)
        return stream

    def open_untrusted(self, kind: Kind) -> Stream | None:
        """A stream without a valid token yet; None when the untrusted pool is full."""
        if self.draining or len(self._untrusted) >= self.max_untrusted:
            return None
        stream = Stream(kind, False, self._now() + self._auth_seconds)
        self._untrusted.add(stream)
        return stream

    def promote(self, stream: Stream) -> bool:
        """A pending session showed a valid token: move it to the trusted pool if it fits."""
        if stream.trusted:
            return True
        if len(self._trusted) >= self.max_trusted:
            return False
        self._untrusted.discard(stream)
        stream.trusted = True
        stream.deadline = self._now() + self._idle_seconds
        self._trusted.add(stream)
        return True

    def close(self, stream: Stream) -> None:
        stream.stop_timer()
        (self._trusted if stream.trusted else self._untrusted).discard(stream)

    # -- waiting for a message ---------------------------------------------------------------

    async def read(self, stream: Stream, read: Callable[[], Awaitable[T]]) -> T:
        """The stream's next message, or StreamClosedError at its deadline (or earlier, when the
        guard closes it meanwhile)."""
        loop = asyncio.get_running_loop()
        if stream.closed_for is None and loop.time() >= stream.deadline:
            stream.closed_for = "idle" if stream.trusted else "auth"
        if stream.closed_for is not None:
            raise StreamClosedError(stream.closed_for)
        if stream.timer is None:
            stream.timer = loop.call_at(stream.deadline, stream.due)
        stream.task = asyncio.current_task()
        stream.reading = True
        try:
            return await read()
        except asyncio.CancelledError:
            if stream.closed_for is None or stream.task is None:
                raise  # not the guard's doing: the call itself was cancelled
            stream.task.uncancel()
            raise StreamClosedError(stream.closed_for) from None
        finally:
            stream.reading = False

    async def first_message(self, read: Callable[[], Awaitable[T]]) -> T:
        """A unary-request call's one message. Never refused: an honest call's message comes
        with its headers. While more calls than the untrusted pool holds are waiting, those
        waiting longer than WAIT_GRACE_SECONDS are closed, the longest first: an honest call
        that a busy CPU delays between its start and its message is never chosen, one that
        never sends its message soon is."""
        now = self._now()
        stream = Stream(Kind.REQUEST, False, now + self._auth_seconds, now)
        self._waiting[stream] = None
        self._evict_waiting()
        try:
            return await self.read(stream, read)
        finally:
            stream.stop_timer()
            self._waiting.pop(stream, None)

    def _evict_waiting(self) -> None:
        now = self._now()
        while len(self._waiting) > self.max_untrusted:
            oldest = next(iter(self._waiting))
            if now - oldest.since <= WAIT_GRACE_SECONDS:
                break
            del self._waiting[oldest]
            oldest.close_now("crowded")
        # Calls that stay crowded with no newcomer to trigger this are looked at again later.
        if len(self._waiting) > self.max_untrusted and self._evicting is None:
            self._evicting = asyncio.get_running_loop().call_later(
                WAIT_GRACE_SECONDS, self._evict_again
            )

    def _evict_again(self) -> None:
        self._evicting = None
        self._evict_waiting()

    # -- activity ----------------------------------------------------------------------------

    def end(self, stream: Stream) -> None:
        """An item was answered. A pending session keeps its first deadline: answering items
        with bad tokens does not buy it time."""
        if stream.trusted:
            stream.deadline = self._now() + self._idle_seconds
        elif stream.kind is Kind.REFLECTION:
            stream.deadline = self._now() + self._auth_seconds

    def counts(self) -> tuple[int, int]:
        """(trusted, untrusted) streams open now."""
        return len(self._trusted), len(self._untrusted)

    def unauthenticated(self) -> int:
        """Streams and calls without a valid token yet (metrics)."""
        return len(self._untrusted) + len(self._waiting)

    # -- drain -------------------------------------------------------------------------------

    def drain(self) -> None:
        """Refuse new streams; a busy stream ends after the item it is answering, an idle one
        now. Runs on the event loop."""
        self.draining = True
        for stream in (*self._trusted, *self._untrusted):
            stream.close_now("drain")
