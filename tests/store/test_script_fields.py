"""The Lua scripts take the meta hash's reserved fields from core/keys.py, declared once at
the top of each script, so changing a field's spelling there changes every script."""

from __future__ import annotations

import pytest

from leoflow_xcom.core import keys
from leoflow_xcom.store import scripts


@pytest.mark.parametrize("name", ["PUSH", "LIST", "RUN_SUMMARY"])
def test_reserved_fields_are_declared_once_from_keys(name: str) -> None:
    script: str = getattr(scripts, name)
    second_line = script.splitlines()[1]
    assert second_line == (
        f"local RUN_INFO, FIRST_PUSH = '{keys.RUN_INFO_FIELD}', '{keys.RUN_FIRST_PUSH_FIELD}'"
    )
    for field in (keys.RUN_INFO_FIELD, keys.RUN_FIRST_PUSH_FIELD):
        assert script.count(f"'{field}'") == 1, f"{name} spells {field} outside the declaration"
