"""The auto-pipelined asyncio Redis client against real servers: order under concurrency,
deadlines on a stalled server, reconnecting after a restart, AUTH with an ACL user, SELECT,
NOSCRIPT, error replies, and Sentinel discovery that follows a failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import hiredis
import pytest

from leoflow_xcom.core.errors import StoreFullError, StoreUnavailableError
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.pipelined import PipelinedRedis
from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.redis_modes import sentinel_settings
from tests.servers import PRIMARY_KIND, start_redis

SCRIPT = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    """Its own server: these tests stall, restart and reconfigure it."""
    found = start_redis(PRIMARY_KIND, tmp_path / "redis")
    yield found
    found.stop()


def _settings(server: RedisProcess, db: int = 0, **more: object) -> RedisSettings:
    return RedisSettings(
        url=f"redis://127.0.0.1:{server.port}/{db}",
        **{"socket_timeout": 0.5, **more},  # type: ignore[arg-type]
    )


def test_concurrent_commands_are_answered_in_order(server: RedisProcess) -> None:
    async def run() -> list[object]:
        client = PipelinedRedis(_settings(server))
        try:
            await asyncio.gather(*(client.execute("SET", f"k{i}", f"v{i}") for i in range(500)))
            return list(await asyncio.gather(*(client.execute("GET", f"k{i}") for i in range(500))))
        finally:
            await client.close()

    assert asyncio.run(run()) == [f"v{i}".encode() for i in range(500)]
    with server.client() as check:
        # All of it went down one connection (plus the checking client's own).
        assert int(check.info("stats")["total_connections_received"]) <= 3


def test_a_stalled_server_fails_calls_by_their_deadline_and_the_next_call_reconnects(
    server: RedisProcess,
) -> None:
    async def run() -> tuple[float, bytes]:
        client = PipelinedRedis(_settings(server, socket_timeout=0.3))
        try:
            await client.execute("SET", "k", "before")
            server.pause()
            started = time.monotonic()
            try:
                with pytest.raises(StoreUnavailableError, match="did not answer in time"):
                    await asyncio.gather(client.execute("GET", "k"), client.execute("GET", "k"))
                waited = time.monotonic() - started
            finally:
                server.resume()
            value = cast(bytes, await client.execute("GET", "k"))
            return waited, value
        finally:
            await client.close()

    waited, value = asyncio.run(run())
    # Bounded by the deadline, not a hang (a loose bound: this machine may be loaded).
    assert waited < 5
    assert value == b"before"


def test_a_restarted_server_is_reconnected_to(server: RedisProcess) -> None:
    async def run() -> bytes:
        client = PipelinedRedis(_settings(server))
        try:
            await client.execute("SET", "k", "kept")
            server.restart()  # replays its AOF
            await asyncio.sleep(0.2)  # the loop sees the old connection close
            return cast(bytes, await client.execute("GET", "k"))
        finally:
            await client.close()

    assert asyncio.run(run()) == b"kept"


def test_an_acl_user_logs_in_and_a_wrong_password_is_named(
    server: RedisProcess, tmp_path: Path
) -> None:
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "pipe", "on", ">s3cret", "~*", "+@all")
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret\n")
    bad.write_text("wrong\n")
    good.chmod(0o600)
    bad.chmod(0o600)

    async def run(password_file: Path) -> object:
        client = PipelinedRedis(_settings(server, username="pipe", password_file=password_file))
        try:
            return await client.execute("ACL", "WHOAMI")
        finally:
            await client.close()

    assert asyncio.run(run(good)) == b"pipe"
    with pytest.raises(StoreUnavailableError, match="WRONGPASS"):
        asyncio.run(run(bad))


def test_the_database_of_the_url_is_selected(server: RedisProcess) -> None:
    async def run() -> None:
        client = PipelinedRedis(_settings(server, db=3))
        try:
            await client.execute("SET", "in-three", "yes")
        finally:
            await client.close()

    asyncio.run(run())
    with server.client(db=3) as check:
        assert check.get("in-three") == b"yes"


def test_a_missing_script_is_loaded_and_run(server: RedisProcess) -> None:
    async def run() -> tuple[object, object]:
        client = PipelinedRedis(_settings(server))
        try:
            first = await client.script(SCRIPT, ["a"], ["1"])
            await client.execute("SCRIPT", "FLUSH")
            return first, await client.script(SCRIPT, ["b"], ["2"])
        finally:
            await client.close()

    assert asyncio.run(run()) == ([b"a", b"1"], [b"b", b"2"])


def test_error_replies_become_the_store_errors(server: RedisProcess) -> None:
    async def run() -> None:
        client = PipelinedRedis(_settings(server))
        try:
            await client.execute("SET", "text", "x")
            # A caller's bug stays what Redis said; the connection goes on.
            with pytest.raises(hiredis.ReplyError, match="WRONGTYPE"):
                await client.execute("LPUSH", "text", "y")
            await client.execute("CONFIG", "SET", "maxmemory", "1")
            try:
                with pytest.raises(StoreFullError):
                    await client.execute("SET", "big", "x" * 10_000)
            finally:
                await client.execute("CONFIG", "SET", "maxmemory", "0")
            assert await client.execute("GET", "text") == b"x"
        finally:
            await client.close()

    asyncio.run(run())


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[LocalSentinelGroup]:
    """Its own group: the test fails its primary over."""
    binary = find_binary(PRIMARY_KIND)
    assert binary is not None
    group = LocalSentinelGroup(binary, tmp_path / "sentinel").start()
    yield group
    group.stop()


def test_sentinel_mode_reaches_the_primary_and_follows_a_failover(
    sentinel_group: LocalSentinelGroup,
) -> None:
    redis_sentinel = sentinel_group
    settings = sentinel_settings(redis_sentinel, socket_timeout=2)

    async def write_until_accepted(client: PipelinedRedis, value: str) -> None:
        # A write on the demoted primary fails once (READONLY) and the client reconnects to
        # the primary the Sentinels name; bounded while they agree on it.
        deadline = time.monotonic() + 30
        while True:
            try:
                await client.execute("SET", "pipelined:sentinel", value)
                return
            except StoreUnavailableError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def run() -> tuple[object, object]:
        client = PipelinedRedis(settings)
        try:
            await write_until_accepted(client, "before")
            before_role = await client.execute("ROLE")
            first = redis_sentinel.sentinels[0].client()
            old = first.sentinel_get_master_addr_by_name(redis_sentinel.master)
            first.execute_command("SENTINEL", "FAILOVER", redis_sentinel.master)  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + 30
            while first.sentinel_get_master_addr_by_name(redis_sentinel.master) == old:
                assert time.monotonic() < deadline, "no failover within 30 s"
                await asyncio.sleep(0.2)
            first.close()
            await write_until_accepted(client, "after")
            return before_role, await client.execute("GET", "pipelined:sentinel")
        finally:
            await client.close()

    role, value = asyncio.run(run())
    assert isinstance(role, list) and role[0] == b"master"
    assert value == b"after"
