"""A private CA and the local broker's certificate, made with ``cryptography``.

For the local broker only (development, demo, tests, bench): a municipality's
cluster uses its own PKI, and the hub only needs its CA file. Keys are written
with mode 0600; the broker reads its key and certificate as one PEM file
(Kafka's ``ssl.keystore.type=PEM``), so no Java keystore tool is needed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BROKER_CN = "broker"
VALID_DAYS = 825  # the longest a TLS server certificate may be valid, in CA/B practice


@dataclass(frozen=True)
class Pki:
    ca_file: Path  # the CA certificate: what clients trust
    broker_pem: Path  # the broker's private key and certificate chain, one PEM file


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _private(path: Path, data: bytes) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_bytes(data)


def ensure(folder: Path, hosts: tuple[str, ...] = ("localhost",)) -> Pki:
    """The CA and broker certificate in ``folder``, made once (kept across restarts).

    The broker certificate names ``hosts`` and 127.0.0.1; its subject is ``CN=broker``,
    the principal the broker's own listeners (and ``wijkhub cluster credentials``) use."""
    pki = Pki(folder / "ca.crt", folder / "broker.pem")
    if pki.ca_file.exists() and pki.broker_pem.exists():
        return pki
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False)  # fmt: skip
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("wijkhub local CA"))
        .issuer_name(_name("wijkhub local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [*(x509.DNSName(h) for h in hosts), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(BROKER_CN))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    # the CA key is not kept: nothing else is ever signed with it
    _private(pki.broker_pem, key.private_bytes(pem, pkcs8, serialization.NoEncryption())
             + cert.public_bytes(pem) + ca.public_bytes(pem))  # fmt: skip
    pki.ca_file.write_bytes(ca.public_bytes(pem))
    return pki
