"""docs/testing.md's integration test example runs as written, against real processes."""

from __future__ import annotations

import re
from pathlib import Path

from leoflow_xcom.testing.paths import ROOT


def test_the_documented_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "docs/testing.md", "exec"), namespace)
    example = namespace["test_push_then_fetch"]
    assert callable(example)
    example(tmp_path)
