"""Integration fixtures: a real Kafka broker and a real wijkhub worker process.

The broker is the local KRaft broker (``wijkhub broker``) unless
KAFKA_BOOTSTRAP_SERVERS points at one. Every test session uses its own topic
prefix and consumer group, so runs never see each other's records.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from wijkhub.admin import create_topics
from wijkhub.broker import LocalBroker, free_port
from wijkhub.connectors.alerts import iter_alerts
from wijkhub.connectors.intake import Intake, IntakeReport
from wijkhub.settings import Settings
from wijkhub.streams.topics import TOPICS, full_name
from wijkhub.supervise import WorkerProcess


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory) -> Iterator[str]:
    preset = Settings.from_env().bootstrap_servers
    if preset:
        yield preset
        return
    broker = LocalBroker(tmp_path_factory.mktemp("broker"))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def hub_settings(bootstrap, tmp_path_factory) -> Settings:
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap_servers=bootstrap,
        app_id=f"wijkhub-test-{run}",
        topic_prefix=f"test-{run}.",
        pseudonym_key=secrets.token_urlsafe(32).encode(),
        dead_letter_key=secrets.token_urlsafe(32).encode(),
        data_dir=tmp_path_factory.mktemp("hub"),
        web_port=free_port(),
        batch_within_seconds=0.05,
    )
    create_topics(settings)
    return settings


@pytest.fixture(scope="session")
def worker(hub_settings) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(hub_settings, hub_settings.data_dir / "worker.log").start()
    try:
        yield proc
    finally:
        proc.stop()


class Hub:
    """What a test does with the running hub: ingest, wait, read topics."""

    def __init__(self, settings: Settings, worker: WorkerProcess) -> None:
        self.settings = settings
        self.worker = worker

    def ingest(self, source: str, records: list[dict] | list[bytes]) -> IntakeReport:
        lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
        intake = Intake(self.settings, source)
        try:
            return intake.ingest(b"\n".join(lines), f"test-{source}")
        finally:
            intake.close()

    def topic(self, name: str) -> str:
        return full_name(name, self.settings.topic_prefix)

    def records(self, name: str) -> list:
        """Every record on one of the hub's topics (name as in streams/topics.py)."""
        return self.records_of(self.topic(name))

    def records_of(self, topic: str) -> list:
        """Every record on a topic, from the beginning to the current end."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers, enable_auto_commit=False
        )
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            out: list = []
            while any(consumer.position(tp) < end[tp] for tp in tps):
                for batch in consumer.poll(timeout_ms=500).values():
                    out.extend(batch)
            return out
        finally:
            consumer.close()

    def wait_drained(self, timeout: float = 60.0) -> None:
        """Until the worker has committed every record of every topic it consumes."""
        admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers)
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers)
        try:
            deadline = time.monotonic() + timeout
            inputs = [
                self.topic(t.name)
                for t in TOPICS
                if t.name.startswith("raw.") or t.name == "linked"
            ]
            tps = [TopicPartition(t, p) for t in inputs for p in consumer.partitions_for_topic(t)]
            while time.monotonic() < deadline:
                end = consumer.end_offsets(tps)
                group = self.settings.app_id
                committed = admin.list_group_offsets({group: None}).get(group, {})
                lag = sum(end[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
                if lag == 0:
                    return
                time.sleep(0.5)
            raise AssertionError(f"worker still has {lag} records to process after {timeout}s")
        finally:
            admin.close()
            consumer.close()

    def alerts(self, household_refs: set[str] | None = None) -> list[dict]:
        found = [
            a
            for a in iter_alerts(self.settings, follow=False)
            if household_refs is None or a["household_ref"] in household_refs
        ]
        return found


@pytest.fixture
def hub(hub_settings, worker) -> Hub:
    return Hub(hub_settings, worker)


@pytest.fixture
def worker_log(hub_settings) -> Path:
    return hub_settings.data_dir / "worker.log"
