"""The UI proxy over HTTPS (gunicorn --certfile/--keyfile) with init's certificate."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leoflow_xcom.server import app
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.proxy.conftest import Proxy, start_proxy, stop_proxy
from tests.tls.conftest import Material

ENTRIES = "/api/v1/dags/test_dag/dagRuns/run_1/taskInstances/a/xcomEntries"


@pytest.fixture
def https_proxy(
    service: app.RunningService, redis_server: RedisProcess, material: Material, tmp_path: Path
) -> Iterator[Proxy]:
    # `service` only for a Redis with the data layout and policies the proxy checks at start.
    started = start_proxy(
        redis_server,
        tmp_path,
        verify=ssl.create_default_context(cafile=str(material.ca)),
        LEOFLOW_UI_TLS_CERT_FILE=str(material.cert),
        LEOFLOW_UI_TLS_KEY_FILE=str(material.key),
    )
    yield started
    stop_proxy(started)


def test_https_health_and_authenticated_call(https_proxy: Proxy, material: Material) -> None:
    assert https_proxy.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(material.ca))
    with httpx.Client(base_url=https_proxy.url, verify=context, timeout=10) as http:
        assert http.get("/health").status_code == 200
        assert http.get(ENTRIES).status_code == 401
        reply = http.get(ENTRIES, headers=https_proxy.basic)
        assert reply.status_code == 200
        assert reply.json() == {"xcom_entries": [], "total_entries": 0}


def test_plain_http_and_untrusted_ca_are_refused(https_proxy: Proxy, material: Material) -> None:
    plain = https_proxy.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/health", timeout=5)
    with pytest.raises(httpx.ConnectError):
        other = ssl.create_default_context(cafile=str(material.other_ca))
        httpx.get(f"{https_proxy.url}/health", timeout=5, verify=other)
