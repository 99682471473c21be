"""`make run` as a new user meets it: start, follow the printed walk-through, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.ports import free_port


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_make_run_walkthrough_then_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")},
        "LEOFLOW_RUN_STATE_DIR": str(state),
        "LEOFLOW_RUN_REDIS_PORT": str(free_port()),
        "LEOFLOW_RUN_XCOM_PORT": str(free_port()),
        "LEOFLOW_RUN_UI_PORT": str(free_port()),
    }
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run_local.py")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl-C" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "make run did not come up"
            time.sleep(0.2)
        run_env = state / "run.env"
        assert oct(run_env.stat().st_mode & 0o777) == "0o600"
        acl_dir = state / "acl"
        assert oct(acl_dir.stat().st_mode & 0o777) == "0o700"
        assert {oct(p.stat().st_mode & 0o777) for p in acl_dir.iterdir()} == {"0o600"}
        # The printed walk-through, in a fresh shell that only sources run.env.
        script = f"""
set -e
source {run_env}
export LEOFLOW_XCOM_TOKEN=$(leoflow-xcom token --dag etl_daily --run manual__1 --task extract)
leoflow-xcom push output '{{"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}}'
export LEOFLOW_XCOM_TOKEN=$(leoflow-xcom token --dag etl_daily --run manual__1 --task transform)
leoflow-xcom fetch extract output
leoflow-xcom ls
curl -sf -u "$LEOFLOW_UI_USER:$LEOFLOW_UI_PASSWORD" \\
  "$LEOFLOW_UI_URL/api/v1/dags/etl_daily/dagRuns/manual__1/taskInstances/extract/xcomEntries/output"
curl -sf -u "$LEOFLOW_UI_USER:$LEOFLOW_UI_PASSWORD" \\
  "$LEOFLOW_UI_URL/dags/etl_daily/dagRuns/manual__1"
"""
        clean = {k: v for k, v in env.items() if not k.startswith("LEOFLOW_")}
        clean["PATH"] = "/usr/bin:/bin"
        done = subprocess.run(
            ["bash", "-c", script], env=clean, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert '{"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}' in done.stdout
        assert '"key":"output"' in done.stdout and "'rows': 42" in done.stdout
        assert "<h1>Run <code>manual__1</code></h1>" in done.stdout  # the XCom browser's page
        printed = (tmp_path / "run.log").read_text()
        assert f"#   http://127.0.0.1:{env['LEOFLOW_RUN_UI_PORT']}/\n" in printed
        password = (state / "secrets" / "ui-password").read_text().strip()
        assert password not in printed  # dev secrets stay in their 0600 files
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        code = proc.wait(30)
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert code == 0, output
    assert "run: stopped" in output
    assert "stopping xcom-ui" in output and "stopping redis" in output
