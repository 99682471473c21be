"""In-place migration of a layout-1 or layout-2 store to layout 3, run once by the first
process that finds an older layout (`init`, also `serve` and `dags apply`).

Layout 3 moves the global keys (layout version, policy registry, run indexes) under one hash
tag (core/keys.py), so they share a slot on Redis Cluster. Each is merged into its new name
(zsets by the newest score, hashes keeping a field the new key already has, the policy
revision by the higher count) and the old one deleted, so an interrupted migration is simply
run again. Layouts 1 and 2 only ever ran on one Redis node (not a cluster). Both layout keys
end up saying 3: a layout-2 service started afterwards refuses the store.

Layout 1 to 2:
Layout 2 adds, per run, the by-key index and the quota counters, and replaces the lexical run
registry `xcom:runs` with the time-ordered run indexes. Values, their TTLs and the existing
indexes stay as they are, so nothing is rewritten that a reader depends on. Each run is rebuilt
from its index and meta hash in bounded batches (one script call each); a rebuilt run starts
from scratch, so an interrupted migration is simply run again. A lock key keeps two processes
from migrating at once; stop layout-1 services before starting layout-2 ones (an upgrade
replaces them anyway), or their pushes in between miss the new indexes until they expire.
"""

from __future__ import annotations

import logging
import time
from typing import cast

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import LayoutMismatchError
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.store.node_scripts import NodeScript

log = logging.getLogger(__name__)

LOCK_KEY = f"{keys.GLOBAL_TAG}:layout:migrating"
LOCK_SECONDS = 600
BATCH = 1_000
RUNS_PER_READ = 500

# KEYS: index, expiry, meta, by_key, quota, runs (all), runs (this DAG)
# ARGV: offset, batch, run member. Returns how many members this batch read.
REBUILD_RUN = """#!lua
local I, E, M, K, Q = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local offset, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
if offset == 0 then
  redis.call('DEL', K, Q)
end
local members = redis.call('ZRANGEBYLEX', I, '-', '+', 'LIMIT', offset, batch)
if #members == 0 then
  return 0
end
local metas = redis.call('HMGET', M, unpack(members))
local newest = 0
for i, m in ipairs(members) do
  local ti = string.match(m, '^(.*!)')
  local meta = metas[i]
  if ti and meta then
    local size, _, expires = string.match(meta, '^(%d+):(%d+):(%d+)$')
    size, expires = tonumber(size) or 0, tonumber(expires) or 0
    redis.call('ZADD', K, 0, string.sub(m, #ti + 1) .. '!' .. string.sub(ti, 1, -2))
    redis.call('HINCRBY', Q, 'n', 1)
    redis.call('HINCRBY', Q, 'b', size)
    redis.call('HINCRBY', Q, 'n:' .. ti, 1)
    redis.call('HINCRBY', Q, 'b:' .. ti, size)
    if expires > newest then newest = expires end
  end
end
local ttl = redis.call('PTTL', I)
if ttl > 0 then
  redis.call('PEXPIRE', K, ttl)
  redis.call('PEXPIRE', Q, ttl)
end
if newest > 0 then
  for i = 6, 7 do
    redis.call('ZADD', KEYS[i], 'GT', newest, ARGV[3])
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
return #members
"""


def migrate(client: StoreClient, found: bytes, wait_seconds: float = 120.0) -> None:
    """Bring a layout-1 or layout-2 store (`found`: the old layout key's value) to layout 3,
    or wait for another process doing it."""
    if not client.set(LOCK_KEY, "1", nx=True, ex=LOCK_SECONDS):
        _wait_for_other(client, found, wait_seconds)
        return
    try:
        if found == b"1":
            _rebuild_v1_runs(client)
        moved = _move_global_keys(client)
        client.set(keys.LAYOUT_KEY, keys.LAYOUT_VERSION)
        client.set(keys.V2_LAYOUT_KEY, keys.LAYOUT_VERSION)
        log.info(
            "migrated the XCom store from layout %s to %d (%d global keys moved)",
            found.decode(errors="replace"),
            keys.LAYOUT_VERSION,
            moved,
        )
    finally:
        client.delete(LOCK_KEY)


def migrate_from_v1(client: StoreClient, wait_seconds: float = 120.0) -> None:
    """Bring a layout-1 store to the current layout."""
    migrate(client, b"1", wait_seconds)


def _rebuild_v1_runs(client: StoreClient) -> None:
    rebuild = NodeScript(client, REBUILD_RUN)
    runs = members = 0
    start = 0
    while True:
        chunk = cast(
            list[bytes],
            client.zrangebylex(keys.LEGACY_RUNS_KEY, "-", "+", start=start, num=RUNS_PER_READ),
        )
        for raw in chunk:
            try:
                dag_id, run_id = keys.parse_run_member(raw.decode())
            except (ValueError, UnicodeDecodeError):
                continue  # not written by layout 1: nothing to rebuild
            offset = 0
            while True:
                done = int(
                    rebuild(
                        keys.run_bookkeeping(dag_id, run_id),
                        [offset, BATCH, keys.run_member(dag_id, run_id)],
                    )
                )
                offset += done
                if done < BATCH:
                    break
            runs += 1
            members += offset
        if len(chunk) < RUNS_PER_READ:
            break
        start += len(chunk)
    client.delete(keys.LEGACY_RUNS_KEY)
    log.info("rebuilt layout 1's runs: %d runs, %d XComs", runs, members)


def _move_global_keys(client: StoreClient) -> int:
    pairs = dict(keys.V2_GLOBAL_KEYS)
    for raw in client.scan_iter(match=f"{keys.V2_DAG_RUNS_PREFIX}*", count=1000):
        old = raw.decode() if isinstance(raw, bytes) else str(raw)
        pairs[old] = f"{keys.GLOBAL_TAG}:runs:dag:{old.removeprefix(keys.V2_DAG_RUNS_PREFIX)}"
    moved = 0
    for old, new in pairs.items():
        kind = client.type(old)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind == "none":
            continue
        ttl = int(client.pttl(old))
        if kind == "zset":
            items = cast(list[tuple[bytes, float]], client.zrange(old, 0, -1, withscores=True))
            for i in range(0, len(items), BATCH):
                client.zadd(new, dict(items[i : i + BATCH]), gt=True)
        elif kind == "hash":
            for field, value in cast(dict[bytes, bytes], client.hgetall(old)).items():
                client.hsetnx(new, field, value)
        elif kind == "string":
            old_count = int(cast(bytes, client.get(old)) or 0)
            if old_count > int(cast(bytes | None, client.get(new)) or 0):
                client.set(new, old_count)
        else:
            continue  # not ours: left as it is
        if ttl > 0 and int(client.pttl(new)) < ttl:
            client.pexpire(new, ttl)
        client.delete(old)
        moved += 1
    return moved


def _wait_for_other(client: StoreClient, found: bytes, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if client.get(keys.LAYOUT_KEY) == str(keys.LAYOUT_VERSION).encode():
            return
        time.sleep(0.5)
    raise LayoutMismatchError(
        f"another process has been migrating the XCom store from layout {found.decode()} to "
        f"{keys.LAYOUT_VERSION} for over {wait_seconds:.0f} s; check its logs. If it died, "
        f"delete the key {LOCK_KEY} (it also expires in {LOCK_SECONDS} s) and start again.",
        {"found": found.decode(), "supported": str(keys.LAYOUT_VERSION)},
    )
