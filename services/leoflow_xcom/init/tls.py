"""Optional TLS material for the gRPC service and the UI proxy: a private CA and one server
certificate it signs, ECDSA P-256, in the secrets directory.

Idempotent like the other secrets: existing files are kept; the server certificate is
re-issued (by the same CA) only when the configured host names changed, so clients that trust
the CA keep working. `rotate` replaces the CA and the certificate: every client then needs the
new ca.crt. Private keys are 0600 and never printed or logged; certificates are 0644.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from leoflow_xcom.init.secrets import SecretError, write_private_file, write_public_file

CA_CERT: Final = "ca.crt"
CA_KEY: Final = "ca.key"
SERVER_CERT: Final = "server.crt"
SERVER_KEY: Final = "server.key"
FILES: Final = (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY)

CA_DAYS: Final = 3650
# 825 days: the longest validity macOS/iOS accept for a server certificate.
SERVER_DAYS: Final = 825
# Tolerates clocks a little behind the one that issued the certificate.
_BACKDATE: Final = datetime.timedelta(minutes=5)

Host = x509.DNSName | x509.IPAddress


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    ca_created: bool = False
    server_issued: bool = False


def parse_hosts(text: str) -> list[Host]:
    """`localhost,127.0.0.1,xcom`: names become DNS SANs, IP addresses IP SANs."""
    names: list[Host] = []
    for raw in text.split(","):
        host = raw.strip()
        if not host:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if not names:
        raise SecretError("LEOFLOW_INIT_TLS_HOSTS: no host names for the server certificate")
    return names


def ensure_tls(directory: Path, hosts: Sequence[Host], *, rotate: bool = False) -> TlsFiles:
    paths = {name: directory / name for name in FILES}
    ca_present = paths[CA_CERT].exists() and paths[CA_KEY].exists()
    if ca_present and not rotate:
        ca_key = _load_key(paths[CA_KEY])
        ca_cert = _load_cert(paths[CA_CERT])
        ca_created = False
    else:
        ca_key, ca_cert = _new_ca()
        _write_key(paths[CA_KEY], ca_key)
        write_public_file(paths[CA_CERT], _pem(ca_cert))
        ca_created = True

    server_issued = False
    if ca_created or not _server_matches(paths[SERVER_CERT], paths[SERVER_KEY], ca_cert, hosts):
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(paths[SERVER_KEY], key)
        write_public_file(paths[SERVER_CERT], _pem(_issue_server(ca_key, ca_cert, key, hosts)))
        server_issued = True
    for name in (CA_KEY, SERVER_KEY):
        paths[name].chmod(0o600)
    for name in (CA_CERT, SERVER_CERT):
        paths[name].chmod(0o644)
    return TlsFiles(
        paths[CA_CERT], paths[SERVER_CERT], paths[SERVER_KEY], ca_created, server_issued
    )


def _server_matches(
    cert_path: Path, key_path: Path, ca_cert: x509.Certificate, hosts: Sequence[Host]
) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = _load_cert(cert_path)
    key = _load_key(key_path)
    if cert.issuer != ca_cert.subject:
        return False
    if cert.public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        return False
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(sans) == set(hosts)


_SPKI: Final = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Leoflow XCom private CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        # Signs server certificates only, no intermediate CAs below it.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue_server(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[Host],
) -> x509.Certificate:
    first = hosts[0].value
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first))]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(hosts)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # read unattended by the services, like the passwords
    )
    write_private_file(path, pem.decode("ascii"))


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        raise SecretError(
            f"{path} is not a readable PEM certificate; run `leoflow-xcom init --rotate tls`"
        ) from None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        # Never the key itself in the message: only which file.
        raise SecretError(
            f"{path} is not a readable EC private key; run `leoflow-xcom init --rotate tls`"
        )
    return key
