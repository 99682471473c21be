"""A fixed offered rate per user, in calls per second (not tasks: a DAG run has 3 to 20 calls).

Locust's `constant_throughput` paces whole tasks; a DAG run's calls would then come in bursts
of very different sizes. Here every call waits for its slot: slot n of a user is at
start + n / rate. A user that falls behind (the target or Locust itself is saturated) does not
burst to catch up: it starts again from now, so the achieved rate drops below the offered one,
and that gap is how the capacity shape sees saturation.

The rate is shared by all paced users of a process and may change while they run (the capacity
shape raises it step by step). Rate 0 means unpaced: calls back to back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Rate:
    """The current offered rate per user (calls/s); one per process."""

    def __init__(self, per_user: float = 0.0) -> None:
        self.per_user = per_user


RATE = Rate()


class Pacer:
    def __init__(
        self,
        rate: Rate = RATE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._next: float | None = None

    def wait(self) -> None:
        """Return at this user's next slot (at once when unpaced or late)."""
        rate = self._rate.per_user
        if rate <= 0:
            self._next = None
            return
        interval = 1.0 / rate
        now = self._clock()
        if self._next is None:
            # A random phase, so users do not call in lockstep.
            self._next = now + self._rng.uniform(0.0, interval)
        elif self._next < now - interval:
            self._next = now  # behind by more than a slot: no catch-up burst
        if self._next > now:
            self._sleep(self._next - now)
        self._next += interval
