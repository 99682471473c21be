"""gRPC over TLS against the real service: the handshake with init's certificate, and the
clients it must refuse (plaintext, another CA)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leoflow_xcom.cli.main import main
from leoflow_xcom.client import (
    NO_RETRY,
    AsyncXComClient,
    DeadlineExceededError,
    ServiceUnavailableError,
    XComClient,
    tls_credentials,
)
from leoflow_xcom.settings import ServeSettings, SettingsError, SettingsFileError
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint, StartService
from tests.tls.conftest import Material


@pytest.fixture
def tls_service(r: redis.Redis, start_service: StartService, material: Material) -> str:
    publish_test_policies(r)
    running = start_service(workers=8, tls_cert_file=material.cert, tls_key_file=material.key)
    return f"127.0.0.1:{running.port}"


def test_push_and_fetch_over_tls(tls_service: str, material: Material, mint: Mint) -> None:
    credentials = tls_credentials(material.ca)
    with XComClient(tls_service, mint(task_id="a"), credentials=credentials) as producer:
        producer.push("out", {"rows": 7})
    with XComClient(tls_service, mint(task_id="b"), credentials=credentials) as consumer:
        assert consumer.pull("a", "out") == {"rows": 7}


# Unary calls fail at once with UNAVAILABLE. A session stream waits for a ready channel
# (wait_for_ready, so it survives restarts) and so fails at its deadline instead: never served.
REFUSED = {"unary": ServiceUnavailableError, "session": DeadlineExceededError}


@pytest.mark.parametrize("transport", ["unary", "session"])
def test_plaintext_client_is_refused(
    tls_service: str, mint: Mint, transport: Literal["unary", "session"]
) -> None:
    client = XComClient(tls_service, mint(), retry=NO_RETRY, timeout=1, transport=transport)
    with client, pytest.raises(REFUSED[transport]):
        client.push("out", 1)


@pytest.mark.parametrize("transport", ["unary", "session"])
def test_client_trusting_another_ca_is_refused(
    tls_service: str, material: Material, mint: Mint, transport: Literal["unary", "session"]
) -> None:
    client = XComClient(
        tls_service,
        mint(),
        credentials=tls_credentials(material.other_ca),
        retry=NO_RETRY,
        timeout=1,
        transport=transport,
    )
    with client, pytest.raises(REFUSED[transport]):
        client.push("out", 1)


def test_health_command_over_tls(
    tls_service: str, material: Material, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEOFLOW_XCOM_ADDR", tls_service)
    assert main(["health"]) == 6  # plaintext against the TLS port: never served, unavailable
    monkeypatch.setenv("LEOFLOW_XCOM_TLS_CA_FILE", str(material.ca))
    assert main(["health"]) == 0
    # An address that is not one of the SANs: verified against the name given instead.
    monkeypatch.setenv("LEOFLOW_XCOM_TLS_SERVER_NAME", "xcom.invalid")
    assert main(["health"]) == 6
    monkeypatch.setenv("LEOFLOW_XCOM_TLS_SERVER_NAME", "localhost")
    assert main(["health"]) == 0


def test_raw_plaintext_channel_gets_unavailable(tls_service: str) -> None:
    with grpc.insecure_channel(tls_service) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_half_or_unreadable_tls_settings_fail_clearly(
    signing_key_file: Path, material: Material, tmp_path: Path
) -> None:
    half = ServeSettings(signing_key_file=signing_key_file, tls_cert_file=material.cert)
    with pytest.raises(SettingsError, match="must be set together") as info:
        half.tls()
    assert not isinstance(info.value, SettingsFileError)  # no file is at fault: a pairing rule
    missing = ServeSettings(
        signing_key_file=signing_key_file,
        tls_cert_file=material.cert,
        tls_key_file=tmp_path / "absent.key",
    )
    with pytest.raises(SettingsFileError, match="LEOFLOW_XCOM_TLS_KEY_FILE: cannot read"):
        missing.tls()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_from_env_speaks_tls_with_the_ca_file(
    tls_service: str, material: Material, mint: Mint, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("LEOFLOW_XCOM_ADDR", tls_service)
    monkeypatch.setenv("LEOFLOW_XCOM_TOKEN", mint(task_id="a"))
    monkeypatch.setenv("LEOFLOW_XCOM_TLS_CA_FILE", str(material.ca))
    if kind == "sync":
        with XComClient.from_env() as xcom:
            xcom.push("out", {"tls": True})
            assert xcom.pull("a", "out") == {"tls": True}
        return

    async def body() -> None:
        async with AsyncXComClient.from_env() as xcom:
            await xcom.push("out", {"tls": "aio"})
            assert await xcom.pull("a", "out") == {"tls": "aio"}

    asyncio.run(body())
