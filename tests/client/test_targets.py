"""Targets the SDK and CLI accept, what gRPC is given for each, and the errors for the rest."""

from __future__ import annotations

import pytest

from leoflow_xcom.cli.main import main
from leoflow_xcom.client import ClientConfigError, XComClient
from leoflow_xcom.client._channel import ACCEPTED_FORMS, Target, TargetError, parse_target
from tests.fixture_types import Mint


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # One address: handed to gRPC as it is, pick_first as before.
        ("127.0.0.1:50051", Target("127.0.0.1:50051", balanced=False)),
        ("xcom:50051", Target("xcom:50051", balanced=False)),
        ("[::1]:50051", Target("[::1]:50051", balanced=False)),
        # Several: one address list, round_robin.
        ("10.0.0.1:1,10.0.0.2:2", Target("ipv4:10.0.0.1:1,10.0.0.2:2", balanced=True)),
        (" 10.0.0.1:1 , 10.0.0.2:2 ", Target("ipv4:10.0.0.1:1,10.0.0.2:2", balanced=True)),
        ("[::1]:1,[fe80::2]:2", Target("ipv6:[::1]:1,[fe80::2]:2", balanced=True)),
        # Names in a list are resolved now (localhost counts as IPv4 even where it has ::1).
        ("localhost:7,127.0.0.2:8", Target("ipv4:127.0.0.1:7,127.0.0.2:8", balanced=True)),
        # gRPC URIs pass through; those that can name several addresses balance.
        ("dns:///xcom:50051", Target("dns:///xcom:50051", balanced=True)),
        ("ipv4:10.0.0.1:1,10.0.0.2:2", Target("ipv4:10.0.0.1:1,10.0.0.2:2", balanced=True)),
        ("unix:/run/xcom.sock", Target("unix:/run/xcom.sock", balanced=False)),
    ],
)
def test_accepted_targets(given: str, expected: Target) -> None:
    assert parse_target(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "it is empty"),
        ("xcom", "'xcom' has no port"),
        ("xcom:http", "the port must be a number from 1 to 65535"),
        ("xcom:70000", "the port must be a number from 1 to 65535"),
        ("a:1,,b:2", "an empty entry in the list"),
        (":50051", "has no host"),
        ("::1:50051", "has no port"),
        ("[::1:50051", "an IPv6 address needs the form [addr]:port"),
        ("http://xcom:50051", "unknown scheme 'http'"),
        ("dns:///", "the dns: URI names no address"),
        ("10.0.0.1:1,[::1]:2", "mixes IPv4 and IPv6"),
        ("127.0.0.1:1,no-such-host.invalid:2", "cannot resolve 'no-such-host.invalid'"),
    ],
)
def test_malformed_targets_say_what_is_wrong_and_what_is_accepted(given: str, problem: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_target(given)
    assert problem in str(info.value)
    assert ACCEPTED_FORMS in str(info.value)


def test_a_client_refuses_a_bad_target_before_any_call() -> None:
    with pytest.raises(ClientConfigError, match="has no port"):
        XComClient("xcom", "token")


def test_the_cli_reports_a_bad_address_as_a_setting_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEOFLOW_XCOM_ADDR", "127.0.0.1:1,,127.0.0.1:2")
    monkeypatch.setenv("LEOFLOW_XCOM_TOKEN", "t")
    assert main(["fetch", "a", "k"]) == 1
    assert main(["health"]) == 1
    err = capsys.readouterr().err
    assert err.count("an empty entry in the list") == 2


def test_a_dns_uri_reaches_the_service(target: str, mint: Mint) -> None:
    port = target.rsplit(":", 1)[1]
    with XComClient(f"dns:///localhost:{port}", mint(task_id="a")) as xcom:
        xcom.push("via_dns", 1)
        assert xcom.pull("a", "via_dns") == 1


def test_the_async_client_takes_a_list_too(target: str, mint: Mint) -> None:
    import asyncio

    from leoflow_xcom.client import AsyncXComClient

    async def main() -> object:
        async with AsyncXComClient(f"{target},{target}", mint(task_id="a")) as xcom:
            await xcom.push("via_list", 2)
            return await xcom.pull("a", "via_list")

    assert asyncio.run(main()) == 2
