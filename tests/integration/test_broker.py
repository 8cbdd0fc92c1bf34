"""The local broker is restartable: acknowledged records survive a clean stop and a kill -9.

Each test runs its own broker in its own directory (not the session's), so a
stop or a crash here disturbs nobody. ``stop`` must return only once the
process is gone: callers (``make clean``, the demo, a test restarting the
broker) rely on the port and the data dir being free when it returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from wijkhub.broker import LocalBroker, port_open
from wijkhub.kafka import connect
from wijkhub.settings import Settings
from wijkhub.streams.access import ADMIN

TOPIC = "broker-restart-check"


def _kafka(broker: LocalBroker) -> dict:
    """The administrator's client arguments for this (secured) broker."""
    return connect(broker.client_settings(Settings()), ADMIN).kafka_python()


def _produce(broker: LocalBroker, value: bytes, create: bool = True) -> None:
    if create:
        admin = KafkaAdminClient(**_kafka(broker))
        try:
            admin.create_topics([NewTopic(TOPIC, 1, 1)])
        finally:
            admin.close()
    producer = KafkaProducer(**_kafka(broker), acks="all")
    try:
        producer.send(TOPIC, value).get(timeout=30)  # acknowledged: must survive
    finally:
        producer.close()


def _values(broker: LocalBroker) -> list[bytes]:
    consumer = KafkaConsumer(**_kafka(broker), enable_auto_commit=False)
    try:
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        out: list[bytes] = []
        while consumer.position(tp) < end:
            for batch in consumer.poll(timeout_ms=1000).values():
                out += [r.value for r in batch]
        return out
    finally:
        consumer.close()


def _cluster_id(broker: LocalBroker) -> str:
    lines = (broker.data_dir / "meta.properties").read_text().splitlines()
    return next(line.split("=", 1)[1] for line in lines if line.startswith("cluster.id="))


def _exited(pid: int) -> bool:
    """No such process, or only a zombie left for a parent (init) to reap."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def test_a_stopped_broker_comes_back_on_its_port_with_its_records(tmp_path):
    broker = LocalBroker(tmp_path / "broker")
    try:
        bootstrap = broker.start()
        cluster = _cluster_id(broker)
        _produce(broker, b"before-stop")
        pid = broker.pid()
        assert pid is not None
        assert broker.stop()
        # stop returned: the process is gone (our child, so reaped), the port is closed
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not port_open("127.0.0.1", int(bootstrap.rsplit(":", 1)[1]))
        assert broker.running() is None and broker.formatted()

        assert broker.start() == bootstrap  # same port: clients reconnect
        assert _cluster_id(broker) == cluster  # not formatted again
        assert _values(broker) == [b"before-stop"]
    finally:
        broker.stop()


def test_a_killed_broker_comes_back_with_every_acknowledged_record(tmp_path):
    broker = LocalBroker(tmp_path / "broker")
    try:
        bootstrap = broker.start()
        _produce(broker, b"before-kill")
        pid = broker.pid()
        assert pid is not None
        assert broker.kill()  # SIGKILL: no clean shutdown, stale broker.json left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert broker.state() is not None and broker.running() is None

        assert broker.start() == bootstrap
        assert broker.pid() != pid
        _produce(broker, b"after-kill", create=False)
        assert _values(broker) == [b"before-kill", b"after-kill"]
    finally:
        broker.stop()


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "WIJKHUB_KAFKA_PORT")}  # fmt: skip
    env["WIJKHUB_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "wijkhub", "broker", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_stop_waits_for_a_broker_it_did_not_start_and_fresh_wipes(tmp_path):
    """`broker start` exits and leaves Kafka running: `broker stop` (another process, not its
    parent, so nothing to waitpid for) must still return only once Kafka is gone."""
    try:
        started = _cli(tmp_path, "start")
        assert started.returncode == 0, started.stderr
        bootstrap = started.stdout.strip()
        _produce(LocalBroker(tmp_path / "broker"), b"kept")
        pid = json.loads(_cli(tmp_path, "status").stdout)["pid"]

        stopped = _cli(tmp_path, "stop")
        assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped", stopped.stderr
        assert _exited(pid)
        assert not port_open("127.0.0.1", int(bootstrap.rsplit(":", 1)[1]))
        assert _cli(tmp_path, "status").stdout.startswith("not running (data kept in")

        assert _cli(tmp_path, "start").stdout.strip() == bootstrap
        assert _values(LocalBroker(tmp_path / "broker")) == [b"kept"]

        fresh = _cli(tmp_path, "start", "--fresh")
        assert fresh.returncode == 0, fresh.stderr
        admin = KafkaAdminClient(**_kafka(LocalBroker(tmp_path / "broker")))
        try:
            assert TOPIC not in admin.list_topics()
        finally:
            admin.close()
    finally:
        _cli(tmp_path, "stop")
