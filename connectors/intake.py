"""Intake: source bytes in, raw events or dead letters out, counted.

Every input line ends up as exactly one record: a RawEvent on raw.<domain>
or a dead letter on dlq.ingest (original bytes sealed, reason in headers).
The report's ``received == accepted + dead_lettered`` is what tests assert.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kafka import KafkaProducer
from wijkhub.connectors.canonical import cloudevent_headers, to_raw_event
from wijkhub.connectors.deadletter import DeadLetter, seal
from wijkhub.connectors.identity import InvalidInput, Pseudonymiser
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.streams.topics import DLQ_INGEST, full_name, raw

from wijkhub.logs import get as get_logger
from wijkhub.settings import Settings

log = get_logger("wijkhub.intake")


@dataclass
class IntakeReport:
    source: str
    received: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "received": self.received,
            "accepted": self.accepted,
            "dead_lettered": self.dead_lettered,
            "reasons": dict(self.reasons),
        }


def producer(settings: Settings, **overrides: object) -> KafkaProducer:
    """A producer that waits for the broker's acknowledgement of every record."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.require_bootstrap(),
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_in_flight_requests_per_connection": 1,  # keep per-partition order on retry
        "retries": 5,
        "client_id": f"{settings.app_id}-intake",
    }
    options.update(overrides)
    return KafkaProducer(**options)


class IntakeError(RuntimeError):
    """Kafka did not acknowledge some records: the caller must retry the input."""


class Intake:
    """Turns source records into raw events on Kafka, for one named source."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        kafka: KafkaProducer | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        settings.require_secrets()
        self.settings = settings
        self.source = source
        self.catalog = catalog or Catalog()
        self.pseudonymiser = Pseudonymiser(settings.pseudonym_key)
        self.kafka = kafka or producer(settings)
        self._owns_kafka = kafka is None
        self._pending: list = []  # send futures of the current ingest, checked after flush

    def _topic(self, name: str) -> str:
        return full_name(name, self.settings.topic_prefix)

    def dead_letter(
        self, report: IntakeReport, original: bytes, code: str, reason: str, origin: str
    ) -> None:
        letter = DeadLetter(
            stage="ingest",
            reason_code=code,
            reason=reason,
            source=self.source,
            original=seal(self.settings.dead_letter_key, original),
            sealed=True,
            origin=origin,
        )
        self._pending.append(
            self.kafka.send(
                self._topic(DLQ_INGEST),
                key=self.source.encode(),
                value=letter.original,
                headers=letter.headers(),
            )
        )
        report.dead_lettered += 1
        report.reasons[code] += 1
        log.warning(
            "input dead-lettered",
            source=self.source,
            reason_code=code,
            reason=reason,
            origin=origin,
        )

    def ingest_records(self, items: Iterable[tuple[bytes, str]]) -> IntakeReport:
        """Ingest (original bytes, origin) pairs; each bytes value is one JSON source record."""
        report = IntakeReport(self.source)
        self._pending = []
        for original, origin in items:
            report.received += 1
            try:
                record = json.loads(original)
                if not isinstance(record, dict):
                    raise InvalidInput("a source record must be a JSON object")
                now = dt.datetime.now(dt.UTC)
                domain, key, event = to_raw_event(
                    record, self.source, self.pseudonymiser, self.settings.municipality, now
                )
                value = self.catalog.encode(RAW_EVENT, event)
            except json.JSONDecodeError:
                self.dead_letter(report, original, "not-json", "input is not valid JSON", origin)
                continue
            except InvalidInput as exc:
                self.dead_letter(report, original, "invalid", str(exc), origin)
                continue
            except (ValueError, TypeError) as exc:  # Avro rejected a value
                self.dead_letter(
                    report,
                    original,
                    "schema",
                    f"does not fit the RawEvent schema ({type(exc).__name__})",
                    origin,
                )
                continue
            self._pending.append(
                self.kafka.send(
                    self._topic(raw(domain)),
                    key=key.encode(),
                    value=value,
                    headers=cloudevent_headers(event),
                )
            )
            report.accepted += 1
        self.kafka.flush()
        failed = sum(1 for f in self._pending if f.failed())
        self._pending = []
        if failed:
            # Nothing is lost silently: the whole input is reported as not taken.
            raise IntakeError(
                f"{failed} of {report.received} records were not acknowledged by Kafka"
            )
        log.info("intake finished", **report.as_dict())
        return report

    def ingest_lines(self, lines: Iterable[bytes], origin: str) -> IntakeReport:
        return self.ingest_records(
            (line.rstrip(b"\r\n"), f"{origin}:{n}")
            for n, line in enumerate(lines, 1)
            if line.strip()
        )

    def close(self) -> None:
        if self._owns_kafka:
            self.kafka.close()
