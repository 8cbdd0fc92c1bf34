"""Every sample format through every intake path: the same events and dead letters out.

The samples are the files in ``connectors/samples/`` (one per source format;
what each must give is the table in tests/shared_data.py, which the unit
tests check offline). Whatever the path (the operator's CLI, the file drop,
HTTP, a Kafka topic of another system), one parsing core decides, so the
outcome must be identical: the same event types and the same reasons.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake
from wijkhub.connectors.relay import relay

from builders import as_admin
from shared_data import SAMPLE_EXPECTED as EXPECTED
from shared_data import SAMPLES

PATHS = ("cli", "file-drop", "http", "kafka")


def sample(name: str) -> Path:
    return SAMPLES / name


def _via_cli(hub, source: str, path: Path, tmp_path: Path) -> int:
    metrics = tmp_path / "intake.prom"
    done = subprocess.run(
        [sys.executable, "-m", "wijkhub", "ingest", source, str(path), "--json",
         "--metrics-file", str(metrics)],
        env={**os.environ, **hub.settings.to_env()}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)["read"]
    text = metrics.read_text()
    assert f'wijkhub_intake_records_total{{source="{source}"}} {float(read)}' in text
    assert f'wijkhub_intake_last_success_timestamp_seconds{{source="{source}"}}' in text
    return read


def _via_file_drop(hub, source: str, path: Path, tmp_path: Path) -> int:
    drop = FileDrop(tmp_path, lambda s: Intake(hub.settings, s), sources=(source,))
    drop.prepare()
    (tmp_path / source / "incoming" / path.name).write_bytes(path.read_bytes())
    try:
        [report] = drop.scan_once()
    finally:
        drop.close()
    assert (tmp_path / source / "processed" / path.name).exists()
    return report.read


def _via_http(hub, source: str, path: Path, intake_server) -> int:
    status, answer = intake_server.post(source, path.read_bytes())
    assert status == (422 if answer["rejected"] else 202), answer
    return answer["events"] + len(answer["rejected"])


def _via_kafka(hub, source: str, path: Path, name: str) -> int:
    topic = hub.topic(f"external.{source}.{name}")
    admin = KafkaAdminClient(**as_admin(hub.settings))
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(**as_admin(hub.settings))
    producer.send(topic, path.read_bytes()).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, **as_admin(hub.settings),
                             group_id=f"{hub.settings.app_id}-relay-{name}",
                             auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    intake = Intake(hub.settings, source)
    deadline = time.monotonic() + 30

    def stop(total) -> bool:
        return total.read > 0 or time.monotonic() > deadline

    try:
        report = relay(consumer, intake, source, stop=stop)
    finally:
        intake.close()
        consumer.close()
    return report.read


@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_through_path(hub, topics, intake_server, tmp_path, name, path_name):
    source, event_types, reasons = EXPECTED[name]
    path = sample(name)
    if path_name == "cli":
        read = _via_cli(hub, source, path, tmp_path)
    elif path_name == "file-drop":
        read = _via_file_drop(hub, source, path, tmp_path)
    elif path_name == "http":
        read = _via_http(hub, source, path, intake_server)
    else:
        read = _via_kafka(hub, source, path, f"{name}-{path_name}".replace(".", "-"))
    events, dead = topics.new()
    assert sorted(e["payload"][0].rsplit(".", 1)[1] for e in events) == event_types
    got = sorted(dict(d.headers)["dl_reason"].decode() for d in dead)
    assert len(got) == len(reasons)
    assert all(g.startswith(r) for g, r in zip(got, reasons, strict=True)), got
    assert read == len(events) + len(dead)  # nothing lost, nothing invented
    assert all(dict(d.headers)["dl_source"] == source.encode() for d in dead)
