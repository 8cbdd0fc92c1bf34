"""Every format through every intake path into the real broker: events and dead letters out.

These tests need no worker: they check what lands on raw.<domain> and
dlq.ingest. Counts are exact: read == events + dead letters, and the topics
grew by exactly those numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from wijkhub.broker import free_port
from wijkhub.connectors.deadletter import unseal
from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake, producer
from wijkhub.connectors.relay import relay

from builders import as_admin
from shared_data import IJW, VROEGSIGNALERING

DDAS = VROEGSIGNALERING / "enkelvoudigVoorbeeld.json"


def reason(letter) -> str:
    return dict(letter.headers)["dl_reason"].decode()


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
    per_file = {Path(f["file"]).name: f for f in summary["per_file"]}
    assert [(f["read"], f["events"], f["dead_lettered"]) for f in summary["per_file"]] == [
        (1, 1, 0), (2, 2, 0), (2, 2, 0), (1, 0, 1)]  # fmt: skip
    [(why, count)] = per_file["JW315.example.xml"]["dead_letter_reasons"].items()
    assert count == 1 and why.startswith("XSD JW315: ToewijzingEinddatum: day is out of range")
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


def test_file_drop_keeps_a_file_in_incoming_while_kafka_is_unreachable(hub, tmp_path):
    unreachable = hub.settings.with_(bootstrap_servers=f"127.0.0.1:{free_port()}")

    def intake_for(source: str) -> Intake:  # fails fast: bootstrapping waits 30 s by default
        kafka = producer(unreachable, source, bootstrap_timeout_ms=1500)
        return Intake(unreachable, source, kafka=kafka)

    drop = FileDrop(tmp_path, intake_for, sources=("teams",))
    drop.prepare()
    (tmp_path / "teams" / "incoming" / "cases.json").write_bytes(b'{"kind": "case_closed"}')
    assert drop.scan_once() == []
    assert (tmp_path / "teams" / "incoming" / "cases.json").exists()  # retried by the next scan
    assert list((tmp_path / "teams" / "failed").iterdir()) == []
    drop = FileDrop(tmp_path, lambda source: Intake(hub.settings, source), sources=("teams",))
    try:
        assert [r.read for r in drop.scan_once()] == [1]  # Kafka is back
    finally:
        drop.close()
    assert (tmp_path / "teams" / "processed" / "cases.json").exists()


def test_http_ingest_answers_202_with_ids_422_with_reasons_401_without_token(
    hub, topics, intake_server
):
    post = intake_server.post
    status, answer = post("vroegsignalering", DDAS.read_bytes())
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
    status, answer = post("teams", json.dumps(cases).encode())
    assert status == 422
    assert answer["events"] == 1
    ids += answer["event_ids"]
    [rejected] = answer["rejected"]
    key = rejected.pop("key")  # the dead letter's key: a reference for support
    assert rejected == {
        "position": "http:teams#2", "reason": "BSN fails the elfproef or is not 8-9 digits"
    }  # fmt: skip
    assert post("teams", b"[]", token="wrong-token")[0] == 401
    assert post("bank", b"[]")[0] == 404
    events, dead = topics.new()
    assert sorted(e["envelope"]["event_id"] for e in events) == sorted(ids)
    [letter] = dead
    assert letter.key == key.encode() and key.startswith("DL-")


def test_kafka_relay_reads_another_systems_topic(hub, topics):
    source_topic = hub.topic("external.jeugdzorg")
    admin = KafkaAdminClient(**as_admin(hub.settings))
    admin.create_topics([NewTopic(source_topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(**as_admin(hub.settings))
    for n in ("305", "307", "315"):
        producer.send(source_topic, (IJW / f"JW{n}.example.xml").read_bytes())
    producer.send(source_topic, b"")  # an empty record is a dead letter, not a silent drop
    producer.flush()
    consumer = KafkaConsumer(source_topic, **as_admin(hub.settings),
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


def test_file_drop_process_serves_its_intake_metrics(hub, topics, tmp_path):
    settings = hub.settings.with_(connector_metrics_port=free_port())
    proc = subprocess.Popen([sys.executable, "-m", "wijkhub", "watch", str(tmp_path),
                             "--poll", "0.2"], env={**os.environ, **settings.to_env()},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        incoming = tmp_path / "income" / "incoming"
        deadline = time.monotonic() + 30
        while not incoming.is_dir() and time.monotonic() < deadline:
            time.sleep(0.1)
        (incoming / "uitkering.csv").write_bytes(
            b"benefit_id;benefit_type;change;occurred_at;bsn\nB-9;bijstand;ended;2026-05-01;"
            b"111222333\nB-10;bijstand;ended;2026-05-01;111222334\n"
        )
        url = f"http://127.0.0.1:{settings.connector_metrics_port}/metrics"
        text = ""
        while "wijkhub_intake_events_total{" not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                text = urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError:
                continue
    finally:
        proc.terminate()
        proc.wait(10)
    assert 'wijkhub_intake_records_total{source="income"} 2.0' in text
    assert 'wijkhub_intake_events_total{source="income"} 1.0' in text
    dead_letters = r'wijkhub_dead_letters_total\{reason="[a-z-]+",source="income",stage="ingest"\}'
    assert re.search(dead_letters + " 1.0", text)
    assert re.search(r'wijkhub_intake_last_success_timestamp_seconds\{source="income"\} 1\.7', text)
    events, dead = topics.new()
    assert len(events) == 1 and len(dead) == 1


def test_intake_commands_before_topics_exist_fail_at_once_with_one_line(hub, tmp_path):
    """A topic prefix never created: ingest, watch and relay say so in seconds, exit 2."""
    prefix = f"never-created-{time.monotonic_ns()}."
    env = {**os.environ, **hub.settings.with_(topic_prefix=prefix).to_env()}
    data = tmp_path / "uitkering.csv"
    data.write_bytes(b"benefit_id;benefit_type;change;occurred_at;bsn\nB-1;bijstand;ended;"
                     b"2026-05-01;111222333\n")  # fmt: skip
    commands = {
        "income": ["ingest", "income", str(data), "--json"],
        "youth": ["watch", str(tmp_path / "drop"), "--once"],  # every source: ijw's first
        "debt": ["relay", "vroegsignalering", "--topic", hub.topic("external.nothing")],
    }
    for domain, args in commands.items():
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "wijkhub", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert time.monotonic() - began < 20, args  # no minute-long metadata wait
        assert "Traceback" not in done.stderr and done.stdout == ""
        more = 6 if args[0] == "watch" else 1  # a source writes its raw topic and dlq.ingest
        assert done.stderr.strip().splitlines()[-1] == (
            f"error: topic {prefix}raw.{domain} does not exist (nor {more} more of the hub's "
            "topics): run `wijkhub topics create` first"
        )
    assert not (tmp_path / "drop").exists()
