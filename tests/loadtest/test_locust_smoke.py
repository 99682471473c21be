"""CI proof that the Locust scenarios run: a short headless run against a real service.

Needs the `loadtest` extra (locust), which `make test` installs; without it the test fails.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.redis_proc import ROOT


@pytest.mark.timeout(60)
def test_headless_locust_smoke_passes_its_thresholds() -> None:
    # Never import locust here: it monkey-patches the whole process for gevent.
    if importlib.util.find_spec("locust") is None:
        pytest.fail("locust is missing: `make test` installs the loadtest extra", pytrace=False)
    run = subprocess.run(
        [sys.executable, "-m", "loadtest.run", "--seconds", "6", "--users", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "skipping the UI-browsing scenario" in out
    assert "PASS hot: push" in out and "PASS hot: fetch" in out
    assert "PASS sweep: push limit+1 (refused)" in out
    assert "FAIL" not in out
