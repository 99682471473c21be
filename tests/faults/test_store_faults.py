"""Redis killed, stalled, restarted or full while writers push without pause: nothing
acknowledged is lost, refusals are typed and quick, and the service heals by itself.

Each test prints one `FAULT` line of figures (also repeated in the terminal summary).
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from leoflow_xcom.client import NO_RETRY, XComClient, XComError
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.faults.conftest import REDIS_MAX_CONNECTIONS, SERVICE_WORKERS, thread_count
from tests.faults.load import WRITER_TASK, Load, audit, figures
from tests.fixture_types import Mint

pytestmark = pytest.mark.fault

DAG, RUN = "test_dag", "run_1"
CALL_TIMEOUT = 3.0
LOAD_SECONDS = 1.5  # before the fault and again after it


def writer_token(mint: Mint) -> str:
    return mint(DAG, RUN, WRITER_TASK)


def recovery(load: Load, moment: float) -> float:
    """Seconds from `moment` (the store back) to the first acknowledged push after it."""
    deadline = time.monotonic() + 15
    while (found := load.tally.first_success_after(moment)) is None:
        assert time.monotonic() < deadline, "no push succeeded after the store came back"
        time.sleep(0.02)
    return round(found, 3)


def unavailable_only(errors: dict[str, int]) -> bool:
    return all(code.startswith("UNAVAILABLE/") for code in errors)


# With `appendfsync everysec` Redis replies before its AOF write() whenever the previous
# once-a-second fsync is still running (a busy disk): it postpones the write for up to 2 s
# (checked in whole seconds, so up to ~3 s of wall time). A SIGKILL in that window loses what
# was acknowledged in it; nothing older may go. `always` writes and fsyncs before replying.
EVERYSEC_POSTPONE_WINDOW_S = 3.0


@pytest.mark.parametrize(
    "fault_redis",
    [("--appendfsync", "everysec"), ("--appendfsync", "always")],
    ids=["everysec", "always"],
    indirect=True,
)
def test_sigkill_redis_under_load_loses_no_acknowledged_push(
    fault_redis: RedisProcess,
    fault_service: ServiceProcess,
    raw: redis.Redis,
    mint: Mint,
) -> None:
    always = "always" in fault_redis.extra
    with Load(fault_service.target, lambda: writer_token(mint), timeout=CALL_TIMEOUT) as load:
        time.sleep(LOAD_SECONDS)
        killed = time.monotonic()
        fault_redis.kill()  # SIGKILL: no shutdown hook, no final fsync
        time.sleep(1.0)  # writers keep calling into a dead store
        back = time.monotonic()
        fault_redis.start()  # same port and directory: replays the AOF
        recovered = recovery(load, back)
        time.sleep(LOAD_SECONDS)
    result = audit(raw, DAG, RUN, load.tally)
    ages = [killed - load.tally.acknowledged_at[key] for key in result.lost_keys]
    figures(
        f"sigkill-redis-{'always' if always else 'everysec'}",
        result,
        load.tally,
        recovery_s=recovered,
        oldest_lost_s=round(max(ages), 3) if ages else None,
    )
    assert result.acknowledged > 0
    if always:
        assert result.lost == 0
    else:
        # Only the postponed write of a slow fsync may go; most runs lose nothing at all.
        assert all(age <= EVERYSEC_POSTPONE_WINDOW_S for age in ages), ages
    assert result.dangling_index == result.orphan_values == 0
    assert unavailable_only(load.tally.errors), load.tally.errors


def test_stalled_redis_fails_fast_stays_bounded_and_heals(
    fault_redis: RedisProcess,
    fault_service: ServiceProcess,
    raw: redis.Redis,
    mint: Mint,
) -> None:
    assert fault_service.proc is not None
    pid = fault_service.proc.pid
    threads_before = thread_count(pid)
    # More writers than service threads or Redis connections: a stall must not pile them up.
    writers = SERVICE_WORKERS + 8
    with Load(
        fault_service.target, lambda: writer_token(mint), writers=writers, timeout=CALL_TIMEOUT
    ) as load:
        time.sleep(LOAD_SECONDS)
        fault_redis.pause()  # SIGSTOP: sockets stay open, nothing answers
        peak_threads = threads_before
        stalled_until = time.monotonic() + 3.0
        while time.monotonic() < stalled_until:
            peak_threads = max(peak_threads, thread_count(pid))
            time.sleep(0.05)
        errors_during = sum(load.tally.errors.values())
        fault_redis.resume()
        back = time.monotonic()
        recovered = recovery(load, back)
        time.sleep(LOAD_SECONDS)
    # Our own raw connection is one of them.
    connections = len(raw.client_list()) - 1
    result = audit(raw, DAG, RUN, load.tally)
    figures(
        "stall-redis",
        result,
        load.tally,
        writers=writers,
        errors_while_stalled=errors_during,
        slowest_refusal_s=load.tally.slowest,
        threads_before=threads_before,
        threads_peak=peak_threads,
        redis_connections_after=connections,
        recovery_s=recovered,
    )
    assert result.lost == 0 and result.dangling_index == result.orphan_values == 0
    assert errors_during > 0, "a 3 s stall refused nothing: the stall was not seen"
    # The store's own bound refuses a call (pool wait + socket timeout + one retry, ~2 s); a
    # unary call queued behind busy handler threads (more writers than threads, on purpose)
    # may reach its own deadline first. Either way no call outlives its deadline.
    assert set(load.tally.errors) <= {
        "UNAVAILABLE/STORE_UNAVAILABLE",
        "DEADLINE_EXCEEDED/DEADLINE_EXCEEDED",
    }
    assert load.tally.errors["UNAVAILABLE/STORE_UNAVAILABLE"] > 0
    assert load.tally.slowest["UNAVAILABLE/STORE_UNAVAILABLE"] < CALL_TIMEOUT
    assert max(load.tally.slowest.values()) < CALL_TIMEOUT + 0.25
    # The pool of handler threads is the bound (plus grpc's and our own few threads).
    assert peak_threads <= threads_before + SERVICE_WORKERS + 4
    assert connections <= REDIS_MAX_CONNECTIONS + 2  # + policy refresh/housekeeper
    assert recovered < 3.0


def test_clean_redis_restart_the_service_reconnects_by_itself(
    fault_redis: RedisProcess,
    fault_service: ServiceProcess,
    raw: redis.Redis,
    mint: Mint,
) -> None:
    with Load(fault_service.target, lambda: writer_token(mint), timeout=CALL_TIMEOUT) as load:
        time.sleep(LOAD_SECONDS)
        down = time.monotonic()
        fault_redis.restart()  # SIGTERM (Redis flushes the AOF), then start again
        back = time.monotonic()
        recovered = recovery(load, back)
        time.sleep(LOAD_SECONDS)
    result = audit(raw, DAG, RUN, load.tally)
    figures(
        "restart-redis",
        result,
        load.tally,
        downtime_s=round(back - down, 3),
        recovery_s=recovered,
    )
    assert result.acknowledged > 0 and result.lost == 0
    assert result.dangling_index == result.orphan_values == 0
    assert unavailable_only(load.tally.errors), load.tally.errors
    assert recovered < 3.0


def test_full_redis_refuses_pushes_keeps_reads_evicts_nothing_and_recovers(
    fault_redis: RedisProcess,
    fault_service: ServiceProcess,
    raw: redis.Redis,
    mint: Mint,
) -> None:
    with XComClient(fault_service.target, writer_token(mint), retry=NO_RETRY) as seed:
        seed.push("kept", {"kept": True})
    reads_ok, read_errors = 0, 0
    stop_reading = threading.Event()

    def read() -> None:
        nonlocal reads_ok, read_errors
        with XComClient(fault_service.target, mint(DAG, RUN, "fanin"), retry=NO_RETRY) as reader:
            for _ in range(100_000):  # bounded; stopped long before
                if stop_reading.is_set():
                    return
                try:
                    assert reader.pull(WRITER_TASK, "kept") == {"kept": True}
                    reads_ok += 1
                except XComError:
                    read_errors += 1
                time.sleep(0.005)

    reader_thread = threading.Thread(target=read, daemon=True)
    with Load(fault_service.target, lambda: writer_token(mint), timeout=CALL_TIMEOUT) as load:
        reader_thread.start()
        time.sleep(0.5)
        used = int(raw.info("memory")["used_memory"])
        raw.config_set("maxmemory", str(used + 256 * 1024))  # full within moments
        full_until = time.monotonic() + 15
        while load.tally.errors["RESOURCE_EXHAUSTED/STORE_FULL"] < 20:
            assert time.monotonic() < full_until, "Redis never filled up"
            time.sleep(0.05)
        reads_while_full = reads_ok
        time.sleep(1.0)
        reads_while_full = reads_ok - reads_while_full
        raw.config_set("maxmemory", "512mb")  # memory frees (the operator raised the limit)
        back = time.monotonic()
        recovered = recovery(load, back)
        time.sleep(0.5)
    stop_reading.set()
    reader_thread.join(10)
    evicted = int(raw.info("stats")["evicted_keys"])
    result = audit(raw, DAG, RUN, load.tally)
    figures(
        "full-redis",
        result,
        load.tally,
        reads_ok_while_full=reads_while_full,
        read_errors=read_errors,
        evicted_keys=evicted,
        recovery_s=recovered,
    )
    assert result.lost == 0 and result.dangling_index == result.orphan_values == 0
    assert evicted == 0 and read_errors == 0 and reads_while_full > 0
    assert set(load.tally.errors) == {"RESOURCE_EXHAUSTED/STORE_FULL"}
    assert recovered < 3.0
