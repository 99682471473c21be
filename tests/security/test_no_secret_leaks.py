"""Nothing secret in logs or error messages: the real `serve` and `ui` processes run at DEBUG,
are driven through failures (bad and foreign tokens, wrong passwords, Redis killed), and their
whole output plus every error message or body is searched for the signing key, the Redis
passwords, the UI password and token, and the task tokens that were sent."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from leoflow_xcom.client import NO_RETRY, XComClient, XComError
from leoflow_xcom.store import acl
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint
from tests.proxy.conftest import (
    PROXY_REDIS_PASSWORD,
    SERVICE_REDIS_PASSWORD,
    create_acl_users,
    start_proxy,
    stop_proxy,
    write_secret,
)
from tests.servers import start_redis

pytestmark = pytest.mark.slow


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value and value in text]


@pytest.fixture
def own_redis(tmp_path: Path) -> RedisProcess:
    server = start_redis("redis", tmp_path / "redis")
    with server.client() as client:
        publish_test_policies(client)
    create_acl_users(server)
    return server


def test_serve_logs_and_errors_hold_no_secret(
    own_redis: RedisProcess, tmp_path: Path, signing_key_file: Path, signing_key: bytes, mint: Mint
) -> None:
    good = mint(task_id="b")
    foreign = mint(task_id="b", run_id="run_2")
    secrets = {
        "signing key": signing_key.decode(),
        "redis password": SERVICE_REDIS_PASSWORD,
        "task token": good,
        "foreign token": foreign,
        "token signature": good.rsplit(".", 1)[1],
    }
    service = ServiceProcess(
        own_redis.url,
        signing_key_file,
        log_level="DEBUG",
        LEOFLOW_REDIS_USERNAME=acl.SERVICE_USER,
        LEOFLOW_REDIS_PASSWORD_FILE=str(
            write_secret(tmp_path, "redis-password", SERVICE_REDIS_PASSWORD)
        ),
    ).start()
    messages: list[str] = []
    try:
        for token in (good, good[:-3] + "abc", good + "x", foreign, "Bearer " + good):
            with XComClient(service.target, token, timeout=3, retry=NO_RETRY) as client:
                for call in (lambda: client.push("k", 1), lambda: client.pull("a", "missing")):
                    try:
                        call()
                    except XComError as exc:
                        messages.append(f"{exc.reason} {exc.message} {exc.metadata}")
        own_redis.kill()  # store errors too
        with XComClient(service.target, good, timeout=3, retry=NO_RETRY) as client:
            with pytest.raises(XComError) as info:
                client.push("k", 2)
            messages.append(f"{info.value.reason} {info.value.message} {info.value.metadata}")
    finally:
        service.terminate()
    assert (len(messages) >= 8 and "DEBUG" in service.output) or "INFO" in service.output
    assert _leaks(service.output, secrets) == []
    assert _leaks("\n".join(messages), secrets) == []


def test_ui_logs_and_error_bodies_hold_no_secret(own_redis: RedisProcess, tmp_path: Path) -> None:
    proxy = start_proxy(own_redis, tmp_path)
    secrets = {
        "ui password": proxy.password,
        "ui token": proxy.token,
        "redis password": PROXY_REDIS_PASSWORD,
    }
    bodies: list[str] = []
    try:
        url = f"{proxy.url}/api/v2/dags/d/dagRuns/r/taskInstances/t/xcomEntries"
        wrong = base64.b64encode(f"{proxy.user}:{proxy.password}x".encode()).decode()
        for header in (
            f"Basic {wrong}",
            f"Bearer {proxy.token}x",
            f"Bearer {proxy.password}",
            f"Token {proxy.token}",
        ):
            resp = httpx.get(url, headers={"Authorization": header})
            assert resp.status_code == 401
            bodies.append(resp.text + str(resp.headers))
        own_redis.kill()
        resp = httpx.get(url, headers=proxy.basic)
        assert resp.status_code == 503
        bodies.append(resp.text + str(resp.headers))
    finally:
        stop_proxy(proxy)
    output = (tmp_path / "proxy.log").read_text(errors="replace")
    assert "Booting worker" in output  # gunicorn's own log is in it
    assert _leaks(output, secrets) == []
    assert _leaks("\n".join(bodies), secrets) == []
