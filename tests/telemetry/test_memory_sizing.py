"""scripts/memory_sizing.py (the figures in docs/operations.md) runs end to end on a small N."""

from __future__ import annotations

import subprocess
import sys

from leoflow_xcom.testing.paths import ROOT


def test_memory_sizing_script_reports_every_size() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "memory_sizing.py"),
            "--scale",
            "0.005",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and " B |" in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "100 B",
        "1,024 B",
        "10,240 B",
        "65,536 B",
    ]
    for row in rows:
        value = int(row.split("|")[1].strip().removesuffix(" B").replace(",", ""))
        per_xcom = float(row.split("|")[3].replace(",", ""))
        assert per_xcom > value  # the value plus its keys and index entries
