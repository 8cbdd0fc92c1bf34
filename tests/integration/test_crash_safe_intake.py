"""Intake that survives a broker outage, on the real broker.

- The file drop while the broker is down: the file stays in incoming/ and is
  processed once the broker is back (on its own data and port).

It uses a broker of its own, so the session's broker is never stopped.
"""

from __future__ import annotations

import secrets
import time

from kafka import KafkaConsumer, TopicPartition

from wijkhub.admin import create_topics
from wijkhub.broker import LocalBroker
from wijkhub.connectors.deadletter import distinct_count
from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake, producer
from wijkhub.settings import Settings
from wijkhub.streams.topics import DLQ_INGEST, full_name

BSN = "111222333"
HEADER = b"benefit_id;benefit_type;change;occurred_at;reason;bsn"


def income_file(good: int, bad_at: set[int]) -> bytes:
    """A CSV of ``good`` valid rows with a bad date at each index in ``bad_at``."""
    rows, n = [HEADER], 0
    while n < good or len(rows) - 1 - n < len(bad_at):
        i = len(rows) - 1
        if i in bad_at:
            rows.append(f"X-{i};bijstand;ended;2026-13-01;;{BSN}".encode())
        else:
            rows.append(f"B-{i};bijstand;granted;2026-05-01;;{BSN}".encode())
            n += 1
    return b"\n".join(rows) + b"\n"


def read(settings: Settings, name: str) -> list:
    """Every record on one of these settings' topics."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             enable_auto_commit=False)  # fmt: skip
    try:
        topic = full_name(name, settings.topic_prefix)
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for tp, batch in consumer.poll(timeout_ms=500).items():
                out += [r for r in batch if r.offset < end[tp]]
        return out
    finally:
        consumer.close()


def test_file_drop_keeps_a_file_while_the_broker_is_down_and_ingests_it_after(tmp_path):
    broker = LocalBroker(tmp_path / "broker")
    try:
        settings = Settings(
            bootstrap_servers=broker.start(),
            topic_prefix="drop.",
            pseudonym_key=secrets.token_urlsafe(32).encode(),
            dead_letter_key=secrets.token_urlsafe(32).encode(),
        )
        create_topics(settings)
        # short timeouts, so the outage shows within seconds (production keeps the defaults)
        fast = {"max_block_ms": 3000, "request_timeout_ms": 1500, "delivery_timeout_ms": 3000,
                "reconnect_backoff_max_ms": 500}  # fmt: skip
        drop = FileDrop(tmp_path / "drop",
                        lambda s: Intake(settings, s, kafka=producer(settings, **fast)),
                        sources=("income",))  # fmt: skip
        drop.prepare()
        incoming = tmp_path / "drop" / "income" / "incoming"
        processed = tmp_path / "drop" / "income" / "processed"
        (incoming / "maandag.csv").write_bytes(income_file(3, {1}))
        deadline = time.monotonic() + 30
        while not (processed / "maandag.csv").exists():  # new topics may not have leaders yet:
            drop.scan_once()  # the file stays in incoming/ and the next scan retries it
            assert time.monotonic() < deadline, "maandag.csv not processed within 30 s"

        assert broker.stop()
        (incoming / "dinsdag.csv").write_bytes(income_file(4, {2, 3}))
        assert drop.scan_once() == []
        assert [p.name for p in incoming.iterdir()] == ["dinsdag.csv"]
        assert not (tmp_path / "drop" / "income" / "failed" / "dinsdag.csv").exists()

        assert broker.start() == settings.bootstrap_servers  # same data, same port
        [report] = drop.scan_once()
        assert (report.events, report.dead_lettered) == (4, 2)
        assert sorted(p.name for p in processed.iterdir()) == ["dinsdag.csv", "maandag.csv"]
        assert distinct_count(r.key for r in read(settings, DLQ_INGEST)) == 3
        drop.close()
    finally:
        broker.stop()
