"""`python -m bench --against REV`: the revision is checked out beside this tree (reused while
clean at the same commit, stale checkouts removed), each side imports its own `leoflow_xcom` and
`bench` through PYTHONPATH rather than the virtualenv's editable install, and both sides' own
benches produce figures. One tiny round at 1 client; no timing is asserted (figures on a shared
machine are what the real comparison's rounds and spread are for)."""

from __future__ import annotations

import math
from pathlib import Path

from bench import against
from leoflow_xcom.testing.paths import ROOT


def _init_file(tree: Path) -> str:
    return str((tree / "services" / "leoflow_xcom" / "__init__.py").resolve())


def test_against_head_measures_each_side_with_its_own_tree(tmp_path: Path) -> None:
    base = tmp_path / "checkouts"
    stale = base / "stale"  # a leftover of an earlier comparison
    stale.mkdir(parents=True)
    (stale / "leftover").write_text("x")
    scenarios = ["sdk-fetch-session"]
    try:
        found = against.compare(
            "HEAD",
            1,
            scenarios,
            side_args=["--quick", "--levels", "1"],
            base=base,
            say=lambda _: None,
        )
        old_tree = found.sides["old"].tree
        assert old_tree.parent == base
        assert not stale.exists()
        assert found.commit == against.resolve("HEAD")
        # Each side imported its own tree's code, the old one not the shared editable install.
        assert str(Path(found.paths["old"]["leoflow_xcom"]).resolve()) == _init_file(old_tree)
        assert str(Path(found.paths["new"]["leoflow_xcom"]).resolve()) == _init_file(ROOT)
        assert Path(found.paths["old"]["bench"]).resolve().is_relative_to(old_tree.resolve())

        compared = against.rows(found)
        assert [(r.scenario, r.clients, r.metric) for r in compared] == [
            ("sdk-fetch-session", 1, "p50"),
            ("sdk-fetch-session", 1, "client_cpu_us"),
        ]
        for row in compared:
            assert row.old > 0 and row.new > 0 and math.isfinite(row.ratio)
        assert "verdict:" in against.table(found, compared)

        # A clean checkout at the same commit is reused, not made again.
        marker = (old_tree / ".git").stat().st_ino
        assert against.checkout(found.commit, base) == old_tree
        assert (old_tree / ".git").stat().st_ino == marker
    finally:
        for tree in base.iterdir():
            against.remove(tree)
