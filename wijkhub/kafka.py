"""How every Kafka client of the hub connects: one settings block, one principal per service.

Every client (the Faust worker, the connectors' producers, the inbox, delivery,
status, the CLI and the admin client) takes its connection arguments from here,
for the service it is (:mod:`wijkhub.streams.access`). Security by default:
``SASL_SSL`` with SCRAM-SHA-512, or mutual TLS (``SSL`` with a client certificate);
the CA, certificates and keys are files, and passwords are read from files in the
credentials directory (``<service>.password``), never from the command line or the
environment. Plaintext only when chosen explicitly, with a warning at start-up.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from wijkhub.logs import get as get_logger
from wijkhub.settings import Settings, SettingsError

log = get_logger("wijkhub.kafka")

SASL_SSL = "SASL_SSL"
MUTUAL_TLS = "SSL"
PLAINTEXT = "PLAINTEXT"
PROTOCOLS = (SASL_SSL, MUTUAL_TLS, PLAINTEXT)
SCRAM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class Connection:
    """One service's way onto the cluster: address, protocol and its own credentials."""

    bootstrap: str
    protocol: str
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifies the broker against the configured CA (hostname included); presents the
        service's certificate under mutual TLS."""
        if self.protocol == PLAINTEXT:
            return None
        context = ssl.create_default_context(cafile=self.ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context

    def kafka_python(self) -> dict[str, Any]:
        """Arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap,
                                   "security_protocol": self.protocol}  # fmt: skip
        if self.protocol != PLAINTEXT:
            options["ssl_context"] = self.ssl_context()
        if self.protocol == SASL_SSL:
            options.update(sasl_mechanism=SCRAM, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)  # fmt: skip
        return options

    def aiokafka(self) -> dict[str, Any]:
        """Arguments for aiokafka's AIOKafkaProducer and AIOKafkaConsumer."""
        return self.kafka_python()  # the same names in both libraries

    def faust(self) -> Any:
        """Faust's ``broker_credentials`` (None: plaintext)."""
        import faust

        if self.protocol == PLAINTEXT:
            return None
        if self.protocol == MUTUAL_TLS:
            return faust.SSLCredentials(self.ssl_context())
        return faust.SASLCredentials(username=self.username, password=self.password,
                                     ssl_context=self.ssl_context(), mechanism=SCRAM)  # fmt: skip


def connect(settings: Settings, service: str) -> Connection:
    """The connection of ``service`` (e.g. ``worker``, ``intake-income``) under ``settings``.

    Raises :class:`SettingsError` with one clear line when a credential is missing.
    """
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise SettingsError(
            f"WIJKHUB_KAFKA_SECURITY_PROTOCOL must be one of {PROTOCOLS}, got {protocol!r}"
        )
    bootstrap = settings.require_bootstrap()
    if protocol == PLAINTEXT:
        _warn_plaintext(bootstrap)
        return Connection(bootstrap, protocol)
    credentials = Path(settings.kafka_credentials_dir) if settings.kafka_credentials_dir else None
    ca = settings.kafka_ca_file
    if ca and not Path(ca).is_file():
        raise SettingsError(f"WIJKHUB_KAFKA_CA_FILE {ca} is not a readable file")
    principal = settings.kafka_principal_prefix + service
    if protocol == MUTUAL_TLS:
        cert, key = _file(credentials, f"{service}.crt"), _file(credentials, f"{service}.key")
        return Connection(bootstrap, protocol, principal, "", ca, str(cert), str(key))
    password = _file(credentials, f"{service}.password").read_text().strip()
    if not password:
        raise SettingsError(f"the Kafka password file for {service} is empty")
    return Connection(bootstrap, protocol, principal, password, ca)


def _file(credentials: Path | None, name: str) -> Path:
    if credentials is None:
        raise SettingsError(
            "WIJKHUB_KAFKA_CREDENTIALS_DIR is not set: the folder with each service's "
            "Kafka credentials (<service>.password, or .crt and .key for mutual TLS); "
            "for a cluster without security set WIJKHUB_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"
        )
    path = credentials / name
    if not path.is_file():
        raise SettingsError(f"no Kafka credential {name} in WIJKHUB_KAFKA_CREDENTIALS_DIR")
    return path


@cache
def _warn_plaintext(bootstrap: str) -> None:
    log.warning("kafka without TLS or authentication: anyone who reaches the broker reads "
                "and writes every topic", bootstrap=bootstrap,
                setting="WIJKHUB_KAFKA_SECURITY_PROTOCOL=PLAINTEXT")  # fmt: skip
