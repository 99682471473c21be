"""The Redis ACL users of the appliance, as ACL SETUSER argument lists. One source of truth.

    service   the gRPC service: reads and writes `xcom:*` keys, runs its Lua scripts
    proxy     the UI proxy: reads only. It may run scripts (the listing script), but Redis checks
              every command a script runs against the caller's ACL, so a script cannot write
              for it either (proved by tests/proxy/test_readonly.py).

Why `~xcom:*` and not the read-only key pattern `%R~xcom:*` for the proxy: EVALSHA declares its
keys as read-write, so Redis refuses it on `%R` keys even for a `no-writes` script. The command
list (`@read`, no `@write`) is what makes the user read-only. `@dangerous` is removed from both
(KEYS, FLUSHALL, CONFIG, DEBUG, ...): neither process needs it.

Usage (the init job and `make run`): `client.execute_command("ACL", "SETUSER", *args)` for each
list; `reset` first makes re-running idempotent and drops any stale permission.
"""

from __future__ import annotations

from typing import Final

import redis
import redis.exceptions

from leoflow_xcom.core import keys
from leoflow_xcom.settings import SettingsFileError
from leoflow_xcom.store.connection import translated

SERVICE_USER: Final = "xcom"
PROXY_USER: Final = "xcom-ui"

# Commands the scripts call that are in no category granted above (TIME is only @fast).
# Never exists: deleting it is a harmless write, so it tells whether a user may write.
_WRITE_PROBE_KEY = keys.KEY_PATTERN.removesuffix("*") + "proxy:write-probe"

_SCRIPT_SUPPORT = ("+evalsha", "+script|load", "+time")
_CONNECTION = ("+ping",)


def _user(name: str, password: str, commands: tuple[str, ...]) -> list[str]:
    if not password:
        raise ValueError(f"the Redis ACL user {name!r} needs a non-empty password")
    return [
        name,
        "reset",
        "on",
        f">{password}",
        f"~{keys.KEY_PATTERN}",
        "resetchannels",
        "-@all",
        *commands,
        *_SCRIPT_SUPPORT,
        *_CONNECTION,
        "-@dangerous",
    ]


def acl_users(service_password: str, proxy_password: str) -> dict[str, list[str]]:
    """ACL SETUSER arguments (after the word SETUSER), keyed "service" and "proxy"."""
    return {
        "service": _user(
            SERVICE_USER, service_password, ("+@read", "+@write", "+@transaction", "+eval")
        ),
        # MULTI/EXEC: PolicyStore.load reads revision and policies in one transaction.
        "proxy": _user(PROXY_USER, proxy_password, ("+@read", "+@transaction")),
    }


def refuse_writable(client: redis.Redis) -> None:
    """Fail unless Redis refuses this connection a write (the proxy must be read-only)."""
    with translated():
        try:
            client.delete(_WRITE_PROBE_KEY)
        except redis.exceptions.NoPermissionError:
            return
    raise SettingsFileError(
        f"the proxy's Redis user may write; run it as the read-only ACL user {PROXY_USER!r} "
        "(LEOFLOW_UI_REDIS_USERNAME, LEOFLOW_UI_REDIS_PASSWORD_FILE)"
    )
