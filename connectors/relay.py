"""Kafka source: consume another system's topic; every record value is one input.

Offsets are committed only after the events and dead letters of a poll were
acknowledged, so a crash re-reads (at-least-once) and the repeat is harmless:
event ids derive from message ids, and dead-letter keys from the record's
topic/partition/offset (with its bytes' digest, so a re-created topic whose
offsets start again never reuses a key for other input).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from kafka import KafkaConsumer

from wijkhub.connectors.deadletter import content_id
from wijkhub.connectors.formats import parse
from wijkhub.connectors.intake import Intake, IntakeReport, Placed, placed
from wijkhub.logs import get as get_logger

if TYPE_CHECKING:
    from kafka.consumer.fetcher import ConsumerRecord

log = get_logger("wijkhub.relay")


def _items(source: str, records: list[ConsumerRecord]) -> Iterator[Placed]:
    for r in records:
        origin, value = f"{r.topic}/{r.partition}/{r.offset}", r.value or b""
        yield from placed(f"kafka:{origin}:{content_id(value)}", parse(source, value, origin))


def relay(
    consumer: KafkaConsumer,
    intake: Intake,
    source: str,
    stop: Callable[[IntakeReport], bool] = lambda _total: False,
    poll_ms: int = 1000,
) -> IntakeReport:  # fmt: skip
    """Run until ``stop(totals so far)`` says so; returns the totals."""
    total = IntakeReport(source)
    log.info("relay started", source=source, topics=sorted(consumer.subscription() or []))
    while not stop(total):
        batches = consumer.poll(timeout_ms=poll_ms, max_records=500)
        records = [r for batch in batches.values() for r in batch]
        if not records:
            continue
        report = intake.ingest_items(_items(source, records))
        consumer.commit()
        total.add(report)
    return total
