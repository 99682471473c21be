"""The committed stubs are exactly what the pinned generator makes from the .proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from leoflow_xcom.testing.paths import ROOT


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
    )
    committed = ROOT / "services" / "leoflow_xcom" / "_proto"
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    current = {p.name: p.read_bytes() for p in committed.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(current), "stub files differ: run `make protos`"
    for name, data in fresh.items():
        assert current[name] == data, f"{name} drifted from the .proto: run `make protos`"
