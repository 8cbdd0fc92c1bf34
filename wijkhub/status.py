"""``wijkhub status``: what an operator checks first, read from Kafka itself.

Per source the time of the newest event on the raw topics, the consumer lag
of the workers per input topic, the dead letters kept per dead-letter topic
(on dlq.ingest: distinct dead-letter keys, as a re-ingested input writes its
dead letters again under the same keys), and the open alerts per team.
Everything comes from the cluster (offsets, the newest record of each
partition, the compacted alerts topic), so it works without a worker
running and with any number of workers.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from wijkhub.admin import admin_client
from wijkhub.connectors.alerts import latest_alerts
from wijkhub.connectors.deadletter import distinct_count
from wijkhub.kafka import connect
from wijkhub.settings import Settings
from wijkhub.streams.access import OPERATOR
from wijkhub.streams.topics import (
    DLQ_DELIVERY,
    DLQ_INGEST,
    DLQ_STREAMS,
    RAW_TOPICS,
    UNMATCHED,
    WORKER_INPUTS,
)


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]


def _last_intake(consumer: KafkaConsumer, settings: Settings) -> dict[str, str]:
    """Per source (the CloudEvents source of the events), when its newest event arrived."""
    newest: dict[str, int] = {}
    for name in RAW_TOPICS:
        tps = _partitions(consumer, settings.topic_prefix + name)
        if not tps:
            continue
        ends = consumer.end_offsets(tps)
        live = [tp for tp in tps if ends[tp] > 0]
        if not live:
            continue
        consumer.assign(live)
        for tp in live:
            consumer.seek(tp, ends[tp] - 1)
        pending = set(live)
        while pending:
            batches = consumer.poll(timeout_ms=2000)
            if not batches:
                break
            for tp, records in batches.items():
                pending.discard(tp)
                for r in records:
                    source = dict(r.headers).get("ce_source", b"unknown").decode()
                    newest[source] = max(newest.get(source, 0), r.timestamp)
    return {
        s: dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
        for s, ms in sorted(newest.items())
    }


def _keys(consumer: KafkaConsumer, tps: list[TopicPartition]) -> Iterator[bytes | None]:
    """The key of every record kept on these partitions."""
    ends = consumer.end_offsets(tps)
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for tp, records in consumer.poll(timeout_ms=1000).items():
            yield from (r.key for r in records if r.offset < ends[tp])


def _kept(consumer: KafkaConsumer, settings: Settings) -> dict[str, int]:
    kept: dict[str, int] = {}
    for name in (DLQ_INGEST, DLQ_STREAMS, DLQ_DELIVERY, UNMATCHED):
        tps = _partitions(consumer, settings.topic_prefix + name)
        if tps and name == DLQ_INGEST:
            kept[name] = distinct_count(_keys(consumer, tps))
        elif tps:
            ends, starts = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
            kept[name] = sum(ends[tp] - starts[tp] for tp in tps)
    return kept


def kept_for_review(settings: Settings) -> dict[str, int]:
    """Per dead-letter topic (and unmatched) what is kept: on dlq.ingest distinct keys."""
    consumer = KafkaConsumer(**connect(settings, OPERATOR).kafka_python(),
                             enable_auto_commit=False)  # fmt: skip
    try:
        return _kept(consumer, settings)
    finally:
        consumer.close()


def group_lag(consumer: KafkaConsumer, admin: Any, settings: Settings) -> dict[str, int]:
    """Records on each worker input the group has not committed yet (0: drained).

    The committed offsets are read first, the ends after: a stage commits only after its
    outputs were acknowledged, so ends read later hold every record those commits
    produced. (Read the other way round, a stage can commit past ends read before its
    outputs arrived, and the group looks drained while the next stage has work.)"""
    committed = admin.list_group_offsets({settings.app_id: None}).get(settings.app_id, {})
    lag: dict[str, int] = {}
    for name in WORKER_INPUTS:
        tps = _partitions(consumer, settings.topic_prefix + name)
        ends = consumer.end_offsets(tps) if tps else {}
        lag[name] = sum(ends[tp] - (committed[tp].offset if tp in committed else 0)
                        for tp in tps)  # fmt: skip
    return lag


def collect(settings: Settings) -> dict[str, Any]:
    consumer = KafkaConsumer(**connect(settings, OPERATOR).kafka_python(),
                             enable_auto_commit=False)  # fmt: skip
    admin = admin_client(settings, OPERATOR)
    try:
        lag = group_lag(consumer, admin, settings)
        kept = _kept(consumer, settings)
        last = _last_intake(consumer, settings)
    finally:
        consumer.close()
        admin.close()
    open_alerts = Counter(
        a["team"] for a in latest_alerts(settings) if a["state"] in ("open", "acknowledged")
    )
    return {
        "last_intake_per_source": last,
        "consumer_lag_per_topic": lag,
        "kept_for_review": kept,
        "open_alerts_per_team": dict(sorted(open_alerts.items())),
    }


def as_text(status: dict[str, Any]) -> str:
    lines = ["last intake per source:"]
    lines += [f"  {s:<40} {t}" for s, t in status["last_intake_per_source"].items()] or ["  none"]
    lines.append("consumer lag (records not yet processed):")
    lines += [f"  {t:<20} {n}" for t, n in status["consumer_lag_per_topic"].items()]
    lines.append("dead letters and unmatched signals kept:")
    lines += [f"  {t:<20} {n}" for t, n in status["kept_for_review"].items()]
    lines.append("open alerts per team:")
    lines += [f"  {t:<20} {n}" for t, n in status["open_alerts_per_team"].items()] or ["  none"]
    return "\n".join(lines)
