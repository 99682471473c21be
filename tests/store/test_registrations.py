"""The per-process memory of recent run registrations: the window, the capacity, forgetting."""

from __future__ import annotations

import pytest

from leoflow_xcom.store.registrations import (
    GRACE_MS,
    MARGIN_MS,
    WINDOW_SECONDS,
    RecentRegistrations,
)


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_registration_counts_only_inside_its_window() -> None:
    clock = Clock()
    recent = RecentRegistrations(window_seconds=5, clock=clock)
    assert recent.registered_until("run") is None
    recent.confirmed("run", 123)
    clock.now += 4.9
    assert recent.registered_until("run") == 123
    clock.now += 0.1
    assert recent.registered_until("run") is None


def test_window_zero_registers_every_push() -> None:
    never = RecentRegistrations(window_seconds=0, clock=Clock())
    never.confirmed("run", 1)
    assert never.registered_until("run") is None


def test_a_window_longer_than_the_grace_covers_is_refused() -> None:
    assert GRACE_MS == WINDOW_SECONDS * 1000 + MARGIN_MS
    with pytest.raises(ValueError, match=r"window_seconds must be 0\.\.5\.0"):
        RecentRegistrations(window_seconds=WINDOW_SECONDS + 1)


def test_the_oldest_confirmation_is_forgotten_beyond_the_capacity() -> None:
    recent = RecentRegistrations(capacity=2, clock=Clock())
    recent.confirmed("a", 1)
    recent.confirmed("b", 2)
    recent.confirmed("a", 3)  # confirmed again: now the newest
    recent.confirmed("c", 4)
    assert recent.registered_until("b") is None
    assert (recent.registered_until("a"), recent.registered_until("c")) == (3, 4)


def test_a_cleared_run_is_forgotten() -> None:
    recent = RecentRegistrations(clock=Clock())
    recent.confirmed("run", 1)
    recent.forget("run")
    recent.forget("never-seen")
    assert recent.registered_until("run") is None
