"""Headers on every proxy response (real gunicorn + uvicorn): nosniff, no-store, no banner;
and the Prometheus multiprocess directory of a proxy start is gone after it stops."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leoflow_xcom.proxy.headers import SecurityHeadersMiddleware
from leoflow_xcom.proxy.telemetry import MULTIPROC_ENV
from tests.deployment import Deployment
from tests.fixture_types import ClientFor
from tests.proxy.conftest import Proxy, start_proxy, stop_proxy

ENTRIES = "/api/{gen}/dags/test_dag/dagRuns/run_1/taskInstances/a/xcomEntries"


def assert_hardened(resp: httpx.Response) -> None:
    where = f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}"
    assert resp.headers.get("x-content-type-options") == "nosniff", where
    assert resp.headers.get("cache-control") == "no-store", where
    assert "server" not in resp.headers, (where, resp.headers.get("server"))


def test_every_kind_of_response_is_hardened(
    proxy: Proxy, http: httpx.Client, client_for: ClientFor
) -> None:
    client_for(task_id="a").push("typed", {"rows": 1})
    seen = set()
    with httpx.Client(base_url=proxy.url, timeout=10) as anonymous:
        for resp in (
            anonymous.get("/health"),
            anonymous.get("/openapi.json"),
            anonymous.get(ENTRIES.format(gen="v1")),  # 401
            anonymous.post(ENTRIES.format(gen="v2")),  # 405
            http.get("/metrics"),
            http.get(ENTRIES.format(gen="v1")),
            http.get(ENTRIES.format(gen="v2") + "/typed"),
            http.get(ENTRIES.format(gen="v1") + "/missing"),  # 404
            http.get(ENTRIES.format(gen="v2"), params={"limit": "x"}),  # 422
            http.get(ENTRIES.format(gen="v1"), params={"limit": "x"}),  # 400
            http.get("/nowhere"),  # 404 outside the API
            http.head(ENTRIES.format(gen="v2")),
        ):
            assert_hardened(resp)
            seen.add(resp.status_code)
    assert seen == {200, 400, 401, 404, 405, 422}


def test_an_unhandled_error_still_answers_hardened_in_the_generations_shape() -> None:
    """In process: the only way to reach the last-resort path is a handler that raises."""

    def boom(request: Request) -> Response:
        raise RuntimeError("internal detail")

    app = Starlette(  # as app.py builds it: inside Starlette's own last-resort handler
        routes=[Route("/api/v1/x", boom), Route("/api/v2/x", boom)],
        middleware=[Middleware(SecurityHeadersMiddleware)],
    )

    async def both() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.get("/api/v1/x"), await client.get("/api/v2/x")

    v1, v2 = asyncio.run(both())
    assert v1.status_code == v2.status_code == 500
    assert v1.json()["title"] == "Internal Server Error" and "internal detail" not in v1.text
    assert v2.json() == {"detail": "Internal Server Error"}
    for resp in (v1, v2):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "no-store"


def _multiproc_dir(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [v.split(b"=", 1)[1] for v in environ if v.startswith(MULTIPROC_ENV.encode() + b"=")]
    assert found, "the proxy runs without a Prometheus multiprocess directory"
    return Path(os.fsdecode(found[0]))


@pytest.mark.timeout(120)
def test_metrics_directory_is_removed_when_the_proxy_stops(
    redis_deployment: Deployment, tmp_path: Path
) -> None:
    started = start_proxy(redis_deployment, tmp_path)
    try:
        directory = _multiproc_dir(started.proc.pid)
        with started.client() as client:
            assert client.get("/metrics").status_code == 200
        assert directory.is_dir() and any(directory.iterdir())  # the workers' files
    finally:
        stop_proxy(started)
    assert started.proc.returncode == 0
    assert not directory.exists()
