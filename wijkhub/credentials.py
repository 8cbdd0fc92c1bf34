"""Every service principal's SCRAM credential: made as files, registered on the broker.

For the local broker and for a compose deployment (``wijkhub cluster secrets`` and
``wijkhub cluster credentials``); a municipality's own cluster may manage its users
elsewhere, and the hub then only reads ``<service>.password`` from
``WIJKHUB_KAFKA_CREDENTIALS_DIR``. A password is registered with Kafka's admin API
over the broker's mutual-TLS listener, as the broker's own principal: it never
appears on a command line or in a process list.
"""

from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import UserScramCredentialUpsertion

from wijkhub import pki
from wijkhub.kafka import SCRAM
from wijkhub.streams.access import INTAKE, SERVICES


def password(folder: Path, service: str) -> str:
    """The service's password, made once as ``<service>.password`` (mode 0600)."""
    path = folder / f"{service}.password"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def for_services(
    folder: Path, hosts: tuple[str, ...], service_uid: int | None, broker_uid: int | None
) -> dict[str, str]:
    """A deployment's secrets, made once: ``folder/pki`` (the CA and the broker's key and
    certificate, for the broker) and per service ``folder/services/<service>/`` holding its
    ``<service>.password`` and ``ca.crt`` — so each container mounts only its own folder.
    Owners: the uid each side runs as (None: this process's). Returns service → password."""
    tls = pki.ensure(folder / "pki", hosts)
    passwords = {}
    for service in SERVICES:
        own = folder / "services" / service
        passwords[service] = password(own, service)
        (own / "ca.crt").write_bytes(tls.ca_file.read_bytes())
        _own(own, service_uid)
    # The HTTP intake and the file drop serve every source, each source as its own principal:
    # one folder with every intake credential for those two containers.
    intakes = folder / "services" / INTAKE
    for service in (s for s in SERVICES if s.startswith(f"{INTAKE}-")):
        password(intakes, service)
        (intakes / f"{service}.password").write_text(passwords[service])
    (intakes / "ca.crt").write_bytes(tls.ca_file.read_bytes())
    _own(intakes, service_uid)
    _own(folder / "pki", broker_uid)
    return passwords


def _own(path: Path, uid: int | None) -> None:
    if uid is None:
        return
    for item in [path, *path.iterdir()]:
        os.chown(item, uid, uid)


def register(internal: str, tls: pki.Pki, passwords: dict[str, str], prefix: str) -> int:
    """Register the SCRAM credential of every service the broker lacks; how many were new.

    ``internal``: the broker's mutual-TLS listener, where the broker certificate
    (``CN=broker``, a super user) authenticates this call.
    """
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    context.load_cert_chain(str(tls.broker_pem))
    admin = KafkaAdminClient(bootstrap_servers=internal, security_protocol="SSL",
                             ssl_context=context)  # fmt: skip
    try:
        known = admin.describe_user_scram_credentials()
        missing = [UserScramCredentialUpsertion(prefix + s, SCRAM, secret)
                   for s, secret in passwords.items()
                   if not (known.get(prefix + s) or {}).get("credential_infos")]  # fmt: skip
        if missing:
            failed = {u: e for u, e in admin.alter_user_scram_credentials(missing).items() if e}
            if failed:
                raise RuntimeError(f"registering Kafka credentials failed for {sorted(failed)}")
        return len(missing)
    finally:
        admin.close()
