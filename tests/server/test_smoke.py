from __future__ import annotations

from tests.conftest import ClientFor


def test_push_then_fetch_from_a_declared_dependency(client_for: ClientFor) -> None:
    client_for(task_id="a").push("typed", {"rows": 3})
    assert client_for(task_id="b").pull("a", "typed") == {"rows": 3}
