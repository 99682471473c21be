"""One background loop: a named daemon thread calling a function every N seconds.

The service's upkeep (policy refresh, run registry pruning, the memory watch) must outlive any
one failure: an exception in a tick is logged with its traceback and the loop goes on at the
next interval. A loop that died silently would leave the service running on stale policies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicWorker:
    """Calls `tick` every `interval` seconds on a daemon thread named `name`, until stop().

    run_first: also call it once right at start(). stop() is safe to call more than once and
    before start().
    """

    def __init__(
        self, name: str, interval: float, tick: Callable[[], None], *, run_first: bool = False
    ) -> None:
        self.name = name
        self.interval = interval
        self._tick = tick
        self._run_first = run_first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        if self._run_first:
            self._tick_once()
        while not self._stop.wait(self.interval):
            self._tick_once()

    def _tick_once(self) -> None:
        try:
            self._tick()
        except Exception:
            # Anything: a bug or an error nobody foresaw must not end the loop.
            log.exception("%s failed; retrying in %g s", self.name, self.interval)
