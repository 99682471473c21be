"""The parent's port reservation (server/reuseport.py), on real sockets."""

from __future__ import annotations

import socket

import pytest

from leoflow_xcom.server import reuseport


def test_port_zero_becomes_a_port_the_workers_can_share() -> None:
    sock, listen = reuseport.reserve("127.0.0.1:0")
    try:
        host, port = reuseport.split_listen(listen)
        assert (host, port) == ("127.0.0.1", sock.getsockname()[1]) and port > 0
        # A worker binding the same address with SO_REUSEPORT succeeds and can listen.
        worker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", port))
        worker.listen()
        worker.close()
    finally:
        sock.close()


def test_a_port_taken_by_a_socket_that_does_not_share_it() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(reuseport.BindError, match="cannot bind"):
            reuseport.reserve(f"127.0.0.1:{taken.getsockname()[1]}")
    finally:
        taken.close()


def test_ipv6_and_bad_addresses() -> None:
    assert reuseport.split_listen("[::]:50051") == ("::", 50051)
    assert reuseport.join_listen("::", 50051) == "[::]:50051"
    assert reuseport.split_listen(":50051") == ("0.0.0.0", 50051)
    with pytest.raises(reuseport.BindError, match="host:port"):
        reuseport.split_listen("localhost")
