"""Property: whatever bytes Redis holds under an XCom's keys (written around the service, by an
older version, or by hand), the proxy answers both generations without a 5xx. The values and
run facts are written directly with the store's key helpers, then read over HTTP from the real
proxy; the `http` fixture also checks every body against Airflow's OpenAPI documents."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leoflow_xcom.core import keys

DAG, RUN, TASK = "test_dag", "run_bytes", "t"
TTL_MS = 600_000
# Shapes the service refuses on push but that a store may still hold.
AWKWARD = [
    b'"\\ud800"',  # a lone surrogate escape: decodes, then cannot be UTF-8 encoded
    b'["\\udfff", {"\\ud800": 1}]',
    b"1e400",
    b"NaN",
    b"-Infinity",
    b"9" * 5_000,
    b"[" * 60_000 + b"]" * 60_000,
    b"\xff\xfe\x00",
    b"",
    b"{",
    b'{"a": 1}{"b": 2}',
    "é".encode("latin-1"),
]
FACTS = [
    None,
    b"",
    b"not json",
    b"[]",
    b'{"logical_date": 5, "run_after": null}',
    b'{"logical_date": "2026-13-40T00:00:00+00:00"}',
    b'{"run_after": "2026-05-21T08:00:00"}',
    b'{"logical_date": "2026-05-21T08:00:00+02:00", "run_after": "\\ud800"}',
]
# Keys that a path can carry: no control characters or lone surrogates (documented limit).
KEY_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda k: k.strip() == k and k not in (".", ".."))


def store(r: redis.Redis, key: str, value: bytes, facts: bytes | None) -> None:
    run = keys.run_keys(DAG, RUN)
    # One XCom per example: the run's listing must not page earlier examples' keys past it.
    r.delete(run.index, run.by_key, run.expiry, run.meta)
    member = keys.member(TASK, -1, key)
    now = int(time.time() * 1000)
    r.set(run.value(member), value, px=TTL_MS)
    r.zadd(run.index, {member: 0})
    r.zadd(run.by_key, {keys.key_member(TASK, -1, key): 0})
    r.zadd(run.expiry, {member: now + TTL_MS})
    r.hset(run.meta, member, f"{len(value)}:{now}:{now + TTL_MS}")
    for runs in (keys.RUNS_ALL_KEY, keys.dag_runs_key(DAG)):
        r.zadd(runs, {keys.run_member(DAG, RUN): now + TTL_MS})
    if facts is None:
        r.hdel(run.meta, keys.RUN_INFO_FIELD)
    else:
        r.hset(run.meta, keys.RUN_INFO_FIELD, facts)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    key=KEY_TEXT,
    value=st.one_of(st.binary(max_size=512), st.sampled_from(AWKWARD)),
    facts=st.one_of(st.sampled_from(FACTS), st.binary(max_size=64)),
)
def test_no_stored_bytes_make_the_proxy_fail(
    http: httpx.Client, r: redis.Redis, key: str, value: bytes, facts: bytes | None
) -> None:
    store(r, key, value, facts)
    for gen in ("v1", "v2"):
        base = f"/api/{gen}/dags/{DAG}/dagRuns/{RUN}/taskInstances"
        for url in (f"{base}/{TASK}/xcomEntries", f"{base}/~/xcomEntries"):
            listed = http.get(url)
            assert listed.status_code == 200, (url, listed.text[:300])
            assert key in [e["key"] for e in listed.json()["xcom_entries"]]
        entry = f"{base}/{TASK}/xcomEntries/{quote(key, safe='')}"
        for stringify in ("true", "false"):
            resp = http.get(entry, params={"stringify": stringify})
            assert resp.status_code == 200, (gen, key, value[:40], resp.text[:300])
            assert resp.json()["key"] == key
