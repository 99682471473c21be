"""XComs for the browser tests, pushed through the real gRPC service into DAGs of config/dags."""

from __future__ import annotations

from leoflow_xcom.core import limits
from tests.fixture_types import ClientFor

RUN = "manual__2026-11-30"
OLDER_RUN = "scheduled__2026-11-29"
# A key is shown too, and it is part of links: markup, quotes, `?`, `#`, `%` and spaces.
HOSTILE_KEY = "<img src=x onerror=alert(1)> \"q\" 'a' ?x=1#f 100%"
HOSTILE = "<script>alert(1)</script> \"quoted\" 'single' & <b>bold</b> naïve ☃ 日本"
LONG_LINE = "x" * 5_000
EXTRACT_OUTPUT = {"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}


def big_value() -> str:
    """A JSON string of exactly the 256 KiB limit: the largest value the service accepts."""
    return "a" * (limits.MAX_VALUE_BYTES - 2)


def push_ui_data(client_for: ClientFor) -> None:
    """etl_daily (TTL 2 d): extract/output (schema), transform/stats (schema), load/hostile,
    load/long, load/big (256 KiB), load/<HOSTILE_KEY>, and an older run; fanout_files:
    list_files/files and process_file mapped 0..2."""
    facts = {"logical_date": "2026-11-30T06:00:00+00:00"}
    client_for("etl_daily", OLDER_RUN, "extract").push("output", {"rows": 1})
    client_for("etl_daily", RUN, "extract", **facts).push("output", EXTRACT_OUTPUT)
    client_for("etl_daily", RUN, "transform", **facts).push("stats", {"kept": 40, "dropped": 2})
    load = client_for("etl_daily", RUN, "load", **facts)
    load.push("hostile", {"note": HOSTILE, HOSTILE: [HOSTILE]})
    load.push(HOSTILE_KEY, HOSTILE)
    load.push("long", {"line": LONG_LINE})
    load.push("big", big_value())
    client_for("fanout_files", RUN, "list_files").push("files", ["a.csv", "b.csv", "c.csv"])
    for i, name in enumerate(["a.csv", "b.csv", "c.csv"]):
        client_for("fanout_files", RUN, "process_file", i).push(
            "result", {"file": name, "bytes": 100 * (i + 1)}
        )
