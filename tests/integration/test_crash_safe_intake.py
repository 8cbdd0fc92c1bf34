"""Intake that survives a kill and a broker outage, on the real broker.

- ``wijkhub ingest`` killed mid-file and run again: every bad record has one
  dead-letter key and every good record one event id, although part of the
  file went to Kafka twice; ``wijkhub status`` counts dead letters by key.
- The file drop while the broker is down: the file stays in incoming/ and is
  processed once the broker is back (on its own data and port).

Both use topics of their own (a prefix, or a broker of their own), so the
worker of the session is not loaded with their thousands of records.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

from kafka import KafkaConsumer, TopicPartition

from wijkhub.admin import prepare
from wijkhub.broker import LocalBroker
from wijkhub.connectors.deadletter import distinct_count
from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake, producer
from wijkhub.settings import Settings
from wijkhub.status import kept_for_review
from wijkhub.streams.topics import DLQ_INGEST, full_name

from builders import Hub, as_admin

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
    """Every record on one of these settings' topics (the builders' reader)."""
    return Hub(settings, None).records(name)  # type: ignore[arg-type]


def dead_letters_so_far(settings: Settings) -> int:
    consumer = KafkaConsumer(**as_admin(settings))  # end offsets only
    try:
        topic = full_name(DLQ_INGEST, settings.topic_prefix)
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def test_ingest_killed_mid_file_and_run_again_adds_no_dead_letter_and_no_event_id(
    hub_settings, tmp_path
):
    settings = hub_settings.with_(topic_prefix=f"{hub_settings.topic_prefix}rerun.")
    prepare(settings)
    good, bad_at = 12_000, {3, 12_000, 12_001, 12_002, 12_003}
    path = tmp_path / "uitkering.csv"
    path.write_bytes(income_file(good, bad_at))
    command = [sys.executable, "-m", "wijkhub", "ingest", "income", str(path), "--json"]
    env = {**os.environ, **settings.to_env()}

    killed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while dead_letters_so_far(settings) == 0 and killed.poll() is None:
        assert time.monotonic() < deadline, "no dead letter within 60 s"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # mid-file: the first bad row is in, the others not
    _, stderr = killed.communicate(timeout=30)
    assert killed.returncode == -signal.SIGKILL, f"the load finished before the kill: {stderr!r}"
    partial = len(read(settings, DLQ_INGEST))
    assert 1 <= partial < len(bad_at)

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["read"], summary["events"], summary["dead_lettered"]) == (
        good + len(bad_at), good, len(bad_at))  # fmt: skip

    letters = read(settings, DLQ_INGEST)
    assert len(letters) == partial + len(bad_at)  # written again, under the same keys
    assert len({r.key for r in letters}) == len(bad_at) == distinct_count(r.key for r in letters)
    assert kept_for_review(settings)[DLQ_INGEST] == len(bad_at)  # what `wijkhub status` shows
    assert all(BSN.encode() not in (r.key + b"".join(v for _, v in r.headers)) for r in letters)

    events = read(settings, "raw.income")
    ids = {dict(r.headers)["ce_id"] for r in events}
    # whatever part of the first run's events reached Kafka, they are repeats: one id each
    assert len(events) >= good and len(ids) == good


def test_file_drop_keeps_a_file_while_the_broker_is_down_and_ingests_it_after(tmp_path):
    broker = LocalBroker(tmp_path / "broker")
    try:
        broker.start()
        settings = broker.client_settings(Settings(
            topic_prefix="drop.",
            pseudonym_key=secrets.token_urlsafe(32).encode(),
            dead_letter_key=secrets.token_urlsafe(32).encode(),
        ))  # fmt: skip
        prepare(settings)
        # short timeouts, so the outage shows within seconds (production keeps the defaults)
        fast = {"max_block_ms": 3000, "request_timeout_ms": 1500, "delivery_timeout_ms": 3000,
                "reconnect_backoff_max_ms": 500}  # fmt: skip
        drop = FileDrop(tmp_path / "drop",
                        lambda s: Intake(settings, s, kafka=producer(settings, s, **fast)),
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
