"""`@pytest.mark.standalone_only("why")` on a cluster or Sentinel run: reported as skipped with
its reason in pytest's summary, never dropped; on standalone it runs. A real pytest process on a
throwaway test file, on standalone and on cluster (Sentinel takes the same path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leoflow_xcom.testing.paths import ROOT

CONFTEST = """
from tests.deployment import mark_standalone_only


def pytest_configure(config):
    config.addinivalue_line("markers", "standalone_only(reason): see tests/deployment.py")


def pytest_collection_modifyitems(items):
    mark_standalone_only(items)
"""
TESTS = """
import pytest


@pytest.mark.standalone_only("reads one node's INFO")
def test_one_node():
    pass


def test_any_mode():
    pass
"""


@pytest.mark.parametrize(
    ("mode", "summary", "reason"),
    [
        ("standalone", "2 passed", None),
        (
            "cluster",
            "1 passed, 1 skipped",
            "standalone only, not on cluster: reads one node's INFO",
        ),
    ],
)
def test_the_reason_is_in_the_summary(
    tmp_path: Path, mode: str, summary: str, reason: str | None
) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_marked.py").write_text(TESTS)
    env = {
        **os.environ,
        "LEOFLOW_TEST_REDIS_MODE": mode,
        "PYTHONPATH": str(ROOT),
        # Fast: none of the installed pytest plugins (schemathesis, hypothesis...) is needed.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary in done.stdout, done.stdout
    if reason is not None:
        skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED [1]")]
        assert len(skipped) == 1 and skipped[0].endswith(reason), done.stdout
