"""Broker process control without a broker: when is a pid gone, and whose pid is it.

The real start/stop/kill cycle is tested on Kafka in tests/integration/test_broker.py.
"""

import json
import os
import signal
import socket
import subprocess
import time

from wijkhub import broker
from wijkhub.broker import LocalBroker, StopOutcome, _alive, free_port


def test_a_zombie_counts_as_gone_and_a_reaped_pid_too():
    proc = subprocess.Popen(["sleep", "30"])
    assert _alive(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _alive(proc.pid) and time.monotonic() < deadline:  # exited, not reaped: a zombie
        time.sleep(0.01)
    assert not _alive(proc.pid)
    proc.wait()
    assert not _alive(proc.pid)


def test_stop_never_signals_a_pid_that_is_not_this_brokers(tmp_path):
    """After a crash the pid in broker.json may belong to another process by now."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        broker = LocalBroker(tmp_path)
        broker.state_file.write_text(json.dumps({"pid": other.pid, "port": 1}))
        assert broker.pid() is None and broker.running() is None
        assert broker.shutdown(timeout=1) is StopOutcome.NOT_RUNNING
        assert not broker.kill()
        assert other.poll() is None  # still running, untouched
        assert not broker.state_file.exists()  # the stale state is cleared
    finally:
        other.kill()
        other.wait()


def test_nothing_to_stop_and_no_data_to_keep_in_an_empty_home(tmp_path):
    broker = LocalBroker(tmp_path / "new")
    assert not broker.stop() and not broker.formatted() and broker.bootstrap is None


def test_a_free_port_is_outside_the_range_outgoing_connections_use_and_never_given_twice():
    """CI once lost a test to a port that a Kafka client's outgoing connection took
    between choosing it and the server binding it."""
    low = int(broker.EPHEMERAL_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == 200
    assert all(broker.LISTEN_PORTS_FROM <= port < low for port in ports)


def test_a_port_someone_listens_on_is_not_offered(monkeypatch):
    with socket.create_server(("127.0.0.1", free_port())) as taken:
        port = taken.getsockname()[1]
        monkeypatch.setattr(broker, "LISTEN_PORTS_FROM", port)
        monkeypatch.setattr(broker, "_ephemeral_start", lambda: port + 2)
        monkeypatch.setattr(broker, "_handed_out", set())
        assert free_port() == port + 1
