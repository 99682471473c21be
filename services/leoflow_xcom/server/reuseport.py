"""One listening port for several worker processes: SO_REUSEPORT, as gRPC's multiprocessing
example does it.

Each worker's gRPC server binds the same address with `grpc.so_reuseport` = 1 and the kernel
spreads incoming connections over them. The parent binds (never listens on) the address first:
that resolves port 0 to a real port every worker then binds, keeps the port ours across worker
restarts, and proves the kernel shares the port before any worker starts.

SO_REUSEPORT with this behaviour is Linux's (3.9+). Elsewhere (macOS and the BSDs let the
last bind win instead of balancing; Windows has no such option) and in sandboxes that refuse
it (some gVisor and seccomp set-ups), `reserve` raises ReusePortUnavailableError and `serve` falls
back to one process, or fails when LEOFLOW_XCOM_PROCESSES asked for more.
"""

from __future__ import annotations

import errno
import socket
import sys

# Read once; a test sets another platform's name to see what happens there.
PLATFORM = sys.platform


class ReusePortUnavailableError(RuntimeError):
    pass


class BindError(RuntimeError):
    """The address cannot be bound at all (taken by a socket that does not share it, or a
    host that does not resolve)."""


def split_listen(listen: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" to (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise BindError(f"LEOFLOW_XCOM_LISTEN={listen}: expected host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def join_listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bound(family: int, address: tuple[object, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # as grpc binds [::]
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def reserve(listen: str) -> tuple[socket.socket, str]:
    """Bind `listen` with SO_REUSEPORT; returns the socket (keep it open while workers run)
    and the address the workers bind, with a real port."""
    host, port = split_listen(listen)
    if not PLATFORM.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        raise ReusePortUnavailableError(
            f"{PLATFORM} has no load-balancing SO_REUSEPORT (Linux 3.9+ has)"
        )
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BindError(f"LEOFLOW_XCOM_LISTEN={listen}: cannot resolve {host!r}: {exc}") from None
    try:
        sock = _bound(family, address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:  # taken by a socket that does not share it
            raise BindError(f"LEOFLOW_XCOM_LISTEN={listen}: cannot bind ({exc})") from None
        raise ReusePortUnavailableError(f"SO_REUSEPORT refused: {exc}") from None
    bound = sock.getsockname()
    # A second bind of the same port proves the kernel shares it (some sandboxes accept the
    # option and ignore it).
    try:
        _bound(family, (bound[0], bound[1], *address[2:])).close()
    except OSError as exc:
        sock.close()
        raise ReusePortUnavailableError(f"a second socket cannot share the port: {exc}") from None
    return sock, join_listen(host, bound[1])
