"""A crash that tears the last write of the append-only file (e.g. power loss) costs at most
that last write, and never leaves half of a push: Redis (aof-load-truncated yes, as in our
redis.conf) drops the torn tail, including an incomplete MULTI/EXEC, and loads the rest."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from leoflow_xcom.core import keys
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.writer import XComWriter
from tests.servers import SERVER_KINDS, start_redis

N = 50


@pytest.mark.slow
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_torn_aof_tail_loses_only_the_last_write_and_never_half_a_push(
    kind: str, tmp_path: Path
) -> None:
    server = start_redis(kind, tmp_path / kind)
    try:
        writer = XComWriter(connect(RedisSettings(url=server.url)))
        for i in range(N):
            writer.push("d", "r", XComRef("t", f"k{i}"), f'"{i}"'.encode(), 3600)
        server.client().config_set("appendfsync", "always")
        writer.push("d", "r", XComRef("t", "k-last"), b'"last"', 3600)
        server.kill()
        aof = max(
            (tmp_path / kind).glob("appendonlydir/*.incr.aof"), key=lambda p: p.stat().st_mtime
        )
        data = aof.read_bytes()
        aof.write_bytes(data[: len(data) - 7])  # tear the tail of the last transaction
        server.start()
        raw = server.client()
        run = keys.run_keys("d", "r")
        present = [i for i in range(N) if raw.exists(run.value(keys.member("t", -1, f"k{i}")))]
        indexed = {m.decode() for m in cast(list[bytes], raw.zrange(run.index, 0, -1))}
        last_value = raw.exists(run.value(keys.member("t", -1, "k-last")))
        last_indexed = keys.member("t", -1, "k-last") in indexed
        print(
            f"{kind}: acknowledged={N + 1} present={len(present) + last_value} "
            f"torn_last_write_lost={not last_value}"
        )
        assert present == list(range(N))
        assert last_value == last_indexed  # all of the torn push, or none of it
        log = (tmp_path / kind / "server.log").read_text(errors="replace")
        assert "truncated" in log.lower() or "incomplete" in log.lower() or last_value
    finally:
        server.stop()
