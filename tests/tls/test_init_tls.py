"""`leoflow-xcom init` with LEOFLOW_INIT_TLS=on: CA and server certificate, SANs, modes,
idempotence and `--rotate tls`."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from leoflow_xcom.cli.main import main
from leoflow_xcom.init import tls
from leoflow_xcom.testing.paths import ROOT


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    for policy in (ROOT / "config" / "dags").glob("*.json"):
        (dags / policy.name).write_bytes(policy.read_bytes())
    monkeypatch.setenv("LEOFLOW_INIT_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("LEOFLOW_INIT_ACL_DIR", str(tmp_path / "acl"))
    monkeypatch.setenv("LEOFLOW_INIT_DAGS", str(dags))
    monkeypatch.setenv("LEOFLOW_INIT_TLS", "on")
    return tmp_path / "secrets"


def _prepare(*extra: str) -> None:
    assert main(["init", "--stage", "prepare", *extra]) == 0


def _files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in tls.FILES}


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_and_server_certificate_with_sans_and_modes(
    secrets_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _prepare()
    for name in (tls.CA_KEY, tls.SERVER_KEY):
        assert stat.S_IMODE((secrets_dir / name).stat().st_mode) == 0o600
    for name in (tls.CA_CERT, tls.SERVER_CERT):
        assert stat.S_IMODE((secrets_dir / name).stat().st_mode) == 0o644
    ca, server = _cert(secrets_dir / tls.CA_CERT), _cert(secrets_dir / tls.SERVER_CERT)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "xcom", "xcom-ui"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    public = server.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert 800 <= lifetime.days <= 826
    # Nothing secret on the terminal or in the logs.
    shown = capsys.readouterr().out + caplog.text
    for name in (tls.CA_KEY, tls.SERVER_KEY):
        body = (secrets_dir / name).read_text().splitlines()[1]
        assert body not in shown


def test_idempotent_and_rotate_replaces(secrets_dir: Path) -> None:
    _prepare()
    first = _files(secrets_dir)
    _prepare()
    assert _files(secrets_dir) == first
    _prepare("--rotate", "tls")
    rotated = _files(secrets_dir)
    assert all(rotated[name] != first[name] for name in tls.FILES)
    _cert(secrets_dir / tls.SERVER_CERT).verify_directly_issued_by(_cert(secrets_dir / tls.CA_CERT))


def test_new_hosts_reissue_the_server_certificate_under_the_same_ca(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _prepare()
    first = _files(secrets_dir)
    monkeypatch.setenv("LEOFLOW_INIT_TLS_HOSTS", "xcom.example.com,10.0.0.5")
    _prepare()
    now = _files(secrets_dir)
    assert now[tls.CA_CERT] == first[tls.CA_CERT]
    assert now[tls.SERVER_CERT] != first[tls.SERVER_CERT]
    sans = _cert(secrets_dir / tls.SERVER_CERT).extensions
    names = sans.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["xcom.example.com"]


def test_off_by_default_and_rotate_needs_it(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEOFLOW_INIT_TLS")
    _prepare()
    assert not any((secrets_dir / name).exists() for name in tls.FILES)
    assert main(["init", "--stage", "prepare", "--rotate", "tls"]) == 1
    assert "LEOFLOW_INIT_TLS=on" in capsys.readouterr().err
