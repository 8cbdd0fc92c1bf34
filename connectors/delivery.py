"""Alert delivery to teams' own systems: signed webhooks and e-mail notifications.

``wijkhub deliver`` reads the alerts topic in its own consumer group and, per
state change, calls the sinks configured for the alert's team:

- **webhook**: POST of the alert as JSON, signed with HMAC-SHA256 over
  ``<timestamp>.<body>`` (header ``Wijkhub-Signature: t=<unix>,v1=<hex>``),
  with ``Idempotency-Key: <alert_id>:<revision>``: the receiver keeps the keys
  it has seen, so a retry or a redelivery after a restart is applied once;
- **mail**: for a new alert only, a notification to the team's address with
  a link to the inbox and no personal data (no household, no facts).

A failed call is retried with exponential backoff and full jitter (5xx, 408,
429, timeouts, refused connections); any other 4xx is permanent, and so is a
redirect (3xx): redirects are never followed. Webhook URLs must be ``https://``
(plain ``http://`` only to loopback, when WIJKHUB_WEBHOOK_ALLOW_LOOPBACK_HTTP
allows it, for tests). After the
configured attempts the alert record goes to ``dlq.delivery`` with the reason,
so nothing is lost. Offsets are committed after the batch is delivered or
dead-lettered: at-least-once, made safe by the idempotency key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from wijkhub.connectors.alerts import as_json_ready
from wijkhub.connectors.deadletter import DeadLetter, seal
from wijkhub.connectors.teams import Team, Teams, webhook_problem
from wijkhub.kafka import connect
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.schemas.registry import ALERT, Catalog, DecodeError
from wijkhub.settings import Settings
from wijkhub.streams.access import DELIVERY
from wijkhub.streams.topics import ALERTS, DLQ_DELIVERY, full_name

log = get_logger("wijkhub.delivery")
SIGNATURE_HEADER = "Wijkhub-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
BACKOFF_CAP_SECONDS = 60.0
PARALLEL_ALERTS = 16


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def backoff(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, …): full jitter over base·2^(n-1)."""
    return (rng or random).uniform(0, min(BACKOFF_CAP_SECONDS, base * 2 ** (attempt - 1)))


def idempotency_key(alert: dict[str, Any]) -> str:
    return f"{alert['alert_id']}:{alert['revision']}"


class Permanent(Exception):
    """A failure retrying will not fix (a 4xx other than 408/429, no address)."""


class Temporary(Exception):
    """A failure worth retrying (5xx, 408, 429, timeout, connection refused)."""


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    reason: str = ""


async def with_retries(
    send: Callable[[], Awaitable[None]],
    attempts: int,
    base: float,
    on_retry: Callable[[str], None],
) -> Outcome:
    for attempt in range(1, attempts + 1):
        try:
            await send()
            return Outcome(True, attempt)
        except Permanent as exc:
            return Outcome(False, attempt, f"permanent: {exc}")
        except Temporary as exc:
            if attempt == attempts:
                return Outcome(False, attempt, f"gave up after {attempts} attempts: {exc}")
            on_retry(str(exc))
            await asyncio.sleep(backoff(attempt, base))
    return Outcome(False, attempts, "no attempts configured")


class WebhookSink:
    name = "webhook"

    def __init__(self, settings: Settings, teams: Teams, session: aiohttp.ClientSession) -> None:
        self.settings, self.teams, self.session = settings, teams, session

    def wants(self, team: Team, alert: dict[str, Any]) -> bool:
        return bool(team.webhook)

    async def send(self, team: Team, alert: dict[str, Any]) -> None:
        body = json.dumps(as_json_ready(alert), sort_keys=True, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.teams.webhook_secrets[team.id], int(time.time()), body),
            "Idempotency-Key": idempotency_key(alert),
            "User-Agent": "wijkhub-delivery",
        }
        problem = webhook_problem(team.webhook, self.settings.webhook_allow_loopback_http)
        if problem:  # the teams file is checked at load; this guards any other way in
            raise Permanent(problem)
        timeout = aiohttp.ClientTimeout(total=self.settings.delivery_timeout_seconds)
        try:
            # A redirect is never followed: it could send the alert to an address the
            # teams file does not name, or down to plain http.
            async with self.session.post(
                team.webhook, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Temporary(type(exc).__name__) from None
        raise_for_status(status)


def raise_for_status(status: int) -> None:
    """Temporary for 5xx, 408 and 429; Permanent for any other 4xx and for a redirect."""
    if status >= 500 or status in (408, 429):
        raise Temporary(f"HTTP {status}")
    if status >= 400:
        raise Permanent(f"HTTP {status}")
    if status >= 300:
        raise Permanent(f"HTTP {status}: redirects are not followed")


class MailSink:
    """New alerts only; the message says that there is an alert, not what it is about."""

    name = "mail"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def wants(self, team: Team, alert: dict[str, Any]) -> bool:
        return bool(team.email and self.settings.smtp_host and alert["change"] == "raised")

    def message(self, team: Team, alert: dict[str, Any]) -> EmailMessage:
        s = self.settings
        msg = EmailMessage()
        msg["From"], msg["To"] = s.mail_from, team.email
        msg["Subject"] = f"Nieuwe melding voor {team.name}"
        msg["Message-ID"] = f"<{alert['alert_id']}.{alert['revision']}.{team.id}@wijkhub>"
        link = f"{s.inbox_base_url.rstrip('/')}/meldingen/{alert['alert_id']}"
        msg.set_content(
            f"Beste collega,\n\nEr staat een nieuwe melding voor {team.name} in de wijkhub-"
            f"inbox.\n\nBekijk de melding na inloggen: {link}\n\nDeze e-mail bevat bewust geen "
            "gegevens over het huishouden.\n"
        )
        return msg

    def _send_blocking(self, msg: EmailMessage) -> None:
        s = self.settings
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.delivery_timeout_seconds) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=s.smtp_ca_file or None))
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password)
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Temporary(f"SMTP {exc.smtp_code}") from None
            raise Permanent(f"SMTP {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Temporary(type(exc).__name__) from None

    async def send(self, team: Team, alert: dict[str, Any]) -> None:
        await asyncio.to_thread(self._send_blocking, self.message(team, alert))


class Deliverer:
    """Deliver one alert record to every sink its team has; dead-letter what cannot be."""

    def __init__(
        self,
        settings: Settings,
        teams: Teams,
        sinks: list[Any],
        producer: AIOKafkaProducer,
        metrics: Metrics,
    ) -> None:
        self.settings, self.teams, self.sinks = settings, teams, sinks
        self.producer, self.metrics = producer, metrics
        self.dlq = full_name(DLQ_DELIVERY, settings.topic_prefix)

    async def deliver(self, record: Any, alert: dict[str, Any]) -> None:
        """To the responsible team and, for duplicate help, every involved team."""
        if alert["team"] not in self.teams.teams:
            await self.dead_letter(record, "all", alert["team"], "unknown-team",
                                   "the alert's team is not in the teams file")  # fmt: skip
        for recipient in self.teams.recipients(alert):
            team = self.teams.teams.get(recipient)
            for sink in self.sinks:
                if team is not None and sink.wants(team, alert):
                    await self.deliver_to(record, alert, team, sink)

    async def deliver_to(self, record: Any, alert: dict[str, Any], team: Team, sink: Any) -> None:
        def retried(reason: str) -> None:
            self.metrics.deliveries.labels(sink.name, team.id, "retried").inc()
            log.info("delivery retried", sink=sink.name, team=team.id, reason=reason,
                     alert_id=alert["alert_id"], revision=alert["revision"])  # fmt: skip

        outcome = await with_retries(
            lambda: sink.send(team, alert),
            self.settings.delivery_attempts,
            self.settings.delivery_backoff_seconds,
            retried,
        )
        if outcome.delivered:
            self.metrics.deliveries.labels(sink.name, team.id, "delivered").inc()
        else:
            await self.dead_letter(record, sink.name, team.id, "undeliverable", outcome.reason)

    async def dead_letter(self, record: Any, sink: str, team: str, code: str, reason: str) -> None:
        letter = DeadLetter(
            stage="delivery",
            reason_code=code,
            reason=f"{sink}: {reason}",
            source=sink,
            # the alert record names a household and its facts: sealed, as every dead letter
            original=seal(self.settings.dead_letter_key, record.value or b""),
            sealed=True,
            origin=f"{record.topic}/{record.partition}/{record.offset}",
        )
        await self.producer.send_and_wait(
            self.dlq, letter.original, key=record.key, headers=letter.headers()
        )
        self.metrics.deliveries.labels(sink, team, "dead-lettered").inc()
        self.metrics.dead_letters.labels("delivery", sink, code).inc()
        log.warning(
            "delivery dead-lettered", sink=sink, team=team, reason=reason, origin=letter.origin
        )


async def run(
    settings: Settings, teams: Teams, metrics: Metrics, stop: asyncio.Event | None = None
) -> None:
    """Consume the alerts topic and deliver every state change, until ``stop`` is set."""
    settings.require_dead_letter_key()
    catalog, stop = Catalog(), stop or asyncio.Event()
    consumer = AIOKafkaConsumer(
        full_name(ALERTS, settings.topic_prefix),
        **connect(settings, DELIVERY).aiokafka(),
        group_id=f"{settings.app_id}-delivery",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(  # dlq.delivery only
        **connect(settings, DELIVERY).aiokafka(), acks="all", enable_idempotence=True
    )
    await producer.start()
    await consumer.start()
    limit = asyncio.Semaphore(PARALLEL_ALERTS)
    try:
        async with aiohttp.ClientSession() as session:
            sinks = [WebhookSink(settings, teams, session), MailSink(settings)]
            deliverer = Deliverer(settings, teams, sinks, producer, metrics)

            async def in_order(records: list[Any]) -> None:
                async with limit:  # one alert's changes in order; alerts side by side
                    for record in records:
                        if record.value is None:
                            continue  # a removed alert: the team's system was told before
                        try:
                            alert = catalog.decode(record.value, ALERT)
                        except DecodeError as exc:
                            await deliverer.dead_letter(record, "all", "-", "undecodable", str(exc))
                            continue
                        await deliverer.deliver(record, alert)

            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                per_alert: dict[bytes, list[Any]] = {}
                for records in batches.values():
                    for record in records:
                        per_alert.setdefault(record.key or b"", []).append(record)
                await asyncio.gather(*(in_order(rs) for rs in per_alert.values()))
                if batches:
                    await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
