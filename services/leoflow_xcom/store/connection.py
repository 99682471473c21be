"""The redis-py client, built once per process, and the one place redis errors are translated.

Above this package nothing sees a redis-py exception: they become StoreUnavailableError
(unreachable, stalled, loading, read-only replica) or StoreFullError (maxmemory, noeviction).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis
import redis.backoff
import redis.exceptions
import redis.retry

from leoflow_xcom.core.errors import StoreFullError, StoreUnavailableError
from leoflow_xcom.settings import RedisSettings

# redis-py names this error "OOM command not allowed when used memory > 'maxmemory'".
_FULL = redis.exceptions.OutOfMemoryError
_UNAVAILABLE = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError (Redis replaying its AOF)
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
)


def connect(settings: RedisSettings) -> redis.Redis:
    password = settings.password()
    pool = redis.BlockingConnectionPool.from_url(
        settings.url,
        username=settings.username,
        password=password.get_secret_value() if password else None,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        socket_keepalive=True,
        max_connections=settings.max_connections,
        # A caller waits for a free connection at most this long: a stall can't pile up threads.
        timeout=settings.socket_timeout,
        # One quick retry recovers a connection that died with a Redis restart; no more, so the
        # caller's deadline holds.
        retry=redis.retry.Retry(redis.backoff.ConstantBackoff(0.01), 1),
    )
    return redis.Redis(connection_pool=pool)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except _FULL:
        raise StoreFullError.default() from None
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError.because(_describe(exc)) from None
    except redis.exceptions.NoPermissionError:
        raise StoreUnavailableError.because(
            "Redis refused the command for this service's ACL user; check the ACL users that "
            "`leoflow-xcom init` writes"
        ) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return "Redis is loading its data after a restart"
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "Redis did not answer in time"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "Redis is a read-only replica"
    return "cannot connect to Redis"
