"""XComClient.from_env() and pull(..., default=...), for the sync and the asyncio client alike,
against the real service on both transports (TLS from the environment: tests/tls)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from leoflow_xcom.client import (
    AsyncXComClient,
    ClientConfigError,
    XComClient,
    XComForbiddenError,
    XComNotFoundError,
)
from leoflow_xcom.client._env import read_env
from tests.fixture_types import Mint


@pytest.fixture(params=["session", "unary"])
def transport(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture
def task_env(target: str, mint: Mint, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a launcher sets for task `b`, which depends on `a`, in the test DAG."""
    monkeypatch.setenv("LEOFLOW_XCOM_ADDR", target)
    monkeypatch.setenv("LEOFLOW_XCOM_TOKEN", mint(task_id="b"))


def test_sync_from_env_and_default(task_env: None, target: str, mint: Mint, transport: Any) -> None:
    with XComClient(target, mint(task_id="a")) as producer:
        producer.push("out", {"rows": 1})
    with XComClient.from_env(transport=transport) as xcom:
        assert xcom.pull("a", "out") == {"rows": 1}
        assert xcom.pull("a", "absent", default=None) is None
        assert xcom.pull("a", "absent", default={"rows": 0}) == {"rows": 0}
        assert xcom.pull("a", "out", default="unused") == {"rows": 1}
        with pytest.raises(XComNotFoundError):
            xcom.pull("a", "absent")
        # Only a missing value gives the default: a refusal still raises.
        with pytest.raises(XComForbiddenError):
            xcom.pull("fanin", "absent", default=None)


def test_async_from_env_and_default(
    task_env: None, target: str, mint: Mint, transport: Any
) -> None:
    async def body() -> None:
        async with AsyncXComClient(target, mint(task_id="a")) as producer:
            await producer.push("out", [1, 2])
        async with AsyncXComClient.from_env(transport=transport) as xcom:
            assert await xcom.pull("a", "out") == [1, 2]
            assert await xcom.pull("a", "absent", default=None) is None
            assert await xcom.pull("a", "absent", default=0) == 0
            with pytest.raises(XComNotFoundError):
                await xcom.pull("a", "absent")
            with pytest.raises(XComForbiddenError):
                await xcom.pull("fanin", "absent", default=None)

    asyncio.run(body())


def test_from_env_names_what_is_missing_or_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ClientConfigError, match="LEOFLOW_XCOM_TOKEN"):
        XComClient.from_env()
    with pytest.raises(ClientConfigError, match="LEOFLOW_XCOM_TOKEN"):
        AsyncXComClient.from_env()
    monkeypatch.setenv("LEOFLOW_XCOM_TOKEN", "t")
    monkeypatch.setenv("LEOFLOW_XCOM_TLS_CA_FILE", "/nonexistent/ca.crt")
    with pytest.raises(ClientConfigError, match="LEOFLOW_XCOM_TLS_CA_FILE: cannot read"):
        XComClient.from_env()
    monkeypatch.delenv("LEOFLOW_XCOM_TLS_CA_FILE")
    monkeypatch.setenv("LEOFLOW_XCOM_TIMEOUT", "5000ms")
    with pytest.raises(ClientConfigError, match="LEOFLOW_XCOM_TIMEOUT='5000ms'"):
        XComClient.from_env()


def test_env_defaults_and_empty_values() -> None:
    env = read_env({"LEOFLOW_XCOM_ADDR": " ", "LEOFLOW_XCOM_TIMEOUT": "2.5"})
    assert (env.addr, env.token, env.timeout, env.tls_ca_file) == (
        "127.0.0.1:50051",
        None,
        2.5,
        None,
    )
    for bad in ("0", "-1", "nan", "301"):
        with pytest.raises(ClientConfigError):
            read_env({"LEOFLOW_XCOM_TIMEOUT": bad})
