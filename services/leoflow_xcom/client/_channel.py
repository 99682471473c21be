"""The one place that turns a target into a gRPC channel: both clients and `health` use it.

Accepted targets (anything else is refused with the forms listed):
- `host:port` (a name, an IPv4 address or `[IPv6]:port`): gRPC's default, as before.
- a comma-separated list `host:port,host:port`: several replicas, resolved once here to the
  address list gRPC understands (`ipv4:a:p,b:q` or `ipv6:[a]:p,[b]:q`).
- a gRPC URI: `dns:///name:port` (every address the name resolves to, re-resolved when one
  fails), `ipv4:`, `ipv6:`, `unix:`, `unix-abstract:`.

With a list or a `dns:`/`ipv4:`/`ipv6:` URI the channel balances round_robin: each new session
(and each unary call) goes to the next ready address, so sessions spread over the replicas, and
when one dies its sessions are reopened on the others. A single `host:port` keeps gRPC's
pick_first, today's behaviour.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Sequence
from typing import Final

import grpc
import grpc.aio

from leoflow_xcom.client._config import CHANNEL_OPTIONS
from leoflow_xcom.client._env import ClientConfigError

ACCEPTED_FORMS: Final = (
    "host:port, [ipv6]:port, a comma-separated list host:port,host:port, or a gRPC URI "
    "(dns:///name:port, ipv4:a:port,b:port, ipv6:[a]:port, unix:/path)"
)
_URI_SCHEMES: Final = ("dns", "ipv4", "ipv6", "unix", "unix-abstract")
_BALANCED_SCHEMES: Final = ("dns", "ipv4", "ipv6")

Options = list[tuple[str, str | int]]


class TargetError(ClientConfigError):
    """A target gRPC could not use; the message says what is wrong and the accepted forms
    (a ClientConfigError, so the CLI reports it like any other bad client setting)."""

    def __init__(self, target: str, problem: str) -> None:
        super().__init__(f"XCom target {target!r}: {problem}; want {ACCEPTED_FORMS}")


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """What gRPC is given: its target string, and whether to balance over several addresses."""

    uri: str
    balanced: bool


def parse_target(target: str) -> Target:
    text = target.strip()
    if not text:
        raise TargetError(target, "it is empty")
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() in _URI_SCHEMES:
        if not rest.strip("/"):
            raise TargetError(target, f"the {scheme}: URI names no address")
        return Target(text, scheme.lower() in _BALANCED_SCHEMES)
    if "://" in text:
        raise TargetError(target, f"unknown scheme {text.split('://')[0]!r}")
    parts = [_host_port(target, part.strip()) for part in text.split(",")]
    if len(parts) == 1:
        return Target(text, balanced=False)
    return Target(_address_list(target, parts), balanced=True)


def _host_port(target: str, part: str) -> tuple[str, int]:
    if not part:
        raise TargetError(target, "an empty entry in the list")
    if part.startswith("["):
        host, bracket, port_text = part[1:].partition("]:")
        if not bracket:
            raise TargetError(target, f"{part!r}: an IPv6 address needs the form [addr]:port")
    else:
        host, colon, port_text = part.rpartition(":")
        if not colon or ":" in host:
            raise TargetError(target, f"{part!r} has no port (host:port)")
    if not host:
        raise TargetError(target, f"{part!r} has no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TargetError(target, f"{part!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _address_list(target: str, parts: Sequence[tuple[str, int]]) -> str:
    """ipv4:a:p,b:q (or ipv6:...), names resolved now: gRPC has no URI for a list of names."""
    v4: list[str] = []
    v6: list[str] = []
    for host, port in parts:
        for address in _addresses(target, host):
            if address.version == 4:
                v4.append(f"{address}:{port}")
            else:
                v6.append(f"[{address}]:{port}")
    if v4 and v6:
        raise TargetError(target, "it mixes IPv4 and IPv6 addresses (gRPC takes one family)")
    return f"ipv4:{','.join(v4)}" if v4 else f"ipv6:{','.join(v6)}"


def _addresses(target: str, host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetError(target, f"cannot resolve {host!r}: {exc.strerror}") from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    ipv4 = [a for a in found if a.version == 4]
    # A name with both families (localhost) counts as IPv4, so lists of names stay one family.
    return list(dict.fromkeys(ipv4 or found))


def options_for(target: Target, tls_server_name: str | None) -> Options:
    """CHANNEL_OPTIONS, round_robin for several addresses, and the name to verify the server
    certificate against when the target (an IP, a load balancer) is not one of its SANs."""
    options: Options = list(CHANNEL_OPTIONS)
    if target.balanced:
        options.append(("grpc.lb_policy_name", "round_robin"))
    if tls_server_name:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    return options


def open_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    tls_server_name: str | None = None,
) -> grpc.Channel:
    """A sync channel to `target` (plaintext when credentials is None)."""
    parsed = parse_target(target)
    options = options_for(parsed, tls_server_name)
    if credentials is None:
        return grpc.insecure_channel(parsed.uri, options=options)
    return grpc.secure_channel(parsed.uri, credentials, options=options)


def open_aio_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    tls_server_name: str | None = None,
) -> grpc.aio.Channel:
    """open_channel for asyncio code; create it inside the event loop that uses it."""
    parsed = parse_target(target)
    options = options_for(parsed, tls_server_name)
    if credentials is None:
        return grpc.aio.insecure_channel(parsed.uri, options=options)
    return grpc.aio.secure_channel(parsed.uri, credentials, options=options)
