"""The project image installs exactly compose/requirements.lock: it must pin every runtime
dependency of pyproject.toml and of its [server] extra (the image runs the service), or the
image build fails late, in compose-test."""

from __future__ import annotations

import re
import tomllib

from leoflow_xcom.testing.paths import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    server = project["optional-dependencies"]["server"]
    wanted = {_name(r) for r in [*project["dependencies"], *server]}
    lock = (ROOT / "compose" / "requirements.lock").read_text().splitlines()
    pinned = {_name(line) for line in lock if line and not line.startswith("#")}
    assert all("==" in line for line in lock if line and not line.startswith("#"))
    missing = wanted - pinned
    assert not missing, f"add to compose/requirements.lock (see its header): {sorted(missing)}"
