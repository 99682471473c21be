"""Hostile input on the proxy, against the real gunicorn + uvicorn server: awkward values
stored then rendered, slow clients, huge headers and query strings, invalid UTF-8 in paths.
No 5xx, no crash, bounded memory."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from leoflow_xcom.client import XComError
from leoflow_xcom.core import limits
from tests.fixture_types import ClientFor
from tests.proxy.conftest import Proxy

ENTRY = "/api/{gen}/dags/test_dag/dagRuns/run_1/taskInstances/b/xcomEntries/{key}"
GENERATIONS = ("v1", "v2")


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


AWKWARD: dict[str, bytes] = {
    "deepest": nested(limits.MAX_JSON_DEPTH),
    "too_deep": nested(limits.MAX_JSON_DEPTH + 1),
    "very_deep": nested(60_000),
    "deep_dict": b'{"a":' * 200 + b"1" + b"}" * 200,
    "bigint4000": b"9" * 4_000,
    "bigint5000": b"9" * 5_000,  # beyond Python's default int-string digit limit (4,300)
    "overflow": b"1e400",
    "negzero": b"-0.0",
    "unicode": json.dumps("\u2028\ud7ff\U0001f600 \x00 </script>").encode(),
    "wide": json.dumps({f"k{i}": [i] * 10 for i in range(2_000)}).encode(),
}
REFUSED = {"too_deep", "very_deep", "bigint5000", "overflow"}


def _host_port(proxy: Proxy) -> tuple[str, int]:
    parts = urlsplit(proxy.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def raw_get(proxy: Proxy, target: bytes, extra: bytes = b"") -> int:
    """One request over a plain socket (httpx refuses such URLs); its status, 0 if the
    server closed the connection without answering."""
    host, port = _host_port(proxy)
    auth = proxy.basic["Authorization"].encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        head = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth
        sock.sendall(head + b"\r\n" + extra + b"Connection: close\r\n\r\n")
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    return int(reply.split(b" ", 2)[1]) if reply else 0


def _workers_rss_kib(proxy: Proxy) -> int:
    """Resident memory of gunicorn's workers (the master's children), from /proc."""
    total = 0
    children = Path(f"/proc/{proxy.proc.pid}/task/{proxy.proc.pid}/children").read_text().split()
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def test_awkward_values_are_refused_cleanly_or_stored_and_rendered(
    http: httpx.Client, client_for: ClientFor
) -> None:
    writer = client_for(task_id="b")
    refused: dict[str, str] = {}
    for key, raw in AWKWARD.items():
        try:
            writer.push_json(key, raw)
        except XComError as exc:
            refused[key] = exc.reason
    assert refused == dict.fromkeys(REFUSED, "XCOM_INVALID_JSON")
    for key in set(AWKWARD) - REFUSED:
        for gen in GENERATIONS:
            for params in ({"stringify": "true"}, {"stringify": "false"}, {"deserialize": "true"}):
                resp = http.get(ENTRY.format(gen=gen, key=key), params=params)
                assert resp.status_code == 200, (gen, key, params, resp.text[:200])
                if params.get("stringify") == "false":
                    assert resp.json()["value"] == json.loads(AWKWARD[key])


def test_a_byte_by_byte_client_does_not_block_others(proxy: Proxy, http: httpx.Client) -> None:
    """Slowloris: several connections trickle a request's headers; others are still served."""
    host, port = _host_port(proxy)
    slow: list[socket.socket] = []
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: a\r\n" * 10_000
        for byte in request[:2_000]:  # bounded: a few seconds at most
            if stop.is_set():
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return  # the server closed it: fine
            time.sleep(0.002)

    threads = []
    for _ in range(20):
        sock = socket.create_connection((host, port), timeout=5)
        slow.append(sock)
        threads.append(threading.Thread(target=trickle, args=(sock,), daemon=True))
    for thread in threads:
        thread.start()
    try:
        timings = []
        for _ in range(20):
            started = time.monotonic()
            assert (
                http.get("/api/v2/dags/d/dagRuns/r/taskInstances/t/xcomEntries").status_code == 200
            )
            timings.append(time.monotonic() - started)
        print(f"PROXY slowloris: 20 trickling connections; slowest request {max(timings):.3f} s")
        assert max(timings) < 1.0
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for sock in slow:
            sock.close()


@pytest.mark.parametrize(
    ("name", "query", "extra"),
    [
        ("huge header", b"", b"X-Big: " + b"a" * 100_000 + b"\r\n"),
        ("many headers", b"", b"".join(b"X-H%d: v\r\n" % i for i in range(2_000))),
        ("huge query", b"?limit=1&" + b"a=b&" * 50_000, b""),
        ("huge query value", b"?stringify=" + b"t" * 200_000, b""),
        ("many query params", b"?" + b"&".join(b"limit=%d" % i for i in range(5_000)), b""),
    ],
)
def test_huge_headers_and_query_strings_get_a_clean_4xx(
    proxy: Proxy, http: httpx.Client, name: str, query: bytes, extra: bytes
) -> None:
    status = raw_get(proxy, ENTRY.format(gen="v2", key="k").encode() + query, extra)
    # 0: closed at the HTTP layer before any app code ran (h11's limits), no worker harmed.
    assert status == 0 or 400 <= status < 500, (name, status)
    assert http.get("/health").status_code == 200  # still serving


def test_invalid_utf8_in_paths_gets_4xx(proxy: Proxy, http: httpx.Client) -> None:
    for target in (
        b"/api/v2/dags/%ff%fe/dagRuns/r/taskInstances/t/xcomEntries",
        b"/api/v1/dags/d/dagRuns/%c3%28/taskInstances/t/xcomEntries/k",
        b"/api/v2/dags/\xff/dagRuns/r/taskInstances/t/xcomEntries",
        b"/api/v2/dags/d/dagRuns/r/taskInstances/t/xcomEntries/%00%ed%a0%80",
    ):
        status = raw_get(proxy, target)
        assert 0 < status < 500, (target, status)
    assert http.get("/health").status_code == 200


def test_a_burst_of_large_reads_keeps_memory_bounded(
    proxy: Proxy, http: httpx.Client, client_for: ClientFor
) -> None:
    writer = client_for(task_id="b")
    big = {"rows": ["x" * 1_000] * 250}  # ~250 KB, just under the limit
    for i in range(20):
        writer.push(f"big{i}", big)
    http.get(ENTRY.format(gen="v2", key="big0"))  # warm both workers' imports
    before = _workers_rss_kib(proxy)
    for _ in range(10):
        for i in range(20):
            for gen in GENERATIONS:
                assert http.get(ENTRY.format(gen=gen, key=f"big{i}")).status_code == 200
        assert (
            http.get(
                "/api/v2/dags/test_dag/dagRuns/run_1/taskInstances/b/xcomEntries",
                params={"limit": 100},
            ).status_code
            == 200
        )
    after = _workers_rss_kib(proxy)
    print(f"PROXY memory: workers' RSS {before} KiB before, {after} KiB after 420 reads of ~250 KB")
    assert after - before < 64 * 1024  # 64 MiB: a leak of 250 KB per read would be ~100 MiB
