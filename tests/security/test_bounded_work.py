"""Bounded work per call, checked before the work: batch fetches that would return too much
are refused before any value is read, reference expansion is counted before it is read, and a
`~` listing costs Redis the same with 100 or 10,000 runs."""

from __future__ import annotations

import threading
import time

import grpc
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import NO_RETRY, XComClient
from leoflow_xcom.core import limits
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.proxy.browse import Browser, Query
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.service import ServiceProcess
from tests.fixture_types import Mint
from tests.security.tenants import figure, peak_rss_kib, redis_peak

BIG = "v" * (limits.MAX_VALUE_BYTES - 2)
MiB = 1024 * 1024


def _fetch_many(target: str, token: str, selectors: list[pb.XComSelector]) -> grpc.RpcError:
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.XComServiceStub(channel)
        try:
            stub.FetchXComs(
                pb.FetchXComsRequest(selectors=selectors),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            )
        except grpc.RpcError as exc:
            return exc
    raise AssertionError("the oversized batch was answered")


def _warm_up(target: str, token: str) -> None:
    """One small legitimate batch: code paths and connections warm, peaks not yet raised."""
    with XComClient(target, token, retry=NO_RETRY, transport="unary") as client:
        client.pull_many("big", "missing", [0])


def _reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return str(info.reason)


def test_batch_of_one_big_value_refused_before_memory_moves(
    serve: ServiceProcess, raw: redis.Redis, mint: Mint
) -> None:
    """1,000 selectors of one 256 KiB value (262 MB of answer), by 3 callers at once."""
    with XComClient(serve.target, mint("open_dag", "r1", "big"), retry=NO_RETRY) as big:
        big.push("v", BIG)
    reader = mint("open_dag", "r1", "reader")
    one = pb.XComSelector(task_id="big", key="v")
    _warm_up(serve.target, reader)
    assert serve.proc is not None
    rss_before, redis_before = peak_rss_kib(serve.proc.pid), redis_peak(raw)
    errors: list[grpc.RpcError] = []
    started = time.monotonic()
    callers = [
        threading.Thread(
            target=lambda: errors.append(_fetch_many(serve.target, reader, [one] * 1000))
        )
        for _ in range(3)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(60)
    took = time.monotonic() - started
    rss_delta = (peak_rss_kib(serve.proc.pid) - rss_before) / 1024
    redis_delta = (redis_peak(raw) - redis_before) / MiB
    figure(
        f"BATCH 3 callers x 1,000 selectors of one 256 KiB value: refused in {took:.2f} s "
        f"(measured under load); service peak RSS +{rss_delta:.1f} MiB, Redis used_memory_peak "
        f"+{redis_delta:.1f} MiB (the previous reader, same test: +748 MiB and +744 MiB)"
    )
    assert len(errors) == 3
    for error in errors:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _reason(error) == "INVALID_REQUEST"
        assert "262,144,000 bytes" in (error.details() or "")
    assert rss_delta < 16 and redis_delta < 4


def test_all_map_indexes_flood_refused_before_expansion(
    serve: ServiceProcess, raw: redis.Redis, mint: Mint
) -> None:
    """1,000 all_map_indexes selectors over 15,000 mapped XComs: counted, refused, not read."""
    writer = XComWriter(raw)
    for i in range(15_000):
        writer.push("open_dag", "r1", XComRef("mapped", "out", i), b"1", 3600)
    reader = mint("open_dag", "r1", "reader")
    flood = [pb.XComSelector(task_id="mapped", key="out", all_map_indexes=True)] * 1000
    _warm_up(serve.target, reader)
    assert serve.proc is not None
    rss_before, redis_before = peak_rss_kib(serve.proc.pid), redis_peak(raw)
    raw.config_resetstat()
    started = time.monotonic()
    error = _fetch_many(serve.target, reader, flood)
    took = time.monotonic() - started
    stats = raw.info("commandstats")
    ranges = stats.get("cmdstat_zrangebylex", {}).get("calls", 0)
    rss_delta = (peak_rss_kib(serve.proc.pid) - rss_before) / 1024
    redis_delta = (redis_peak(raw) - redis_before) / MiB
    figure(
        f"EXPAND 1,000 all_map_indexes selectors x 15,000 XComs: refused in {took * 1000:.0f} ms "
        f"(measured under load), ZRANGEBYLEX calls {ranges}; service peak RSS "
        f"+{rss_delta:.1f} MiB, Redis peak +{redis_delta:.1f} MiB "
        f"(the previous reader: Redis peak +114 MiB)"
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "15,000,000 XComs" in (error.details() or "")
    assert ranges == 0 and rss_delta < 16 and redis_delta < 4


def _redis_calls(raw: redis.Redis, browser: Browser, query: Query) -> tuple[int, float]:
    raw.config_resetstat()
    started = time.perf_counter()
    browser.page(query)
    took = time.perf_counter() - started
    stats = raw.info("commandstats")
    return sum(int(s["calls"]) for s in stats.values()), took


def test_tilde_listing_cost_is_flat_from_100_to_10000_runs(raw: redis.Redis) -> None:
    writer, browser = XComWriter(raw), Browser(raw)
    page = Query("~", "~", "~", None, None, limit=50, offset=0)
    dag_page = Query("open_dag", "~", "~", None, None, limit=1, offset=0)

    def grow(to: int, start: int) -> None:
        for i in range(start, to):
            writer.push("open_dag", f"run_{i:05d}", XComRef("big", "k"), b"1", 3600)

    grow(100, 0)
    small = _redis_calls(raw, browser, page), _redis_calls(raw, browser, dag_page)
    grow(10_000, 100)
    large = _redis_calls(raw, browser, page), _redis_calls(raw, browser, dag_page)
    figure(
        f"LISTING ~ runs, Redis commands per page (100 -> 10,000 runs): limit=50 "
        f"{small[0][0]} -> {large[0][0]}, limit=1 on one DAG {small[1][0]} -> {large[1][0]}; "
        f"wall time ratio {large[0][1] / small[0][1]:.2f} (measured under load, not asserted)"
    )
    # The same work whatever the number of runs (the old walk read every run: 100x more).
    assert large[0][0] <= small[0][0] + 2 and large[1][0] <= small[1][0] + 2
    rows, total = browser.page(page)
    assert len(rows) == 50 and total == 51  # more runs exist: a lower bound, see browse.py
