"""The memory warning: one log line when Redis crosses the threshold, one when it is back.

grpc.health.v1 has no warning state (SERVING / NOT_SERVING only), and a full Redis still serves
reads, so the service stays SERVING; the warning lives in the logs and in the
`leoflow_xcom_redis_memory_warning` gauge.
"""

from __future__ import annotations

import logging
import threading

from leoflow_xcom.core.errors import XComError
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.store.stats import read_stats

log = logging.getLogger(__name__)

CHECK_SECONDS = 15.0


class MemoryWatch:
    def __init__(self, client: StoreClient, warn_ratio: float, interval: float = CHECK_SECONDS):
        self._client = client
        self._warn_ratio = warn_ratio
        self._interval = interval
        self.warning = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)

    def check(self) -> None:
        try:
            stats = read_stats(self._client)
        except XComError:
            return  # unreachable Redis is reported by health and redis_up, not here
        except Exception:  # the watch thread must outlive anything: log, check again later
            log.exception("Redis memory check failed unexpectedly")
            return
        warning = stats.memory_warning(self._warn_ratio)
        if warning and not self.warning:
            log.warning(
                "Redis memory at %.0f%% of maxmemory (warning at %.0f%%); pushes fail with "
                "STORE_FULL at 100%%: raise maxmemory or shorten TTLs",
                stats.memory_ratio * 100,
                self._warn_ratio * 100,
            )
        elif self.warning and not warning:
            log.info("Redis memory back under %.0f%% of maxmemory", self._warn_ratio * 100)
        self.warning = warning

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        self.check()
        while not self._stop.wait(self._interval):
            self.check()
