"""Failover figures repeated in pytest's terminal summary, so a run without `-s` shows them."""

from __future__ import annotations

import pytest

from tests.cluster.failover.test_primary_death import PRINTED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if PRINTED:
        terminalreporter.section("failover figures")
        for line in PRINTED:
            terminalreporter.write_line(line)
