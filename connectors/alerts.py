"""Read the alerts topic: the console sink behind ``wijkhub alerts tail|list``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from wijkhub.kafka import connect
from wijkhub.schemas.registry import ALERT, Catalog
from wijkhub.settings import Settings
from wijkhub.streams.access import OPERATOR
from wijkhub.streams.topics import ALERTS, full_name


def _consumer(settings: Settings) -> tuple[KafkaConsumer, list[TopicPartition]]:
    consumer = KafkaConsumer(  # the operator principal: reads, never writes, alerts
        **connect(settings, OPERATOR).kafka_python(),
        enable_auto_commit=False,
        client_id=f"{settings.app_id}-alerts-reader",
    )
    topic = full_name(ALERTS, settings.topic_prefix)
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return consumer, tps


def iter_changes(
    settings: Settings,
    follow: bool,
    idle_timeout: float = 2.0,
    until: float | None = None,
    catalog: Catalog | None = None,
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(alert id, alert) from the start of the topic; the alert is None for a tombstone
    (an alert removed: a duplicate-help alert past its term, or an erased person's). With
    ``follow`` keep waiting for new ones (until the ``time.monotonic()`` deadline
    ``until``, if given)."""
    catalog = catalog or Catalog()
    consumer, tps = _consumer(settings)
    try:
        end = consumer.end_offsets(tps)
        last_seen = time.monotonic()
        while True:
            batches = consumer.poll(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    last_seen = time.monotonic()
                    alert_id = (record.key or b"").decode()
                    if record.value is None:
                        yield alert_id, None
                    else:
                        yield alert_id, catalog.decode(record.value, ALERT)
            if follow:
                if until is not None and time.monotonic() > until:
                    return
                continue
            caught_up = all(_reached(consumer.position(tp), end[tp]) for tp in tps)
            if caught_up or time.monotonic() - last_seen > idle_timeout:
                return
    finally:
        consumer.close()


def iter_alerts(
    settings: Settings,
    follow: bool,
    idle_timeout: float = 2.0,
    until: float | None = None,
    catalog: Catalog | None = None,
) -> Iterator[dict[str, Any]]:
    """Every alert record from the start of the topic (tombstones left out: use
    :func:`latest_alerts` for the alerts that still exist)."""
    for _, alert in iter_changes(settings, follow, idle_timeout, until, catalog):
        if alert is not None:
            yield alert


def _reached(position: int | None, end: int) -> bool:
    """Whether a partition's position is at its end offset; a position kafka-python does not
    know (None) is not there yet."""
    return position is not None and position >= end


def latest_alerts(settings: Settings) -> list[dict[str, Any]]:
    """The latest state of every alert (the topic is compacted by alert_id)."""
    latest: dict[str, dict[str, Any]] = {}
    for alert_id, alert in iter_changes(settings, follow=False):
        if alert is None:
            latest.pop(alert_id, None)  # removed
        else:
            latest[alert_id] = alert
    return sorted(latest.values(), key=lambda a: (a["raised_at"], a["alert_id"]))


def as_json_ready(alert: dict[str, Any]) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v.isoformat() if hasattr(v, "isoformat") else v

    return {k: plain(v) for k, v in alert.items()}


def one_line(alert: dict[str, Any]) -> str:
    return (
        f"[{alert['family']}/{alert['severity']}] {alert['rule_id']} → {alert['team']} "
        f"household {alert['household_ref']} ({len(alert['facts'])} facts): "
        f"{alert['summary']}"
    )
