"""What operators watch in Redis: memory against maxmemory, keys, AOF health.

On a cluster every primary is asked: keys are summed over the primaries (replicas hold copies),
memory is the fullest shard's (the first to refuse pushes), and AOF health holds only when it
holds on every primary.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import redis

from leoflow_xcom.store.connection import StoreClient, primaries, translated


@dataclasses.dataclass(frozen=True, slots=True)
class StoreStats:
    used_memory: int
    maxmemory: int  # 0 means no limit (never the case with our redis.conf)
    keys: int
    aof_enabled: bool
    aof_last_write_ok: bool
    aof_rewrite_in_progress: bool

    @property
    def memory_ratio(self) -> float:
        return self.used_memory / self.maxmemory if self.maxmemory else 0.0

    def memory_warning(self, threshold: float) -> bool:
        return self.maxmemory > 0 and self.memory_ratio >= threshold


def read_stats(client: StoreClient) -> StoreStats:
    shards = [_read_node(node) for node in primaries(client)]
    fullest = max(shards, key=lambda st: st.memory_ratio)
    return StoreStats(
        used_memory=fullest.used_memory,
        maxmemory=fullest.maxmemory,
        keys=sum(st.keys for st in shards),
        aof_enabled=all(st.aof_enabled for st in shards),
        aof_last_write_ok=all(st.aof_last_write_ok for st in shards),
        aof_rewrite_in_progress=any(st.aof_rewrite_in_progress for st in shards),
    )


def _read_node(client: redis.Redis) -> StoreStats:
    with translated():
        info: dict[str, Any] = {**client.info("memory"), **client.info("persistence")}
        keyspace: dict[str, Any] = client.info("keyspace")
    keys = sum(int(db.get("keys", 0)) for db in keyspace.values() if isinstance(db, dict))
    return StoreStats(
        used_memory=int(info.get("used_memory", 0)),
        maxmemory=int(info.get("maxmemory", 0)),
        keys=keys,
        aof_enabled=bool(int(info.get("aof_enabled", 0))),
        aof_last_write_ok=info.get("aof_last_write_status", "ok") == "ok",
        aof_rewrite_in_progress=bool(int(info.get("aof_rewrite_in_progress", 0))),
    )
