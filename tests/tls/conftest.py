"""TLS material as `leoflow-xcom init` makes it, once per session: a CA and a server
certificate for 127.0.0.1, plus an unrelated CA that no server here uses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from leoflow_xcom.init import tls


@dataclasses.dataclass(frozen=True)
class Material:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    made = tls.ensure_tls(tmp_path_factory.mktemp("tls"), tls.parse_hosts("localhost,127.0.0.1"))
    other = tls.ensure_tls(tmp_path_factory.mktemp("tls-other"), tls.parse_hosts("127.0.0.1"))
    return Material(made.ca_cert, made.server_cert, made.server_key, other.ca_cert)
