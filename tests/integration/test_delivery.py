"""Alert delivery on the real broker: ``wijkhub deliver`` against a webhook receiver that
fails and stalls, one that is always down, and a real SMTP server (aiosmtpd) that takes
mail only over STARTTLS, with a certificate from the test's own CA, after a login.

Every alert state change ends exactly once at its team's receiver (by
idempotency key) or as a dead letter; e-mails carry a link and nothing about
the household.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import ssl
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from wijkhub.broker import free_port
from wijkhub.connectors.deadletter import DeadLetter, unseal
from wijkhub.connectors.delivery import SIGNATURE_HEADER, verify
from wijkhub.schemas.registry import ALERT, Catalog
from wijkhub.streams.topics import ALERTS, DLQ_DELIVERY
from wijkhub.supervise import DeliveryProcess

from builders import as_admin, household, series

FLAKY = ("wijkteam-centrum", "wijkteam-noord")
DOWN = "wijkteam-centraal"  # the fallback team's receiver is down for the whole test
SECRETS = {team: secrets.token_urlsafe(32) for team in (*FLAKY, DOWN)}
REPORT = Path(".wijkhub/reports/delivery.json")


class Receiver(BaseHTTPRequestHandler):
    """A team's system: fails a third of first attempts (503), stalls another third past the
    sender's timeout (and then does process them), and keeps every idempotency key."""

    accepted: ClassVar[dict[tuple[str, str], dict]] = {}  # (team, idempotency key) → body
    attempts: ClassVar[dict[str, int]] = {}
    duplicates = bad_signatures = requests = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        team = self.path.strip("/")
        cls = type(self)
        with cls.lock:
            cls.requests += 1
            if team == DOWN:
                return self.answer(500)
            if not verify(SECRETS[team], self.headers[SIGNATURE_HEADER], body):
                cls.bad_signatures += 1
                return self.answer(401)
            key = (team, self.headers["Idempotency-Key"])
            attempt = cls.attempts[key] = cls.attempts.get(key, 0) + 1
        kind = int(hashlib.sha256(key[1].encode()).hexdigest(), 16) % 3
        if attempt == 1 and kind == 0:
            return self.answer(503)
        if attempt == 1 and kind == 1:
            time.sleep(1.0)  # longer than the sender waits: it retries; we still process it
        with cls.lock:
            if key in cls.accepted:
                cls.duplicates += 1
            else:
                cls.accepted[key] = json.loads(body)
        self.answer(200)

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class Mailbox:
    """The relay: accepts mail only after STARTTLS and a login."""

    def __init__(self) -> None:
        self.messages: list = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        assert session.ssl is not None and session.authenticated
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == (b"wijkhub", SMTP_PASSWORD.encode())
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


SMTP_PASSWORD = secrets.token_urlsafe(16)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, as a municipality's own CA would issue for its relay."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "relay.crt", directory / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@pytest.fixture(scope="module")
def receivers(hub_settings, worker, tmp_path_factory):
    http = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    mailbox = Mailbox()
    cert, key = self_signed(tmp_path_factory.mktemp("relay"))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port(), tls_context=tls,
                      require_starttls=True, authenticator=mailbox.authenticate,
                      auth_required=True)  # fmt: skip
    smtp.start()
    base = f"http://127.0.0.1:{http.server_address[1]}"
    teams_file = tmp_path_factory.mktemp("delivery") / "teams.yaml"
    lines = ["teams:"]
    for team in (*FLAKY, DOWN):
        lines.append(f"  {team}: {{email: {team}@wijkteams.example, webhook: {base}/{team}}}")
    lines += ["  wijkteam-zuid: {}", "  schuldhulp-crisisteam: {}"]
    teams_file.write_text("\n".join(lines) + "\n")
    settings = hub_settings.with_(
        teams_file=str(teams_file),
        webhook_secrets=",".join(f"{t}={s}" for t, s in SECRETS.items()),
        webhook_allow_loopback_http=True,  # the receiver is plain http on 127.0.0.1
        delivery_attempts=4,
        delivery_timeout_seconds=0.5,
        delivery_backoff_seconds=0.05,
        delivery_metrics_port=free_port(),
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=True,
        smtp_ca_file=str(cert),
        smtp_user="wijkhub",
        smtp_password=SMTP_PASSWORD,
        inbox_base_url="https://inbox.gemeente.example",
    )
    proc = DeliveryProcess(settings, hub_settings.data_dir / "delivery.log").start()
    try:
        yield proc, mailbox
    finally:
        proc.stop()
        smtp.stop()
        http.shutdown()


def wait_delivered(hub, timeout: float = 90.0) -> None:
    """Until the delivery group has committed every record of the alerts topic."""
    group, topic = f"{hub.settings.app_id}-delivery", hub.topic(ALERTS)
    admin = KafkaAdminClient(**as_admin(hub.settings))
    consumer = KafkaConsumer(**as_admin(hub.settings))
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            end = consumer.end_offsets(tps)
            done = admin.list_group_offsets({group: None}).get(group, {})
            if all(tp in done and done[tp].offset >= end[tp] for tp in tps):
                return
            time.sleep(0.5)
        raise AssertionError("delivery did not catch up with the alerts topic")
    finally:
        admin.close()
        consumer.close()


ADDRESSES = {
    "wijkteam-centrum": [("1002DX", "103"), ("1003EX", "104"), ("1049XK", "50"),
                         ("1000CV", "51"), ("1001DV", "52"), ("1002EV", "53")],
    "wijkteam-noord": [("1050KA", "1"), ("1051LA", "2"), ("1052MA", "3"), ("1053NA", "4")],
    DOWN: [("9998AA", "1"), ("9998AA", "2"), ("9998AA", "3")],  # outside every district
}  # fmt: skip


def test_every_change_is_delivered_once_or_dead_lettered_and_mail_has_no_personal_data(
    hub, receivers, plant
):
    delivery, mailbox = receivers
    team_of: dict[str, str] = {}
    later: list[dict] = []
    for n, (team, addresses) in enumerate(ADDRESSES.items()):
        for postcode, number in addresses:
            hub.ingest("population", [plant.person(postcode, number)])
            signals = [plant.arrears(postcode, number, "Huur", "2026-03-01"),
                       plant.arrears(postcode, number, "Energie", "2026-03-15")]  # fmt: skip
            if n != 1:  # a third creditor: the alert escalates (a second change, revision 2)
                later.append(plant.arrears(postcode, number, "Water", "2026-04-01"))
            hub.ingest("vroegsignalering", signals)
            team_of[household(postcode, number)] = team
    hub.wait_drained()  # raised first; the escalation arrives after (one batch = one change)
    hub.ingest("vroegsignalering", later)
    owner = plant.person("1049WM", "100")  # centrum; two teams give the same help: duplicate help
    hub.ingest("population", [owner])
    hub.ingest(
        "teams",
        [plant.case(owner["bsn"], "wijkteam-centrum"), plant.case(owner["bsn"], "wijkteam-noord")],
    )
    involved_ref = household("1049WM", "100")
    hub.wait_drained()
    wait_delivered(hub)

    catalog = Catalog()
    records = hub.records(ALERTS)
    alerts = [(r, catalog.decode(r.value, ALERT)) for r in records if r.value is not None]
    ours = [a for _, a in alerts if a["household_ref"] in team_of]
    assert all(a["team"] == team_of[a["household_ref"]] for a in ours)  # routed by district
    assert len({a["alert_id"] for a in ours}) == 13 and len(ours) == 13 + 9  # 9 escalations
    assert len([a for a in ours if a["team"] == DOWN]) == 3 + 3  # raised and escalated
    [shared] = [a for _, a in alerts if a["household_ref"] == involved_ref]
    # both cases opened the same day: their order is the facts' (by event id), not a rule's
    assert sorted(p["holder"] for p in shared["involved"]) == ["wijkteam-centrum",
                                                               "wijkteam-noord"]  # fmt: skip
    letters = [DeadLetter.from_headers(r.headers, r.value) for r in hub.records(DLQ_DELIVERY)]
    lettered = {d.origin for d in letters if d.source == "webhook"}
    for record, alert in alerts:
        key = (alert["team"], f"{alert['alert_id']}:{alert['revision']}")
        origin = f"{record.topic}/{record.partition}/{record.offset}"
        if alert["team"] in FLAKY:
            assert key in Receiver.accepted and origin not in lettered, key
            assert Receiver.accepted[key]["state"] == alert["state"]
        elif alert["team"] == DOWN:
            assert origin in lettered and key not in Receiver.accepted, key
    # duplicate help: the involved team is told too, with the same idempotency key
    assert ("wijkteam-noord", f"{shared['alert_id']}:1") in Receiver.accepted
    assert Receiver.bad_signatures == 0
    assert all(d.reason_code == "undeliverable" and "gave up after 4" in d.reason
               for d in letters if d.source == "webhook")  # fmt: skip
    # sealed: the alert record (a household and its facts) only for who holds the key
    by_origin = {f"{r.topic}/{r.partition}/{r.offset}": r.value for r, _ in alerts}
    assert all(d.sealed and unseal(hub.settings.dead_letter_key, d.original)
               == by_origin[d.origin] for d in letters)  # fmt: skip

    raised = [a for a in ours if a["change"] == "raised" and a["team"] != "wijkteam-zuid"]
    mails = {m["Message-ID"]: m for m in mailbox.messages}
    for alert in raised:
        mail = mails[f"<{alert['alert_id']}.1.{alert['team']}@wijkhub>"]
        assert mail["To"] == f"{alert['team']}@wijkteams.example"
        body = mail.get_payload(decode=True).decode()
        assert f"https://inbox.gemeente.example/meldingen/{alert['alert_id']}" in body
        assert alert["household_ref"] not in body and "schuldeiser" not in body.lower()
        assert not any(bsn in body for bsn in plant.bsns_used)
    assert not any(".2." in m["Message-ID"] for m in mailbox.messages)  # no mail on updates
    assert mailbox.logins and set(mailbox.logins) == {"wijkhub"}  # over STARTTLS, logged in

    metrics = series(delivery.metrics_text(), "wijkhub_deliveries_total")
    figures = {f"{labels['sink']}/{labels['team']}/{labels['result']}": v for labels, v in metrics}
    # Only the receiver that is down dead-letters (the loop above), so every webhook dead
    # letter of the session is one of its records, counted once.
    webhook_letters = [d for d in letters if d.source == "webhook"]
    assert figures.get(f"webhook/{DOWN}/dead-lettered", 0) == len(webhook_letters)
    # Every extra attempt the receiver saw was a retry the sender counted; the sender may
    # count more (an attempt that timed out before its request arrived, on a busy machine).
    # How many there are depends on the session's alert ids (a third fail, a third stall).
    retries = {team: sum(n - 1 for (t, _), n in Receiver.attempts.items() if t == team)
               for team in FLAKY}  # fmt: skip
    assert all(figures.get(f"webhook/{team}/retried", 0) >= retries[team] for team in FLAKY)
    assert retries["wijkteam-centrum"] >= 1  # the retry path ran (13+ keys, 2 in 3 retried)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"deliveries": figures, "receiver_requests": Receiver.requests,
                                  "receiver_duplicates": Receiver.duplicates,
                                  "accepted_keys": len(Receiver.accepted)}, indent=2))  # fmt: skip
