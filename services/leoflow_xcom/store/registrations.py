"""Runs this process listed on Redis Cluster a moment ago, so their next pushes skip REGISTER_RUN.

On a cluster a run's registration lives in the run indexes' slot, on another shard than the run.
Sent with every push, it made each push two calls on two shards (~10 % on a push's p50 here) and
made the shard of the indexes take a write for every push of the whole cluster. Within
WINDOW_SECONDS of a registration this process saw confirmed, a push of the same run sends only
the push script; the script says whether the run was just (re)created (its first push, the first
after a clear emptied it, or after all its values expired), and then the run is registered again
before the push is acknowledged, as it is when the push outlives the registered expiry.

A registration stamps the run `now + ttl + grace`, the grace covering the window plus a margin
for the two shards' clocks and a push running a moment later: a run stays listed at most that
much longer than its newest value, showing no values (readers skip it).

What the window costs: a registration lost after it was confirmed (a failover of the indexes'
shard without LEOFLOW_REDIS_MIN_REPLICA_ACKS, or a clear of the run racing a push) is restored by
the run's first push after the window, instead of its next push.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WINDOW_SECONDS = 5.0
# Over the window: the two shards' clocks may differ and a push may run a little later.
MARGIN_MS = 1000
# The same for every process (whatever its window), so that runs registered by different
# processes keep their order in the run indexes.
GRACE_MS = int(WINDOW_SECONDS * 1000) + MARGIN_MS
# Runs remembered per process; beyond that the oldest are forgotten (they register again).
CAPACITY = 4096


class RecentRegistrations:
    def __init__(
        self,
        window_seconds: float = WINDOW_SECONDS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= window_seconds <= WINDOW_SECONDS:
            raise ValueError(f"window_seconds must be 0..{WINDOW_SECONDS} (the grace covers that)")
        self._window = window_seconds
        self._capacity = capacity
        self._clock = clock
        # run member -> (registered expiry in Unix ms, when it was confirmed); insertion order
        # is confirmation order, so the first entry is the oldest.
        self._runs: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def registered_until(self, run: str) -> int | None:
        """The expiry this process saw registered for `run` within the window, else None."""
        found = self._runs.get(run)
        if found is None or self._clock() - found[1] >= self._window:
            return None
        return found[0]

    def confirmed(self, run: str, expires_ms: int) -> None:
        with self._lock:
            self._runs.pop(run, None)
            self._runs[run] = (expires_ms, self._clock())
            while len(self._runs) > self._capacity:
                del self._runs[next(iter(self._runs))]

    def forget(self, run: str) -> None:
        with self._lock:
            self._runs.pop(run, None)
