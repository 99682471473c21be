"""Locust scenarios for the XCom service (gRPC users, Locust's documented gRPC pattern).

1. HotPathUser: realistic DAG runs of config/dags (fan-out, fan-in, a mapped task), each task
   fetching its upstreams' outputs lazily and pushing its own, payloads of 100 B to 64 KB.
2. SizeSweepUser: pushes up to the 256 KiB limit and one byte over; the refusal
   (INVALID_ARGUMENT / XCOM_TOO_LARGE) is the expected outcome, counted as a success.
3. UiBrowserUser: the UI reading XComs through the read-only HTTP proxy (Airflow's
   /api/v1 xcomEntries routes, Basic auth); only when LEOFLOW_UI_URL is set.

Run by `make loadtest` (loadtest/run.py), which starts Redis and the service as processes.
Needs LEOFLOW_XCOM_SIGNING_KEY_FILE to mint task tokens. Headless runs end with exit code 1
when a threshold below is missed.
"""

from __future__ import annotations

# grpc must run on gevent before any channel exists (Locust's gRPC pattern).
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

import collections  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import grpc  # noqa: E402
from locust import HttpUser, between, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from leoflow_xcom._proto import xcom_pb2 as pb  # noqa: E402
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc  # noqa: E402
from leoflow_xcom.core import tokens  # noqa: E402
from leoflow_xcom.core.limits import MAX_VALUE_BYTES  # noqa: E402
from loadtest import dags  # noqa: E402
from loadtest.grpc_user import DEADLINE_SECONDS, EXPECT, GrpcUser  # noqa: E402

# name prefix -> (p50 ms, p99 ms, failure ratio): the limits a headless run must stay within.
# Generous on purpose: Locust, gevent, the service and Redis share a 2-core machine; the precise
# figures come from `make bench`.
THRESHOLDS = {
    "hot": (10.0, 100.0, 0.0),
    "sweep": (60.0, 400.0, 0.0),
    "ui": (60.0, 500.0, 0.0),
}

DAGS = dags.load()
# Runs the hot path finished, for the UI scenario to browse: (dag_id, run_id, task_id).
RECENT: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=200)
# Finished runs, oldest first; beyond DONE_KEPT they are cleared.
DONE: collections.deque[tuple[str, str]] = collections.deque()
DONE_KEPT = 200


def _signing_key() -> bytes:
    path = os.environ.get("LEOFLOW_XCOM_SIGNING_KEY_FILE")
    if not path:
        raise SystemExit("loadtest: set LEOFLOW_XCOM_SIGNING_KEY_FILE to mint task tokens")
    return Path(path).read_text().strip().encode()


def _metadata(token: str, name: str, expect: str | None = None) -> tuple[tuple[str, str], ...]:
    md = [("authorization", f"Bearer {token}"), ("x-loadtest-name", name)]
    if expect:
        md.append((EXPECT, expect))
    return tuple(md)


class _XComUser(GrpcUser):
    abstract = True

    def on_start(self) -> None:
        self.key = _signing_key()
        self.stub = pb_grpc.XComServiceStub(self.channel)
        self.rng = random.Random()

    def token(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        return tokens.mint(
            self.key,
            now=int(time.time()),
            expires_in=3600,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
        )

    def clear_run(self, dag_id: str, run_id: str, name: str) -> None:
        """The control plane's clean-up after a run: keeps Redis (noeviction, 512 MB in the
        shipped redis.conf) from filling up during long runs, as real runs age out by TTL."""
        token = tokens.mint(self.key, now=int(time.time()), expires_in=600, control_plane=True)
        request = pb.ClearXComsRequest(dag_id=dag_id, run_id=run_id)
        self.call(self.stub.ClearXComs, request, token, name)

    def call(self, method: Any, request: Any, token: str, name: str, expect: str = "") -> None:
        try:
            method(request, timeout=DEADLINE_SECONDS, metadata=_metadata(token, name, expect))
        except grpc.RpcError:
            pass  # already reported to Locust by the interceptor


class HotPathUser(_XComUser):
    weight = 4
    wait_time = between(0.0, 0.005)

    @task
    def dag_run(self) -> None:
        dag = self.rng.choice(DAGS)
        run_id = f"loadtest__{uuid.uuid4().hex[:12]}"
        for t in dag.tasks:
            for map_index in range(t.map_count) if t.map_count else (-1,):
                token = self.token(dag.dag_id, run_id, t.task_id, map_index)
                for upstream_id in t.depends_on:  # lazily, at the moment of use
                    upstream = dag.task(upstream_id)
                    if upstream.map_count:
                        selector = pb.XComSelector(
                            task_id=upstream_id, key="return_value", all_map_indexes=True
                        )
                        request = pb.FetchXComsRequest(selectors=[selector])
                        self.call(self.stub.FetchXComs, request, token, "hot: fetch_many mapped")
                        continue
                    for key in (*upstream.schema_keys, "return_value"):
                        fetch = pb.FetchXComRequest(task_id=upstream_id, key=key)
                        self.call(self.stub.FetchXCom, fetch, token, "hot: fetch")
                for key in (*t.schema_keys, "return_value"):
                    push = pb.PushXComRequest(key=key, value=dag.output(t, key, self.rng))
                    self.call(self.stub.PushXCom, push, token, "hot: push")
            RECENT.append((dag.dag_id, run_id, t.task_id))
        # Keep the run browsable by the UI scenario for a while, then clear the oldest ones.
        DONE.append((dag.dag_id, run_id))
        while len(DONE) > DONE_KEPT:
            self.clear_run(*DONE.popleft(), "hot: clear run")


class SizeSweepUser(_XComUser):
    weight = 1
    wait_time = between(0.0, 0.01)
    SIZES = (1_000, 16_000, 64_000, 128_000, MAX_VALUE_BYTES - 1, MAX_VALUE_BYTES)

    @task
    def sweep(self) -> None:
        run_id = f"sweep__{uuid.uuid4().hex[:12]}"
        token = self.token("etl_daily", run_id, "load")
        for size in self.SIZES:
            request = pb.PushXComRequest(key=f"size_{size}", value=dags.padded(size))
            self.call(self.stub.PushXCom, request, token, f"sweep: push {size} B")
        over = pb.PushXComRequest(key="over", value=dags.padded(MAX_VALUE_BYTES + 1))
        self.call(
            self.stub.PushXCom, over, token, "sweep: push limit+1 (refused)", "INVALID_ARGUMENT"
        )
        self.clear_run("etl_daily", run_id, "sweep: clear run")


class UiBrowserUser(HttpUser):
    """Browses through the proxy (contract: Airflow 2 stable REST API xcomEntries routes)."""

    weight = 1
    wait_time = between(0.05, 0.2)
    abstract = not os.environ.get("LEOFLOW_UI_URL")

    def on_start(self) -> None:
        self.client.auth = (
            os.environ.get("LEOFLOW_UI_USER", ""),
            os.environ.get("LEOFLOW_UI_PASSWORD", ""),
        )

    @task
    def browse(self) -> None:
        if not RECENT:
            time.sleep(0.1)
            return
        dag_id, run_id, task_id = random.choice(RECENT)
        base = (
            f"/api/v1/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id, safe='')}/xcomEntries"
        )
        with self.client.get(base, name="ui: list entries", catch_response=True) as reply:
            if reply.status_code != 200 or "xcom_entries" not in reply.json():
                reply.failure(f"list: HTTP {reply.status_code}")
                return
        self.client.get(f"{base}/return_value", name="ui: get entry")


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _thresholds(environment: Environment, **_: object) -> None:
    """Decide the exit code: every request name within its scenario's limits."""
    failed = False
    seen = set()
    for (name, _method), entry in sorted(environment.stats.entries.items()):
        group = name.split(":", 1)[0]
        limits = THRESHOLDS.get(group)
        if limits is None or entry.num_requests == 0:
            continue
        seen.add(group)
        p50 = entry.get_response_time_percentile(0.5)
        p99 = entry.get_response_time_percentile(0.99)
        ok = p50 <= limits[0] and p99 <= limits[1] and entry.fail_ratio <= limits[2]
        failed |= not ok
        print(
            f"loadtest: {'PASS' if ok else 'FAIL'} {name}: n={entry.num_requests} p50={p50:.0f} ms"
            f" (<= {limits[0]:.0f}) p99={p99:.0f} ms (<= {limits[1]:.0f})"
            f" failures={entry.fail_ratio:.2%} (<= {limits[2]:.0%})"
        )
    expected = {"hot", "sweep"} | ({"ui"} if os.environ.get("LEOFLOW_UI_URL") else set())
    for group in sorted(expected - seen):
        print(f"loadtest: FAIL scenario {group!r} made no requests")
        failed = True
    if failed:
        environment.process_exit_code = 1
