"""One auto-pipelined Redis connection per asyncio worker: the store client of the grpc.aio design.

Every command issued in one event-loop iteration leaves in one write; replies come back in
order and hiredis parses them into FIFO futures. On one event loop no pool and no lock are
needed, which is where redis.asyncio spends its CPU (a lock, a condition and a pool checkout per
command; docs/performance.md has the side-by-side figures).

What a production client needs beyond that, and how it is done here:
- **A deadline per call.** One timer per connection watches the oldest unanswered command;
  past LEOFLOW_REDIS_SOCKET_TIMEOUT the connection is closed and every command on it fails with
  STORE_UNAVAILABLE, as a stalled socket does for the sync client. Such a command may have run:
  the caller's retry is safe because pushes are idempotent per key.
- **Reconnecting.** A call made while no connection is open opens one (bounded by
  LEOFLOW_REDIS_CONNECT_TIMEOUT); concurrent callers share that attempt.
- **AUTH, SELECT, TLS** as the settings say (`rediss://`, with redis-py's `ssl_ca_certs` query
  parameter); in Sentinel mode the current primary is asked from the Sentinels on every
  (re)connect, so the client follows a failover.
- **NOSCRIPT** (a restarted Redis, a promoted replica): the script is loaded and run again, once.
- **Errors** become StoreUnavailableError or StoreFullError, as store/connection.py does for
  redis-py.

- **Redis Cluster**: one client per primary, built with that node's `address` (the settings
  still give AUTH, TLS and timeouts); store/aio_store.py picks the node by the slot map. A
  MOVED/ASK reply is SlotMovedError, so that the caller re-reads the slot map and tries again.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import ssl
import time
import urllib.parse
from typing import Any, cast

import hiredis

from leoflow_xcom.core.errors import StoreFullError, StoreUnavailableError
from leoflow_xcom.settings import RedisSettings

_UNAVAILABLE_PREFIXES = (
    "LOADING",
    "READONLY",
    "NOREPLICAS",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
)


class NoScriptError(Exception):
    """The server does not have the script (loaded again by `script`)."""


class SlotMovedError(Exception):
    """MOVED or ASK from a cluster node: another node serves the key's slot now (a failover or
    a reshard). Not an XComError: the cluster's caller follows it (store/aio_store.py), and
    only then, if it stands, is it the store's error (`unavailable`)."""

    def unavailable(self) -> StoreUnavailableError:
        return StoreUnavailableError.because(f"Redis answered {str(self).split(' ', 1)[0]}")


class ConnectionLostError(Exception):
    """The cause (`__cause__`) of a StoreUnavailableError raised because the connection could
    not be opened, failed or missed its deadline: on a cluster the slot map may name a dead or
    stalled primary, which never answers MOVED. A cause, not a subclass, because XComError
    subclasses stand for their reason on the wire."""


def connection_lost(error: BaseException) -> bool:
    """Whether `error` is this client's StoreUnavailableError for a lost connection."""
    return isinstance(error, StoreUnavailableError) and isinstance(
        error.__cause__, ConnectionLostError
    )


def _lost(why: str) -> StoreUnavailableError:
    error = StoreUnavailableError.because(why)
    error.__cause__ = ConnectionLostError(why)
    return error


def translated(error: hiredis.ReplyError) -> Exception:
    """A Redis error reply as the store's error, or as itself when it is the caller's bug."""
    text = str(error)
    if text.startswith("OOM"):
        return StoreFullError.default()
    if text.startswith("NOSCRIPT"):
        return NoScriptError(text)
    if text.startswith("WRONGPASS"):
        return StoreUnavailableError.because(
            "Redis refused this service's user or password (WRONGPASS); check "
            "LEOFLOW_REDIS_USERNAME and LEOFLOW_REDIS_PASSWORD_FILE"
        )
    if text.startswith("NOPERM"):
        return StoreUnavailableError.because(
            "Redis refused the command for this service's ACL user; check the ACL users that "
            "`leoflow-xcom init` writes"
        )
    if text.startswith(("MOVED ", "ASK ")):
        return SlotMovedError(text)
    if text.startswith(_UNAVAILABLE_PREFIXES):
        return StoreUnavailableError.because(f"Redis answered {text.split(' ', 1)[0]}")
    return error


class _Connection(asyncio.Protocol):
    """One socket: commands written in batches, replies matched to futures in order."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._pending: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failure = "cannot connect to Redis"
        # The WAIT that ends this iteration's write (`wait_after`): its future, replicas, ms.
        self._wait: tuple[asyncio.Future[Any], int, int] | None = None

    @property
    def open(self) -> bool:
        return self._transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
        error = _lost(self._failure)
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            future, _ = self._waiting.popleft()
            if future.done():
                continue  # its caller was cancelled; the reply is dropped in order
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(translated(reply))
                if str(reply).startswith("READONLY"):
                    # A primary demoted by a failover: reconnect, to the primary the Sentinels
                    # name now. What is still waiting here fails (the caller retries).
                    self.close("Redis is a read-only replica (a failover happened)")
                    return
            else:
                future.set_result(reply)

    def call(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        if self._transport is None:
            raise _lost(self._failure)
        if not self._pending:
            self._loop.call_soon(self._flush)  # one write for all of this iteration's calls
        self._pending.append(hiredis.pack_command(args))
        future: asyncio.Future[Any] = self._loop.create_future()
        self._waiting.append((future, time.monotonic()))
        if self._timer is None:
            self._timer = self._loop.call_later(self._timeout, self._check_deadline)
        return future

    def wait_after(self, replicas: int, timeout_ms: int) -> asyncio.Future[Any]:
        """`WAIT replicas timeout_ms` at the end of this iteration's write, after every command
        written with it; shared by every caller of this iteration (its future is theirs to
        shield). One WAIT per write, not per command: Redis runs nothing else of this
        connection while a WAIT blocks it, so WAITs in a row would cost a replica round trip
        each."""
        if self._transport is None:
            raise _lost(self._failure)
        if self._wait is None:
            if not self._pending:
                self._loop.call_soon(self._flush)
            self._wait = (self._loop.create_future(), replicas, timeout_ms)
        else:  # one store asks the same of every push; the strictest if ever not
            future, wanted, ms = self._wait
            self._wait = (future, max(wanted, replicas), max(ms, timeout_ms))
        return self._wait[0]

    def close(self, why: str) -> None:
        if self._transport is not None:
            self._failure = why
            self._transport.abort()  # connection_lost fails what is still waiting

    def _flush(self) -> None:
        if self._wait is not None:
            future, replicas, timeout_ms = self._wait
            self._wait = None
            if self._transport is None:  # lost before the write: never sent, never answered
                future.set_exception(_lost(self._failure))
            else:
                wait: tuple[Any, ...] = ("WAIT", replicas, timeout_ms)
                self._pending.append(hiredis.pack_command(wait))
                self._waiting.append((future, time.monotonic()))
        if self._transport is not None and self._pending:
            self._transport.write(b"".join(self._pending))
        self._pending.clear()

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        oldest = self._waiting[0][1]
        late = oldest + self._timeout - time.monotonic()
        if late <= 0:
            self.close("Redis did not answer in time")
        else:
            self._timer = self._loop.call_later(late, self._check_deadline)


class PipelinedRedis:
    def __init__(
        self,
        settings: RedisSettings,
        password: str | None = None,
        address: tuple[str, int] | None = None,
    ) -> None:
        """`address`: this node, not the one the settings name (no Sentinel asked); a cluster
        client needs one per primary."""
        if settings.mode == "cluster" and address is None:
            raise ValueError("on a cluster the pipelined client serves one node: give `address`")
        self._settings = settings
        self._node = address
        if password is None:
            secret = settings.password()
            password = secret.get_secret_value() if secret else None
        self._password = password
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    async def execute(self, *args: Any) -> Any:
        """One command; its reply, or StoreUnavailableError / StoreFullError."""
        connection = self._connection
        if connection is None or not connection.open:
            connection = await self._connected()
        return await connection.call(args)

    async def script(
        self, source: str, keys: list[str], args: list[Any], read_only: bool = False
    ) -> Any:
        """EVALSHA (EVALSHA_RO for a `no-writes` script, as store/node_scripts.py sends it);
        a NOSCRIPT loads the script and runs it again."""
        command = _evalsha(source, keys, args, read_only)
        try:
            return await self.execute(*command)
        except NoScriptError:
            await self.execute("SCRIPT", "LOAD", source)
            return await self.execute(*command)

    async def script_acked(
        self, source: str, keys: list[str], args: list[Any], replicas: int, timeout_ms: int
    ) -> tuple[Any, Any]:
        """The script, then `WAIT replicas timeout_ms` behind it in the same write on the same
        connection (one WAIT for every acked call of this loop iteration): the script's reply
        and WAIT's, each a value or the error it ended with (returned, not raised). A NOSCRIPT
        loads the script and sends both again."""
        command = _evalsha(source, keys, args, read_only=False)
        for tries_left in (1, 0):
            connection = self._connection
            if connection is None or not connection.open:
                connection = await self._connected()
            try:
                reply = connection.call(command)
                acked = connection.wait_after(replicas, timeout_ms)
            except StoreUnavailableError as exc:  # closed since: neither was written
                return exc, exc
            # The shared WAIT shielded: one caller cancelled must not cancel it for the rest.
            answers = await asyncio.gather(reply, asyncio.shield(acked), return_exceptions=True)
            if not isinstance(answers[0], NoScriptError) or not tries_left:
                return answers[0], answers[1]
            await self.execute("SCRIPT", "LOAD", source)
        raise AssertionError("unreachable: the last try returns")

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close("the client was closed")
            self._connection = None

    async def _connected(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        task = self._connecting
        try:
            connection = await asyncio.shield(task)
        finally:
            if self._connecting is task and task.done():
                self._connecting = None
        self._connection = connection
        return connection

    async def _open(self) -> _Connection:
        settings = self._settings
        host, port = await self._address()
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(settings.socket_timeout),
                    host,
                    port,
                    ssl=self._tls(),
                ),
                settings.connect_timeout,
            )
        except (TimeoutError, OSError):
            why = "cannot connect to Redis"
            raise StoreUnavailableError.because(why) from ConnectionLostError(why)
        try:
            if self._password is not None:
                user = (settings.username,) if settings.username else ()
                await connection.call(("AUTH", *user, self._password))
            db = (urllib.parse.urlsplit(settings.url).path or "/0").strip("/") or "0"
            if db != "0":
                await connection.call(("SELECT", db))
        except BaseException:
            connection.close("the connection's set-up failed")
            raise
        return connection

    async def _address(self) -> tuple[str, int]:
        if self._node is not None:
            return self._node
        settings = self._settings
        if settings.mode == "sentinel":
            return await asyncio.to_thread(self._primary_from_sentinels)
        parts = urllib.parse.urlsplit(settings.url)
        return parts.hostname or "127.0.0.1", parts.port or 6379

    def _primary_from_sentinels(self) -> tuple[str, int]:
        # Rare (a connect) and blocking: off the event loop, through redis-py's own discovery.
        import redis.exceptions
        import redis.sentinel

        settings = self._settings
        sentinels = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            settings.node_addresses(),
            sentinel_kwargs={
                "socket_timeout": settings.socket_timeout,
                "socket_connect_timeout": settings.connect_timeout,
                **({"ssl": True} if settings.tls else {}),
            },
        )
        try:
            host, port = sentinels.discover_master(settings.sentinel_master)  # type: ignore[no-untyped-call]
        except redis.exceptions.RedisError:
            raise StoreUnavailableError.because(
                "no Sentinel knows a reachable primary (a failover may be under way)"
            ) from None
        return str(host), int(port)

    def _tls(self) -> ssl.SSLContext | None:
        if not self._settings.tls:
            return None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self._settings.url).query)
        ca = query.get("ssl_ca_certs", [None])[0]
        return ssl.create_default_context(cafile=ca)


@functools.cache
def _sha(source: str) -> str:
    # Per call on the hot path: the scripts are a few constants, hashed once each.
    return hashlib.sha1(source.encode("utf-8")).hexdigest()


def _evalsha(source: str, keys: list[str], args: list[Any], read_only: bool) -> tuple[Any, ...]:
    sha = _sha(source)
    return ("EVALSHA_RO" if read_only else "EVALSHA", sha, len(keys), *keys, *args)
