"""How every client connects (wijkhub/kafka.py): SCRAM over TLS by default, mutual TLS as
the alternative, plaintext only when chosen; credentials are files, never arguments."""

import faust
import pytest
from cryptography.hazmat.primitives import serialization

from wijkhub import pki
from wijkhub.kafka import MUTUAL_TLS, PLAINTEXT, SASL_SSL, SCRAM, connect
from wijkhub.settings import Settings, SettingsError


@pytest.fixture
def cluster(tmp_path) -> Settings:
    tls = pki.ensure(tmp_path / "pki")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "worker.password").write_text("geheim-" + "x" * 30 + "\n")
    # mutual TLS: the service's certificate and key (here the broker's pair stands in)
    pem = tls.broker_pem.read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    (credentials / "inbox.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    (credentials / "inbox.crt").write_bytes(pem[pem.index(b"-----BEGIN CERTIFICATE") :])
    return Settings(bootstrap_servers="127.0.0.1:9093", kafka_credentials_dir=str(credentials),
                    kafka_ca_file=str(tls.ca_file))  # fmt: skip


def test_scram_over_tls_is_the_default_with_the_services_own_principal(cluster):
    connection = connect(cluster, "worker")
    options = connection.kafka_python()
    assert options["security_protocol"] == SASL_SSL and options["sasl_mechanism"] == SCRAM
    assert options["sasl_plain_username"] == "wijkhub-worker"
    assert options["sasl_plain_password"] == "geheim-" + "x" * 30  # the file, trimmed
    assert options["ssl_context"].check_hostname  # the broker's name is verified
    assert "geheim" not in repr(connection)  # never in a log line or a traceback
    credentials = connection.faust()
    assert isinstance(credentials, faust.SASLCredentials) and credentials.mechanism.value == SCRAM


def test_mutual_tls_presents_the_services_certificate(cluster):
    connection = connect(cluster.with_(kafka_security_protocol="ssl"), "inbox")
    assert connection.protocol == MUTUAL_TLS and connection.cert_file.endswith("inbox.crt")
    assert connection.kafka_python()["ssl_context"] is not None
    assert isinstance(connection.faust(), faust.SSLCredentials)


def test_plaintext_only_when_chosen(cluster):
    plain = connect(cluster.with_(kafka_security_protocol=PLAINTEXT), "worker")
    assert plain.kafka_python() == {"bootstrap_servers": "127.0.0.1:9093",
                                    "security_protocol": PLAINTEXT}  # fmt: skip
    assert plain.faust() is None


@pytest.mark.parametrize(
    ("service", "change", "message"),
    [
        ("delivery", {}, "no Kafka credential delivery.password"),
        ("worker", {"kafka_ca_file": "/nonexistent/ca.crt"}, "is not a readable file"),
        ("inbox", {"kafka_security_protocol": "SASL_PLAINTEXT"}, "must be one of"),
    ],
)
def test_a_missing_credential_is_one_clear_line(cluster, service, change, message):
    with pytest.raises(SettingsError, match=message):
        connect(cluster.with_(**change), service)
