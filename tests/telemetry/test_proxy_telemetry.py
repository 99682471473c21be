"""The UI proxy's /metrics (summed over its gunicorn workers), X-Request-Id, JSON access lines
and the /health memory warning, against the real `leoflow-xcom ui` and the suite's Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deployment import Deployment
from tests.proxy.conftest import Proxy, start_proxy, stop_proxy
from tests.telemetry.test_grpc_metrics import sample


@pytest.fixture(scope="module")
def proxy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy-telemetry")


@pytest.fixture(scope="module")
def proxy(redis_deployment: Deployment, proxy_dir: Path) -> Iterator[Proxy]:
    started = start_proxy(redis_deployment, proxy_dir, LEOFLOW_LOG_FORMAT="json")
    yield started
    stop_proxy(started)


def test_metrics_need_auth_and_count_requests_by_route(proxy: Proxy) -> None:
    assert httpx.get(f"{proxy.url}/metrics").status_code == 401
    with proxy.client() as http:
        for _ in range(6):  # two workers: the counts must add up whichever answers
            assert http.get("/api/v2/dags/d/dagRuns/r/taskInstances/t/xcomEntries").status_code
        text = http.get("/metrics").text
    route = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries"
    counted = sum(
        sample(text, "leoflow_xcom_ui_calls_total", route=route, status=str(code))
        for code in (200, 404)
    )
    assert counted == 6
    assert sample(text, "leoflow_xcom_ui_calls_total", route="unrouted", status="401") >= 1
    assert sample(text, "leoflow_xcom_redis_up") == 1


def test_request_id_is_echoed_and_logged_without_secrets(proxy: Proxy, proxy_dir: Path) -> None:
    with proxy.client() as http:
        answer = http.get(
            "/api/v1/dags/d/dagRuns/r/taskInstances/t/xcomEntries",
            headers={"X-Request-Id": "ui-req-7"},
        )
        fresh = http.get("/health")
    assert answer.headers["X-Request-Id"] == "ui-req-7"
    assert len(fresh.headers["X-Request-Id"]) == 16
    stop_proxy(proxy)  # flushes the workers' stderr
    log = (proxy_dir / "proxy.log").read_text()
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(e.get("request_id") == "ui-req-7" and e.get("code") == 200 for e in entries)
    assert proxy.password not in log and proxy.token not in log


def test_health_warns_when_redis_memory_passes_the_threshold(
    redis_deployment: Deployment, proxy_dir: Path, tmp_path: Path
) -> None:
    started = start_proxy(redis_deployment, tmp_path)
    # One node past the threshold: on a cluster, health follows the fullest shard.
    admin = redis_deployment.primary_for("xcom:{any}:i").client()
    old = str(admin.config_get("maxmemory")["maxmemory"])
    try:
        assert httpx.get(f"{started.url}/health").json()["status"] == "healthy"
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", int(used / 0.9))
        health = httpx.get(f"{started.url}/health")
        assert health.status_code == 200
        assert health.json()["status"] == "warning"
        assert health.json()["memory_ratio"] >= 0.8
        with started.client() as http:
            assert sample(http.get("/metrics").text, "leoflow_xcom_redis_memory_warning") == 1
    finally:
        admin.config_set("maxmemory", old)
        admin.close()
        stop_proxy(started)


def test_gunicorn_and_uvicorn_lines_are_json_too(
    redis_deployment: Deployment, tmp_path: Path
) -> None:
    """With JSON logging on, the servers' own lines (master start, worker boot, uvicorn's
    startup, shutdown) are objects of the same shape as ours, not gunicorn's text format."""
    started = start_proxy(redis_deployment, tmp_path, LEOFLOW_LOG_FORMAT="json")
    with started.client() as http:
        assert http.get("/health").status_code == 200
    stop_proxy(started)
    lines = (tmp_path / "proxy.log").read_text().splitlines()
    # The one line that is not a log line: the command's banner on stdout before gunicorn.
    logged = [line for line in lines if not line.startswith("leoflow-xcom: UI proxy on")]
    entries = [json.loads(line) for line in logged]  # fails on any non-JSON line
    assert all({"ts", "level", "logger", "msg"} <= e.keys() for e in entries)
    by_logger = {(e["logger"], e["msg"].split(" ")[0]) for e in entries}
    assert ("gunicorn.error", "Booting") in by_logger  # gunicorn's error log
    assert any(name == "uvicorn.error" for name, _ in by_logger)  # uvicorn's, via the worker
    assert any(e.get("code") == 200 and e["logger"].startswith("leoflow") for e in entries)


def test_text_format_keeps_gunicorns_own_lines(
    redis_deployment: Deployment, tmp_path: Path
) -> None:
    started = start_proxy(redis_deployment, tmp_path, LEOFLOW_LOG_FORMAT="text")
    stop_proxy(started)
    log = (tmp_path / "proxy.log").read_text()
    assert "Booting worker" in log and not any(line.startswith("{") for line in log.splitlines())
