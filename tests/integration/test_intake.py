"""Every format through every intake path into the real broker: events and dead letters out.

These tests need no worker: they check what lands on raw.<domain> and
dlq.ingest. Counts are exact: read == events + dead letters, and the topics
grew by exactly those numbers.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from wijkhub.broker import free_port
from wijkhub.connectors.deadletter import unseal
from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake
from wijkhub.connectors.relay import relay
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.streams.topics import DLQ_INGEST, RAW_TOPICS

from shared_data import IJW, VROEGSIGNALERING

DDAS = VROEGSIGNALERING / "enkelvoudigVoorbeeld.json"
EXAMPLE_BSNS = {"999900006", "123456789"}  # in the iJw and DDAS examples


class Topics:
    """Counts and new records of the raw and dead-letter topics, from a mark on."""

    def __init__(self, hub) -> None:
        self.hub = hub
        self.catalog = Catalog()
        self.mark()

    def _all(self):
        raw = [r for t in RAW_TOPICS for r in self.hub.records(t)]
        return raw, self.hub.records(DLQ_INGEST)

    def mark(self) -> None:
        raw, dlq = self._all()
        self._seen = {(r.topic, r.partition, r.offset) for r in raw + dlq}

    def new(self):
        raw, dlq = self._all()
        fresh = [r for r in raw if (r.topic, r.partition, r.offset) not in self._seen]
        dead = [r for r in dlq if (r.topic, r.partition, r.offset) not in self._seen]
        self.mark()
        return [self.catalog.decode(r.value, RAW_EVENT) for r in fresh], dead


def reason(letter) -> str:
    return dict(letter.headers)["dl_reason"].decode()


@pytest.fixture
def topics(hub):
    return Topics(hub)


def cli(hub, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **hub.settings.to_env()}
    return subprocess.run([sys.executable, "-m", "wijkhub", *args], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_cli_loads_the_ijw_examples_one_dead_letter_for_jw315(hub, topics):
    files = [str(IJW / f"JW{n}.example.xml") for n in ("301", "305", "307", "315")]
    done = cli(hub, "ingest", "ijw", *files, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["read"], summary["events"], summary["dead_lettered"]) == (6, 5, 1)
    events, dead = topics.new()
    assert sorted(e["payload"][0].rsplit(".", 1)[1] for e in events) == [
        "ProvisionStarted", "ProvisionStarted", "ProvisionStopped", "ProvisionStopped",
        "ToewijzingSnapshot"]  # fmt: skip
    assert {e["envelope"]["domain"] for e in events} == {"youth"}
    [letter] = dead
    assert reason(letter).startswith("XSD JW315: ToewijzingEinddatum: day is out of range")
    assert (
        unseal(hub.settings.dead_letter_key, letter.value)
        == (IJW / "JW315.example.xml").read_bytes()
    )
    assert dict(letter.headers)["dl_origin"] == b"JW315.example.xml"


def test_ddas_signal_with_a_failing_bsn_is_kept_flagged_and_pseudonym_free(hub, topics):
    intake = Intake(hub.settings, "vroegsignalering")
    try:
        report = intake.ingest(DDAS.read_bytes(), "ddas.json")
    finally:
        intake.close()
    assert (report.read, report.events, report.dead_lettered) == (1, 1, 0)
    [event], dead = topics.new()
    assert dead == []
    assert event["subject"]["person_ref"] is None
    assert event["subject"]["data_quality"] == ["bsn-failed-elfproef"]
    assert event["subject"]["address_ref"] == "1234AB-10-A"
    payload = event["payload"][1]
    assert (payload["creditor_type"], payload["amount_cents"], str(payload["arrears_since"])) == (
        "Energie", 45000, "2024-12-10")  # fmt: skip


def test_file_drop_moves_files_and_a_redelivered_file_repeats_the_same_event_ids(
    hub, topics, tmp_path
):
    drop = FileDrop(tmp_path, lambda source: Intake(hub.settings, source))
    drop.prepare()
    csv = (b"benefit_id;benefit_type;change;occurred_at;reason;bsn\n"
           b"B-1;bijstand;sanction;2026-05-01;geen medewerking;111222333\n"
           b"B-2;bijstand;ended;2026-13-01;;111222333\n")  # fmt: skip
    (tmp_path / "income" / "incoming" / "uitkering.csv").write_bytes(csv)
    (tmp_path / "income" / "incoming" / "upload.csv.part").write_bytes(csv)  # not finished: skip
    try:
        [report] = drop.scan_once()
        assert (report.read, report.events, report.dead_lettered) == (2, 1, 1)
        first, dead = topics.new()
        assert reason(dead[0]) == "field occurred_at is not an ISO date or date-time"
        assert (tmp_path / "income" / "processed" / "uitkering.csv").exists()
        assert (tmp_path / "income" / "incoming" / "upload.csv.part").exists()
        (tmp_path / "income" / "incoming" / "again.csv").write_bytes(csv)
        drop.scan_once()
        second, _ = topics.new()
        assert [e["envelope"]["event_id"] for e in second] == [
            e["envelope"]["event_id"] for e in first
        ]
    finally:
        drop.close()


def test_file_drop_keeps_a_file_it_could_not_deliver_in_failed_with_the_reason(hub, tmp_path):
    unreachable = hub.settings.with_(bootstrap_servers=f"127.0.0.1:{free_port()}")
    drop = FileDrop(tmp_path, lambda source: Intake(unreachable, source), sources=("teams",))
    drop.prepare()
    (tmp_path / "teams" / "incoming" / "cases.json").write_bytes(b'{"kind": "case_closed"}')
    assert drop.scan_once() == []
    assert (tmp_path / "teams" / "failed" / "cases.json").exists()
    assert "Unable to bootstrap" in (tmp_path / "teams" / "failed" /
                                    "cases.json.reason.txt").read_text()  # fmt: skip


@pytest.fixture
def intake_server(hub):
    token = secrets.token_urlsafe(32)
    settings = hub.settings.with_(intake_port=free_port(), ingest_tokens=f"teams={token},"
                                  f"vroegsignalering={token}")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "wijkhub", "serve-intake"],
                            env={**os.environ, **settings.to_env()},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{settings.intake_port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield base, token
    proc.terminate()
    proc.wait(10)


def post(url: str, body: bytes, token: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_ingest_answers_202_with_ids_422_with_reasons_401_without_token(
    hub, topics, intake_server
):
    base, token = intake_server
    status, answer = post(f"{base}/ingest/vroegsignalering", DDAS.read_bytes(), token)
    assert status == 202 and len(answer["event_ids"]) == 1
    ids = answer["event_ids"]
    cases = [
        {
            "kind": "case_opened",
            "message_id": "h-1",
            "case_id": "C",
            "team": "T",
            "case_type": "jeugd",
            "occurred_at": "2026-05-01",
            "bsn": "111222333",
        },
        {
            "kind": "case_opened",
            "message_id": "h-2",
            "case_id": "C",
            "team": "T",
            "case_type": "jeugd",
            "occurred_at": "2026-05-01",
            "bsn": "111222334",
        },
    ]
    status, answer = post(f"{base}/ingest/teams", json.dumps(cases).encode(), token)
    assert status == 422
    assert answer["events"] == 1
    ids += answer["event_ids"]
    assert answer["rejected"] == [
        {"position": "http:teams#2", "reason": "BSN fails the elfproef or is not 8-9 digits"}
    ]
    assert post(f"{base}/ingest/teams", b"[]", "wrong-token")[0] == 401
    assert post(f"{base}/ingest/bank", b"[]", token)[0] == 404
    events, dead = topics.new()
    assert sorted(e["envelope"]["event_id"] for e in events) == sorted(ids)
    assert len(dead) == 1


def test_kafka_relay_reads_another_systems_topic(hub, topics):
    source_topic = hub.topic("external.jeugdzorg")
    admin = KafkaAdminClient(bootstrap_servers=hub.settings.bootstrap_servers)
    admin.create_topics([NewTopic(source_topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=hub.settings.bootstrap_servers)
    for n in ("305", "307", "315"):
        producer.send(source_topic, (IJW / f"JW{n}.example.xml").read_bytes())
    producer.send(source_topic, b"")  # an empty record is a dead letter, not a silent drop
    producer.flush()
    consumer = KafkaConsumer(source_topic, bootstrap_servers=hub.settings.bootstrap_servers,
                             group_id=f"{hub.settings.app_id}-relay-test",
                             auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    intake = Intake(hub.settings, "ijw")
    deadline = time.monotonic() + 30
    try:
        report = relay(
            consumer,
            intake,
            "ijw",
            stop=lambda total: total.read >= 6 or time.monotonic() > deadline,
        )
    finally:
        intake.close()
        consumer.close()
    assert (report.read, report.events, report.dead_lettered) == (6, 4, 2)
    events, dead = topics.new()
    assert len(events) == 4
    assert sorted(reason(d) for d in dead) == [
        "XSD JW315: ToewijzingEinddatum: day is out of range for month (and 1 more)",
        "empty input"]  # fmt: skip
