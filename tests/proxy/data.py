"""XComs pushed through the real gRPC service for the proxy tests."""

from __future__ import annotations

from tests.fixture_types import ClientFor

LOGICAL = "2026-05-21T10:00:00+02:00"  # recorded from the token; shown in UTC
LOGICAL_UTC_V1 = "2026-05-21T08:00:00+00:00"
LOGICAL_UTC_V2 = "2026-05-21T08:00:00Z"
RUN_AFTER = "2026-05-21T08:05:00+00:00"
RUN_AFTER_V2 = "2026-05-21T08:05:00Z"


def push_fixture_data(client_for: ClientFor) -> None:
    """run_1: a/typed, a/"k/with/slash", b/none (JSON null), mapped[0..2]/out; run_2: a/typed."""
    facts = {"logical_date": LOGICAL, "run_after": RUN_AFTER}
    a = client_for(task_id="a", **facts)
    a.push("typed", {"rows": 3})
    a.push("k/with/slash", "slashy")
    client_for(task_id="b", **facts).push("none", None)
    for i in range(3):
        client_for(task_id="mapped", map_index=i, **facts).push("out", [i, "x"])
    client_for(task_id="a", run_id="run_2").push("typed", {"rows": 7})
