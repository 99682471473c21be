"""The bench's echo service runs on the product's grpc.aio server (app.start's extra_handlers,
asyncio behaviours), and its composite floor makes the same Redis call a push or a fetch makes,
through the product's asyncio client: what it pushes lands where the service's push script puts
it, and its fetch reads back what the service stored. Otherwise `make bench`'s throughput
target would compare the service with a floor that does less."""

from __future__ import annotations

from bench import echo, stack, workload
from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import NO_RETRY, XComClient
from leoflow_xcom.core import keys


def _job(running: stack.Stack, scenario: str, run_id: str) -> workload.Job:
    return workload.Job(
        scenario=scenario,
        target=running.target,
        redis_url=running.redis.url,
        run_id=run_id,
        push_token=running.token(workload.DAG_ID, run_id, workload.PUSH_TASK),
        fetch_token=running.token(workload.DAG_ID, run_id, workload.FETCH_TASK),
        payload=64,
        seconds=0.0,
    )


def _ask(running: stack.Stack, scenario: str, run_id: str, calls: int) -> list[object]:
    call, close = workload.build(_job(running, scenario, run_id))
    try:
        return [call(i) for i in range(calls)]
    finally:
        close()


def test_echo_and_composite_floor_on_the_aio_server() -> None:
    with stack.start() as running:
        # The bare echoes answer without Redis.
        for scenario in ("echo-unary-push", "echo-session-push", "echo-sdk-session-push"):
            assert len(_ask(running, scenario, "echo_run", 3)) == 3
        fetched = _ask(running, "echo-session-fetch", "echo_run", 2)
        assert all(
            isinstance(a, pb.SessionResponse) and a.fetch.value == echo.value_of(64)
            for a in fetched
        )

        # The composite floor's push runs the product's push script: the run's index holds the
        # members it wrote, and the run is registered, as after a service push.
        pushed = _ask(running, "echo-store-session-push", "floor_run", 3)
        assert all(isinstance(a, pb.SessionResponse) and a.push.expires_at_ms > 0 for a in pushed)
        client = running.redis.client()
        try:
            run = keys.run_keys(workload.DAG_ID, "floor_run")
            assert client.zcard(run.index) == 3
            assert client.zscore(keys.RUNS_ALL_KEY, keys.run_member(workload.DAG_ID, "floor_run"))
        finally:
            client.close()

        # Its fetch GETs the key the service's push wrote.
        push = running.token(workload.DAG_ID, "floor_run", workload.PUSH_TASK)
        with XComClient(running.target, push, retry=NO_RETRY) as sdk:
            sdk.push_json(workload.FETCH_KEY, b'{"rows":3}')
        answers = _ask(running, "echo-store-session-fetch", "floor_run", 2)
        assert all(
            isinstance(a, pb.SessionResponse) and a.fetch.value == b'{"rows":3}' for a in answers
        )
