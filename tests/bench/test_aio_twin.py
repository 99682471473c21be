"""The bench's grpc.aio twin does the service's work, not less: what it stores the sync service
reads back (same script, same keys), and its refusals carry the service's reasons. Otherwise
its CPU per call in `make bench` would compare unlike things."""

from __future__ import annotations

import pytest

from bench import stack, workload
from leoflow_xcom.client import NO_RETRY, XComClient, XComForbiddenError, XComNotFoundError


@pytest.mark.parametrize("store", ["redis-py", "pipelined"])
def test_aio_twin_stores_and_refuses_like_the_service(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEOFLOW_BENCH_AIO_STORE", store)  # the twin's Redis client
    with stack.start(aio=True) as running:
        push = running.token(workload.DAG_ID, "twin_run", workload.PUSH_TASK)
        fetch = running.token(workload.DAG_ID, "twin_run", workload.FETCH_TASK)
        for transport in ("session", "unary"):
            key = f"from_aio_{transport}"
            with XComClient(
                running.aio_target, push, retry=NO_RETRY, transport=transport
            ) as aio_pusher:
                result = aio_pusher.push(key, {"rows": 3})
                assert result.size_bytes == len(b'{"rows":3}')
                with pytest.raises(XComForbiddenError):  # load does not depend on notify
                    aio_pusher.pull("notify", key)
            with XComClient(running.target, fetch, retry=NO_RETRY, transport=transport) as sync:
                assert sync.pull(workload.PUSH_TASK, key) == {"rows": 3}
            with XComClient(
                running.aio_target, fetch, retry=NO_RETRY, transport=transport
            ) as aio_reader:
                assert aio_reader.pull(workload.PUSH_TASK, key) == {"rows": 3}
                with pytest.raises(XComNotFoundError):
                    aio_reader.pull(workload.PUSH_TASK, "never_pushed")
