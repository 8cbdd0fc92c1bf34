"""Integration fixtures: a real Kafka broker and a real wijkhub worker process.

The broker is the local KRaft broker (``wijkhub broker``) unless
KAFKA_BOOTSTRAP_SERVERS points at one. Every test session uses its own topic
prefix and consumer group, so runs never see each other's records.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from wijkhub.admin import prepare
from wijkhub.broker import DISTRICT_FIXTURE, LocalBroker, free_port
from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.teams import hash_password
from wijkhub.idp import LocalIdp, demo_client_secret, local_idp
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.settings import Settings
from wijkhub.streams.topics import DLQ_INGEST, RAW_TOPICS
from wijkhub.supervise import InboxProcess, IntakeProcess, WorkerProcess

from builders import OPERATOR_TOKEN, TEAM_A, TEAM_B, TEST_ID_KEY, Hub, as_admin, inbox_password


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # The privacy scan reads everything every other test produced: it runs last.
    items.sort(key=lambda item: item.fspath.basename == "test_privacy.py")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[Settings]:
    """How the suite reaches Kafka: the secured local broker (its address, CA and every
    service's credentials), or the cluster KAFKA_BOOTSTRAP_SERVERS and its
    WIJKHUB_KAFKA_* settings point at."""
    preset = Settings.from_env()
    if preset.bootstrap_servers:
        yield preset
        return
    broker = LocalBroker(tmp_path_factory.mktemp("broker"))
    try:
        broker.start()
        yield broker.client_settings(Settings())
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def hub_settings(cluster, tmp_path_factory) -> Settings:
    run = uuid.uuid4().hex[:8]
    settings = cluster.with_(
        app_id=f"wijkhub-test-{run}",
        topic_prefix=f"test-{run}.",
        pseudonym_key=secrets.token_urlsafe(32).encode(),
        dead_letter_key=secrets.token_urlsafe(32).encode(),
        data_dir=tmp_path_factory.mktemp("hub"),
        web_port=free_port(),
        batch_within_seconds=0.05,
        district_table=str(DISTRICT_FIXTURE),
        operator_tokens=f"beheerder={OPERATOR_TOKEN}",
        expiry_sweep_seconds=1.0,
        action_keys=f"t1={secrets.token_urlsafe(32)}",
        id_key=TEST_ID_KEY,
    )
    prepare(settings)  # topics, and every service's ACLs
    return settings


@pytest.fixture(scope="session")
def worker(hub_settings) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(hub_settings, hub_settings.data_dir / "worker.log").start()
    try:
        yield proc
    finally:
        proc.stop()


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
        self.consumer = KafkaConsumer(**as_admin(hub.settings), enable_auto_commit=False)
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
            connector_metrics_port=free_port(),
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
    """``wijkhub inbox serve`` in local mode with members anna (team A), bram and carla
    (team B)."""
    teams_file = tmp_path_factory.mktemp("inbox") / "teams.yaml"
    accounts = {"anna": TEAM_A, "bram": TEAM_B, "carla": TEAM_B}
    lines = ["teams:", f"  {TEAM_A}: {{name: Wijkteam Centrum}}",
             f"  {TEAM_B}: {{name: Wijkteam Noord}}", "accounts:"]  # fmt: skip
    for account, team in accounts.items():
        lines.append(
            f'  {account}: {{team: {team}, password: "{hash_password(inbox_password(account))}"}}'
        )
    teams_file.write_text("\n".join(lines) + "\n")
    port = free_port()
    settings = hub_settings.with_(
        teams_file=str(teams_file),
        inbox_auth="local",  # the development mode: the teams file's accounts
        inbox_port=port,
        inbox_metrics_port=free_port(),
        inbox_base_url=f"http://127.0.0.1:{port}",
    )
    proc = InboxProcess(settings, hub_settings.data_dir / "inbox.log").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def idp(hub_settings) -> Iterator[LocalIdp]:
    """A real Keycloak with the demo realm, once per session (about half a minute): the
    local provider of the hub's data dir, which the demo finds running."""
    provider = local_idp(hub_settings.data_dir, free_port())
    try:
        provider.start()
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def oidc_teams_file(tmp_path_factory) -> Path:
    """Teams A and B, and the realm's role groups (no local accounts)."""
    path = tmp_path_factory.mktemp("oidc") / "teams.yaml"
    path.write_text(
        f"teams:\n  {TEAM_A}: {{name: Wijkteam Centrum}}\n  {TEAM_B}: {{name: Wijkteam Noord}}\n"
        "roles: {regisseur: regisseurs, beheerder: beheerders, fg: fg}\n"
    )
    return path


@pytest.fixture(scope="session")
def oidc_inbox_process(hub_settings, idp, oidc_teams_file):
    """Make (not start) an inbox process that signs staff in at the test's Keycloak."""

    def make(name: str, **changes) -> InboxProcess:
        return _oidc_inbox(hub_settings, idp, oidc_teams_file, name, **changes)

    return make


def _oidc_inbox(hub_settings, idp, teams_file: Path, name: str, **changes) -> InboxProcess:
    port = free_port()
    settings = hub_settings.with_(
        teams_file=str(teams_file),
        inbox_auth="oidc",
        oidc_issuer=idp.issuer,
        oidc_client_secret=demo_client_secret(),
        inbox_port=port,
        inbox_metrics_port=free_port(),
        inbox_base_url=f"http://127.0.0.1:{port}",
        **changes,
    )
    return InboxProcess(settings, hub_settings.data_dir / f"{name}.log")


@pytest.fixture(scope="session")
def oidc_inbox(worker, idp, oidc_inbox_process) -> Iterator[InboxProcess]:
    """``wijkhub inbox serve`` signing staff in at the real Keycloak; group changes are
    rechecked after 2 s (WIJKHUB_OIDC_RECHECK_SECONDS) so a test need not wait a minute."""
    proc = oidc_inbox_process("oidc-inbox", oidc_recheck_seconds=2.0)
    idp.admin().register_inbox([proc.base_url])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
