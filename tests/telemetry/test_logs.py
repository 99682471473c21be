"""A real `leoflow-xcom serve` writes JSON lines carrying request ids, and never a token or a
value, even when a value is refused with a message that could quote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import NO_RETRY, XComClient, XComSchemaMismatchError
from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint

SECRET_VALUE = "do-not-log-this-value-7f3a"


def test_json_lines_carry_request_ids_and_no_secrets(
    r: redis.Redis, redis_server: RedisProcess, signing_key_file: Path, mint: Mint
) -> None:
    publish_test_policies(r)
    service = ServiceProcess(
        redis_server.url,
        signing_key_file,
        LEOFLOW_LOG_FORMAT="json",
        LEOFLOW_XCOM_METRICS_LISTEN=f"127.0.0.1:{free_port()}",
    )
    service.log_level = "DEBUG"
    service.start()
    token = mint(task_id="a")
    try:
        with XComClient(service.target, token, retry=NO_RETRY, transport="unary") as unary:
            unary.push("plain", {"secret": SECRET_VALUE})
            with pytest.raises(XComSchemaMismatchError):
                unary.push("typed", {"rows": SECRET_VALUE})
        with XComClient(service.target, token, retry=NO_RETRY) as session:
            session.push("other", SECRET_VALUE)
    finally:
        service.log.seek(0)
        text = service.log.read().decode()
        service.terminate()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    calls = [e for e in lines if e["logger"] == "leoflow_xcom.calls"]
    assert {(e["method"], e["code"]) for e in calls} >= {
        ("PushXCom", "OK"),
        ("PushXCom", "INVALID_ARGUMENT"),
        ("XComSession/push", "OK"),
    }
    assert all(e.get("request_id") for e in calls)
    refused = [e for e in calls if e["code"] == "INVALID_ARGUMENT"]
    assert refused[0]["reason"] == "XCOM_SCHEMA_MISMATCH"
    assert SECRET_VALUE not in text
    assert token not in text
    assert signing_key_file.read_text().strip() not in text
