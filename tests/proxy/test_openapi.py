"""schemathesis against the proxy's own /openapi.json: no 5xx, every response fits the spec."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fixture_types import ClientFor
from tests.proxy.conftest import BIN, Proxy
from tests.proxy.data import push_fixture_data


def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    proxy: Proxy, client_for: ClientFor, tmp_path: Path
) -> None:
    push_fixture_data(client_for)  # so some generated requests hit real entries
    done = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{proxy.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--header",
            f"Authorization: Bearer {proxy.token}",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=tmp_path,  # schemathesis keeps a cache directory where it runs
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
