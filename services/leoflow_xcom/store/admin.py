"""What `leoflow-xcom init` does to Redis as its admin user: connect (bounded wait), load the
ACL file, check the result. Redis errors go through the store's one translation
(connection.translated) and reach init as AdminError, saying which step failed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import cast

import redis
import redis.exceptions

from leoflow_xcom.core.errors import StoreUnavailableError, XComError
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import acl
from leoflow_xcom.store.connection import StoreClient, connect, translated


class AdminError(Exception):
    """Redis cannot be set up; the message says why and what to do. Never holds a password."""


def wait_for_admin(
    settings: RedisSettings, passwords: Sequence[str], wait_seconds: float
) -> StoreClient:
    """A client logged in as the admin user, trying each candidate password (the current one,
    then the one before a rotation). Waits at most `wait_seconds` for Redis to answer."""
    deadline = time.monotonic() + wait_seconds
    last = "no answer"
    while True:
        refused = 0
        for password in passwords:
            try:
                client = _client(settings, password)
            except StoreUnavailableError as exc:  # a cluster with no reachable node yet
                last = exc.message
                continue
            try:
                client.ping()
                return client
            except redis.exceptions.AuthenticationError:
                refused += 1
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                last = type(exc).__name__
            client.close()
        if refused == len(passwords):
            raise AdminError(
                f"Redis at {settings.url} refused the {acl.ADMIN_USER} user's password: it runs "
                "with ACL users from other secrets. Restart Redis so it loads the ACL file "
                "`leoflow-xcom init` wrote (e.g. `docker compose restart redis`), then run init "
                "again"
            )
        if time.monotonic() >= deadline:
            raise AdminError(
                f"Redis at {settings.url} did not answer within {wait_seconds:.0f} s ({last})"
            )
        time.sleep(0.2)


@contextlib.contextmanager
def _step(doing: str) -> Iterator[None]:
    """A Redis failure during `doing`, translated as everywhere in store/, as AdminError."""
    try:
        with translated():
            yield
    except XComError as exc:
        raise AdminError(f"{doing}: {exc.message}") from None


def _client(settings: RedisSettings, password: str) -> StoreClient:
    admin = settings.model_copy(update={"username": acl.ADMIN_USER, "password_file": None})
    # The candidate password is passed directly: a rotated-away one has no file.
    return connect(admin, password=password)


def load_acl_file(client: StoreClient) -> None:
    """Make a running Redis take the ACL file as it is on disk (ACL LOAD is all or nothing)."""
    try:
        with _step("loading the ACL file"):
            client.acl_load()
    except redis.exceptions.ResponseError as exc:
        text = str(exc)
        if "not configured to use an ACL file" in text:
            raise AdminError(
                "Redis runs without an ACL file: start it with `--aclfile` pointing at the file "
                "`leoflow-xcom init` writes (compose.yaml and `make run` do)"
            ) from None
        raise AdminError(f"Redis refused to load the ACL file: {text}") from None


def check_users(client: StoreClient, expected: Sequence[str]) -> None:
    """Every appliance user exists, and the default user cannot log in."""
    with _step("checking the ACL users"):
        users = client.acl_users()
        default = cast(dict[str, object], client.acl_getuser("default"))
    names = {n.decode() if isinstance(n, bytes) else str(n) for n in users}
    missing = sorted(set(expected) - names)
    if missing:
        raise AdminError(f"Redis lacks the ACL users {', '.join(missing)} after ACL LOAD")
    flags = default.get("flags", [])
    if "off" not in cast(list[str], flags):
        raise AdminError("the Redis default user is still enabled after ACL LOAD")
