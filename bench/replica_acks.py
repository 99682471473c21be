"""The cost of LEOFLOW_REDIS_MIN_REPLICA_ACKS=1 on loopback: p50/p99 of the store's own push
(XComWriter, as the service calls it) against a real primary with one replica, with and
without WAIT, interleaved so load on the machine hits both alike; and whether the server
offers WAITAOF (Redis 7.2+).

    .venv/bin/python -m bench.replica_acks [--pushes 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import redis.exceptions

from leoflow_xcom.core.model import XComRef
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.writer import XComWriter
from tests.redis_proc import RedisProcess, find_binary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--server", default="redis", choices=["redis", "valkey"])
    opts = parser.parse_args()
    binary = find_binary(opts.server)
    assert binary is not None, f"no {opts.server} server binary"
    with tempfile.TemporaryDirectory() as tmp:
        primary = RedisProcess(binary, Path(tmp) / "p").start()
        replica = RedisProcess(
            binary, Path(tmp) / "r", "--replicaof", "127.0.0.1", str(primary.port)
        ).start()
        try:
            while replica.client().info("replication").get("master_link_status") != "up":
                time.sleep(0.05)
            version = primary.client().info("server").get("redis_version")
            writers = {}
            for acks in (0, 1):
                settings = RedisSettings(url=primary.url, min_replica_acks=acks)
                writers[acks] = XComWriter(
                    connect(settings), settings.min_replica_acks, settings.wait_timeout_ms
                )
            samples: dict[int, list[float]] = {0: [], 1: []}
            value = b'{"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}'
            for i in range(opts.pushes):
                for acks, writer in writers.items():
                    started = time.perf_counter()
                    writer.push("bench", f"r{i % 50}", XComRef("t", f"k{i}"), value, 600)
                    samples[acks].append((time.perf_counter() - started) * 1e6)
            for acks, values in samples.items():
                q = statistics.quantiles(values, n=100)
                print(
                    f"{opts.server} {version} acks={acks}: p50 {q[49]:.0f} us, "
                    f"p99 {q[98]:.0f} us ({len(values)} pushes)"
                )
            p50 = {a: statistics.median(v) for a, v in samples.items()}
            print(f"WAIT 1 adds {p50[1] - p50[0]:+.0f} us at p50")
            try:
                reply = primary.client().execute_command("WAITAOF", 0, 0, 100)  # type: ignore[no-untyped-call]
                print(f"WAITAOF available: {reply}")
            except redis.exceptions.ResponseError as exc:
                print(f"WAITAOF not available on {opts.server} {version}: {exc}")
        finally:
            replica.stop()
            primary.stop()


if __name__ == "__main__":
    main()
