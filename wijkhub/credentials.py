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

from wijkhub.kafka import SCRAM
from wijkhub.pki import Pki
from wijkhub.streams.access import SERVICES


def password(folder: Path, service: str) -> str:
    """The service's password, made once as ``<service>.password`` (mode 0600)."""
    path = folder / f"{service}.password"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def make_all(folder: Path) -> list[str]:
    """A password file for every service principal (kept where one exists)."""
    for service in SERVICES:
        password(folder, service)
    return list(SERVICES)


def register(internal: str, pki: Pki, folder: Path, prefix: str) -> int:
    """Register the SCRAM credential of every service the broker lacks; how many were new.

    ``internal``: the broker's mutual-TLS listener, where the broker certificate
    (``CN=broker``, a super user) authenticates this call.
    """
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(str(pki.broker_pem))
    admin = KafkaAdminClient(bootstrap_servers=internal, security_protocol="SSL",
                             ssl_context=context)  # fmt: skip
    try:
        known = admin.describe_user_scram_credentials()
        missing = [UserScramCredentialUpsertion(prefix + s, SCRAM, password(folder, s))
                   for s in SERVICES
                   if not (known.get(prefix + s) or {}).get("credential_infos")]  # fmt: skip
        if missing:
            failed = {u: e for u, e in admin.alter_user_scram_credentials(missing).items() if e}
            if failed:
                raise RuntimeError(f"registering Kafka credentials failed for {sorted(failed)}")
        return len(missing)
    finally:
        admin.close()
