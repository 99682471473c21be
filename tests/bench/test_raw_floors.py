"""The bench's raw-Redis push floor runs the product's push script with the writer's own call,
against a real Redis: a key-layout change cannot leave `make bench` calling it the old way."""

from __future__ import annotations

import redis

from bench import workload
from leoflow_xcom.core import keys
from leoflow_xcom.testing.redis_server import RedisProcess


def test_raw_redis_push_floor_stores_through_the_push_script(
    redis_server: RedisProcess, r: redis.Redis
) -> None:
    job = workload.Job(
        scenario="redis-push",
        target="",
        redis_url=redis_server.url,
        run_id="bench_run",
        push_token="",
        fetch_token="",
        payload=1024,
        seconds=0.0,
    )
    call, close = workload.build(job)
    try:
        for i in range(3):
            reply = call(i)
            assert isinstance(reply, list) and int(reply[0]) > 0  # expiry, not a refusal (-1)
    finally:
        close()
    run = keys.run_keys(workload.DAG_ID, "bench_run")
    assert r.zcard(run.index) == 3
    assert r.zscore(keys.RUNS_ALL_KEY, keys.run_member(workload.DAG_ID, "bench_run"))
