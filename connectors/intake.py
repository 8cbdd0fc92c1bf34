"""Intake: source bytes in, raw events or dead letters out, counted.

Every record read ends up as exactly one Kafka record: a RawEvent on
raw.<domain>, or a dead letter on dlq.ingest (original bytes sealed, source,
position and reason in headers). ``read == events + dead_lettered`` is what
the tests assert and what every intake path reports. All intake paths (CLI,
file drop, HTTP, Kafka relay) call :meth:`Intake.ingest` or
:meth:`Intake.ingest_items`. An intake that makes
its own producer first checks that the cluster answers and has the topics
(:mod:`wijkhub.connectors.preflight`): ``IntakeNotReady`` says what to do.

Ingesting an input again is harmless, so every path may retry and an
operator may re-run a killed load: event ids derive from source message ids
(or the record's content), and a dead letter's key from the record's place in
its input (:func:`~wijkhub.connectors.deadletter.letter_key`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from kafka import KafkaProducer
from kafka.errors import KafkaError

from wijkhub.connectors.canonical import Refused, cloudevent_headers, to_raw_event
from wijkhub.connectors.deadletter import DeadLetter, content_id, letter_key, seal
from wijkhub.connectors.formats import Item, parse
from wijkhub.connectors.formats.base import safe_reason
from wijkhub.connectors.identity import InvalidInput, Pseudonymiser
from wijkhub.connectors.preflight import IntakeNotReady, require_topics
from wijkhub.kafka import connect
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.settings import Settings
from wijkhub.streams.access import intake as intake_service
from wijkhub.streams.topics import DLQ_INGEST, full_name, raw

if TYPE_CHECKING:
    from kafka.producer.future import FutureRecordMetadata

log = get_logger("wijkhub.intake")

Placed = tuple[str, Item]  # (the record's place in its input, the record)


def placed(input_id: str, items: Iterable[Item]) -> Iterator[Placed]:
    """Each record of one input with its place: the input's identity and the record's index.
    Parsing is deterministic, so the same input gives every record the same place again."""
    for index, item in enumerate(items):
        yield f"{input_id}#{index}", item


class IntakeSummary(TypedDict):
    """The counts of an :class:`IntakeReport` as logged and answered (JSON)."""

    source: str
    read: int
    events: int
    dead_lettered: int
    reasons: dict[str, int]
    dead_letter_reasons: dict[str, int]


@dataclass
class IntakeReport:
    """What one input (or, added up, a run) gave: counts, and dead letters by reason.

    ``reasons`` counts dead letters by code (``invalid``, ``schema``), as the
    metrics do; ``dead_letter_reasons`` by the reason itself, which is what
    an operator corrects in the source ("field change must be one of …").
    """

    source: str
    read: int = 0
    events: int = 0
    dead_lettered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    event_ids: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)  # position, reason, key

    def add(self, other: IntakeReport) -> None:
        """Add another report's counts to this one (totals of a run; ids are not kept)."""
        self.read += other.read
        self.events += other.events
        self.dead_lettered += other.dead_lettered
        self.reasons.update(other.reasons)
        self.dead_letter_reasons.update(other.dead_letter_reasons)

    def as_dict(self) -> IntakeSummary:
        return {
            "source": self.source,
            "read": self.read,
            "events": self.events,
            "dead_lettered": self.dead_lettered,
            "reasons": dict(self.reasons),
            "dead_letter_reasons": dict(self.dead_letter_reasons),
        }


def producer(settings: Settings, source: str, **overrides: Any) -> KafkaProducer:
    """A producer, as the source's own intake principal (it may write only its raw topics
    and the dead letters), that waits for the broker's acknowledgement of every record
    (:func:`producer_options`)."""
    return KafkaProducer(**producer_options(settings, source, **overrides))


def producer_options(settings: Settings, source: str, **overrides: Any) -> dict[str, Any]:
    """The intake producer's settings. ``overrides``: any KafkaProducer setting, replacing
    the defaults here (KafkaProducer checks them); hence a dict of Any rather than its
    keyword list again."""
    options: dict[str, Any] = {
        **connect(settings, intake_service(source)).kafka_python(),
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_in_flight_requests_per_connection": 1,  # keep per-partition order on retry
        "compression_type": settings.kafka_compression_type,
        "retries": 5,
        "client_id": f"{settings.app_id}-intake",
    }
    options.update(overrides)
    return options


class IntakeError(RuntimeError):
    """Kafka did not acknowledge some records: the caller must keep the input.

    ``retriable``: every failure was one Kafka calls transient (broker away,
    timeout), so the same input can simply be ingested again later.
    """

    def __init__(self, message: str, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def retriable(exc: BaseException) -> bool:
    """Kafka unavailable for now (not a record Kafka refuses for good, not a bad input).

    A broker that does not answer, or topics not (yet, or no longer) there, is an
    operator's matter that passes: the file drop keeps the file and tries again.
    """
    if isinstance(exc, IntakeNotReady):
        return True
    return isinstance(exc, IntakeError | KafkaError) and bool(exc.retriable)


class Intake:
    """Turns the input of one named source into raw events on Kafka."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        kafka: KafkaProducer | None = None,
        catalog: Catalog | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        settings.require_secrets()
        if kafka is None:
            # Fail in seconds with what to do, not after a minute's metadata wait. A caller
            # that brings its own producer has taken charge of the connection itself.
            require_topics(settings, [source])
        self.settings = settings
        self.source = source
        self.catalog = catalog or Catalog()
        self.pseudonymiser = Pseudonymiser(settings.pseudonym_key, settings.pseudonym_key_id)
        self.metrics = metrics or Metrics()
        self.kafka = kafka or producer(settings, source)
        self._owns_kafka = kafka is None
        # send futures of the current ingest, checked after flush
        self._pending: list[FutureRecordMetadata] = []

    def _topic(self, name: str) -> str:
        return full_name(name, self.settings.topic_prefix)

    def _dead_letter(
        self, report: IntakeReport, place: str, item: Item, code: str, reason: str
    ) -> None:
        reason = safe_reason(reason)
        key = letter_key(self.settings.dead_letter_key, self.source, place)
        letter = DeadLetter(
            stage="ingest",
            reason_code=code,
            reason=reason,
            source=self.source,
            original=seal(self.settings.dead_letter_key, item.original),
            sealed=True,
            origin=item.position,
        )
        self._pending.append(
            self.kafka.send(
                self._topic(DLQ_INGEST),
                key=key.encode(),
                value=letter.original,
                headers=letter.headers(),
            )
        )
        report.dead_lettered += 1
        report.reasons[code] += 1
        report.dead_letter_reasons[reason] += 1
        report.rejected.append({"position": item.position, "reason": reason, "key": key})
        self.metrics.dead_letters.labels("ingest", self.source, code).inc()
        log.warning(
            "input dead-lettered",
            source=self.source,
            reason_code=code,
            reason=reason,
            origin=item.position,
            dead_letter_key=key,
        )

    def _event(self, report: IntakeReport, place: str, item: Item) -> None:
        """One record to one RawEvent on Kafka, or, whatever went wrong, one dead letter."""
        assert item.record is not None
        try:
            topic, key, value, headers, event_id = self._encode(item)
        except Refused as exc:  # this source may not say this (kind, date)
            self._dead_letter(report, place, item, exc.code, str(exc))
            return
        except InvalidInput as exc:
            self._dead_letter(report, place, item, "invalid", str(exc))
            return
        except (ValueError, TypeError, AttributeError) as exc:  # Avro refused a value
            reason = f"does not fit the RawEvent schema ({type(exc).__name__})"
            self._dead_letter(report, place, item, "schema", reason)
            return
        except Exception as exc:  # a record no check foresaw: it alone fails
            reason = f"could not be turned into an event ({type(exc).__name__})"
            self._dead_letter(report, place, item, "unreadable", reason)
            return
        self._pending.append(self.kafka.send(topic, key=key, value=value, headers=headers))
        report.events += 1
        report.event_ids.append(event_id)

    def _encode(self, item: Item) -> tuple[str, bytes, bytes, list[tuple[str, bytes]], str]:
        """(topic, key, Avro value, CloudEvents headers, event id) of one record. Everything
        that may fail on odd input happens here, before anything is sent."""
        record = item.record
        assert record is not None
        if not str(record.get("message_id") or "").strip():
            # An export without message ids: the content is the identity, so a
            # re-delivered identical row is the same event. Keyed: a bare hash of a row
            # holding a BSN is reversed by trying every BSN (it travels on as correlation id).
            record["message_id"] = self.pseudonymiser.content_ref(item.original)
        now = dt.datetime.now(dt.UTC)
        tolerance = dt.timedelta(days=self.settings.future_tolerance_days)
        domain, key, event = to_raw_event(
            record, self.source, self.pseudonymiser, self.settings.municipality, now, tolerance
        )
        value = self.catalog.encode(RAW_EVENT, event)
        headers = cloudevent_headers(event)
        return self._topic(raw(domain)), key.encode(), value, headers, event["envelope"]["event_id"]

    def ingest_items(self, items: Iterable[Placed]) -> IntakeReport:
        """Produce an event or a dead letter per placed item, then wait for Kafka's
        acknowledgements: the report is returned only when every record is acknowledged."""
        return self._acknowledged([items])[0]

    def ingest_many(self, inputs: Sequence[tuple[bytes, str]]) -> list[IntakeReport]:
        """Several inputs of this source, (bytes, origin) each, acknowledged together: one
        wait for Kafka instead of one per input. An XML message is one input of one or a
        few records, so waiting per message bounded the XML intake to the round trips.
        Every report, or :class:`IntakeError`: then the caller keeps every input (their
        event ids and dead-letter keys are the same when they are ingested again)."""
        return self._acknowledged(
            [placed(content_id(data), parse(self.source, data, origin)) for data, origin in inputs]
        )

    def _acknowledged(self, inputs: Sequence[Iterable[Placed]]) -> list[IntakeReport]:
        self._pending = []
        reports = []
        for items in inputs:
            report = IntakeReport(self.source)
            for place, item in items:
                report.read += 1
                if item.error is not None:
                    self._dead_letter(report, place, item, "invalid", item.error)
                else:
                    self._event(report, place, item)
            reports.append(report)
        self.kafka.flush()
        pending, self._pending = self._pending, []
        # Acknowledged means succeeded, not merely "not failed": a send still pending
        # counts as not acknowledged. Nothing is lost silently: the caller keeps the input.
        unacked = [f for f in pending if not f.succeeded()]
        if unacked:
            read = sum(r.read for r in reports)
            raise IntakeError(
                f"{len(unacked)} of {read} records were not acknowledged by Kafka",
                retriable=all(f.retriable() for f in unacked if f.failed()),
            )
        m = self.metrics
        for report in reports:
            m.intake_records.labels(self.source).inc(report.read)
            m.intake_events.labels(self.source).inc(report.events)
            log.info("intake finished", **report.as_dict())
        m.intake_last_success.labels(self.source).set(time.time())
        return reports

    def ingest(self, data: bytes, origin: str) -> IntakeReport:
        """Parse one input of this source (file, request body) and ingest it. The input is
        identified by its bytes, not by ``origin`` (a name, kept in the dead letters' headers)."""
        return self.ingest_items(placed(content_id(data), parse(self.source, data, origin)))

    def close(self) -> None:
        if self._owns_kafka:
            self.kafka.close()
