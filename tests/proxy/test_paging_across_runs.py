"""`~` listings page across many runs (the time-ordered run index, read until the page is full):
every window of the full, ordered listing, whatever the offset and limit; `total_entries` is
exact on the last page and, before it, more than what the page reached (so a client paging until
`offset >= total_entries` reaches every entry)."""

from __future__ import annotations

import httpx
import redis

from leoflow_xcom.core.model import XComRef
from leoflow_xcom.store.writer import XComWriter
from tests.dag_data import publish_test_policies

URL = "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries"


def test_every_window_of_a_listing_across_runs(http: httpx.Client, r: redis.Redis) -> None:
    publish_test_policies(r)
    writer = XComWriter(r)
    for i in range(30):  # runs of 0..3 XComs, so windows start and end inside and between runs
        for k in range(i % 4):
            writer.push("test_dag", f"run_{i:02d}", XComRef("a", f"k{k}"), b"1", 3600)
    full = http.get(URL, params={"limit": 100}).json()
    ids = [(e["run_id"], e["task_id"], e["key"]) for e in full["xcom_entries"]]
    assert full["total_entries"] == len(ids) == sum(i % 4 for i in range(30))
    for limit in (1, 4, 7, 100):
        for offset in range(0, len(ids) + 2, 3):
            page = http.get(URL, params={"limit": limit, "offset": offset}).json()
            got = [(e["run_id"], e["task_id"], e["key"]) for e in page["xcom_entries"]]
            assert got == ids[offset : offset + limit], (limit, offset)
            if offset + limit >= len(ids):
                assert page["total_entries"] == len(ids), (limit, offset)
            else:
                assert offset + len(got) < page["total_entries"] <= len(ids), (limit, offset)
