"""Integration fixtures: a real Kafka broker and a real wijkhub worker process.

The broker is the local KRaft broker (``wijkhub broker``) unless
KAFKA_BOOTSTRAP_SERVERS points at one. Every test session uses its own topic
prefix and consumer group, so runs never see each other's records.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from wijkhub.admin import create_topics
from wijkhub.broker import DISTRICT_FIXTURE, LocalBroker, free_port
from wijkhub.connectors.alerts import iter_alerts
from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake, IntakeReport
from wijkhub.connectors.teams import hash_password
from wijkhub.schemas.registry import HOUSEHOLD_VIEW, LINKED_EVENT, RAW_EVENT, Catalog
from wijkhub.settings import Settings
from wijkhub.streams.topics import DLQ_INGEST, LINKED, RAW_TOPICS, WORKER_INPUTS, full_name
from wijkhub.streams.topics import HOUSEHOLD_VIEW as HOUSEHOLD_VIEW_TOPIC
from wijkhub.supervise import InboxProcess, IntakeProcess, WorkerProcess


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # The privacy scan reads everything every other test produced: it runs last.
    items.sort(key=lambda item: item.fspath.basename == "test_privacy.py")


OPERATOR_TOKEN = secrets.token_urlsafe(32)
TEAM_A, TEAM_B = "wijkteam-centrum", "wijkteam-noord"
_PASSWORDS = {name: secrets.token_urlsafe(16) for name in ("anna", "bram", "carla")}


def inbox_password(account: str) -> str:
    return _PASSWORDS[account]


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
        district_table=str(DISTRICT_FIXTURE),
        operator_tokens=f"beheerder={OPERATOR_TOKEN}",
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

    def lag(self) -> int:
        """Records on the worker's input topics that its group has not committed yet."""
        admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers)
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers)
        try:
            inputs = [self.topic(t) for t in WORKER_INPUTS]
            tps = [TopicPartition(t, p) for t in inputs for p in consumer.partitions_for_topic(t)]
            end = consumer.end_offsets(tps)
            group = self.settings.app_id
            committed = admin.list_group_offsets({group: None}).get(group, {})
            return sum(end[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
        finally:
            admin.close()
            consumer.close()

    def wait_drained(self, timeout: float = 60.0) -> None:
        """Until the worker has committed every record of every topic it consumes."""
        deadline = time.monotonic() + timeout
        while (lag := self.lag()) > 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker still has {lag} records to process after {timeout}s")
            time.sleep(0.5)

    def linked(self) -> dict[str, list[dict]]:
        """event_id → where the event is linked now: household, method, member change.

        A correction withdraws an event from one household (a record with a higher
        generation) and links it to another: only the placements still standing count.
        """
        catalog = Catalog()
        latest: dict[tuple[str, str], dict] = {}
        for record in self.records(LINKED):
            linked = catalog.decode(record.value, LINKED_EVENT)
            if linked["linked_by"] == "register":
                continue  # a household's membership periods, not an event
            at = (linked["event_id"], linked["household_ref"])
            if at not in latest or latest[at]["generation"] < linked["generation"]:
                latest[at] = linked
        found: dict[str, list[dict]] = {}
        for (event_id, _), linked in sorted(latest.items()):
            if not linked["withdrawn"]:
                found.setdefault(event_id, []).append(
                    {k: linked[k] for k in ("household_ref", "linked_by", "member_change")}
                )
        return found

    def view(self, household_ref: str) -> dict | None:
        """The latest household view of one household on the compacted topic."""
        catalog = Catalog()
        latest = None
        for record in self.records(HOUSEHOLD_VIEW_TOPIC):
            if record.key == household_ref.encode():
                latest = catalog.decode(record.value, HOUSEHOLD_VIEW)
        return latest

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


class Topics:
    """The records that arrived on the raw and intake dead-letter topics since a mark.

    Remembers end offsets and reads only what came after them, with one
    consumer, so a test pays for its own records, not for the whole session's.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.catalog = Catalog()
        self.consumer = KafkaConsumer(
            bootstrap_servers=hub.settings.bootstrap_servers, enable_auto_commit=False
        )
        names = [hub.topic(t) for t in (*RAW_TOPICS, DLQ_INGEST)]
        self.dlq = hub.topic(DLQ_INGEST)
        self.partitions = [
            TopicPartition(t, p) for t in names for p in self.consumer.partitions_for_topic(t)
        ]
        self.consumer.assign(self.partitions)
        self.mark()

    def mark(self) -> None:
        self._from = self.consumer.end_offsets(self.partitions)

    def new(self) -> tuple[list[dict], list]:
        """(decoded new events, new dead-letter records), and set the mark after them."""
        end = self.consumer.end_offsets(self.partitions)
        for tp in self.partitions:
            self.consumer.seek(tp, self._from[tp])
        records: list = []
        while any(self.consumer.position(tp) < end[tp] for tp in self.partitions):
            for batch in self.consumer.poll(timeout_ms=500).values():
                records += [
                    r for r in batch if r.offset < end[TopicPartition(r.topic, r.partition)]
                ]
        self._from = end
        events = [self.catalog.decode(r.value, RAW_EVENT) for r in records if r.topic != self.dlq]
        return events, [r for r in records if r.topic == self.dlq]

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def topics(hub) -> Iterator[Topics]:
    t = Topics(hub)
    try:
        yield t
    finally:
        t.close()


class IntakeServer:
    """A real ``wijkhub serve-intake`` process with one token for every source."""

    def __init__(self, settings: Settings) -> None:
        self.token = secrets.token_urlsafe(32)
        intake = settings.with_(
            intake_port=free_port(),
            ingest_tokens=",".join(f"{source}={self.token}" for source in SOURCES),
        )
        # its JSON log is checked by test_privacy
        self.process = IntakeProcess(intake, settings.data_dir / "intake.log").start()
        self.base = self.process.base_url

    def post(self, source: str, body: bytes, token: str | None = "") -> tuple[int, dict]:
        """POST /ingest/<source>: (status, JSON answer). token None sends no header."""
        request = urllib.request.Request(f"{self.base}/ingest/{source}", data=body, method="POST")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="session")
def intake_server(hub_settings) -> Iterator[IntakeServer]:
    server = IntakeServer(hub_settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def inbox(hub_settings, worker, tmp_path_factory) -> Iterator[InboxProcess]:
    """``wijkhub inbox serve`` with members anna (team A), bram and carla (team B)."""
    teams_file = tmp_path_factory.mktemp("inbox") / "teams.yaml"
    accounts = {"anna": TEAM_A, "bram": TEAM_B, "carla": TEAM_B}
    lines = ["teams:", f"  {TEAM_A}: {{name: Wijkteam Centrum}}",
             f"  {TEAM_B}: {{name: Wijkteam Noord}}", "accounts:"]  # fmt: skip
    for account, team in accounts.items():
        lines.append(
            f'  {account}: {{team: {team}, password: "{hash_password(_PASSWORDS[account])}"}}'
        )
    teams_file.write_text("\n".join(lines) + "\n")
    port = free_port()
    settings = hub_settings.with_(
        teams_file=str(teams_file),
        inbox_secret=secrets.token_urlsafe(32),
        inbox_port=port,
        inbox_base_url=f"http://127.0.0.1:{port}",
        inbox_expiry_sweep_seconds=1.0,
    )
    proc = InboxProcess(settings, hub_settings.data_dir / "inbox.log").start()
    try:
        yield proc
    finally:
        proc.stop()
