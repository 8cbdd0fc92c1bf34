"""``kill -USR1``: a running worker logs where it waits, and keeps running."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

pytestmark = pytest.mark.timeout(120)


def test_sigusr1_logs_each_task_and_the_delivery_and_commit_state(hub):
    worker = hub.worker
    log = worker.log_path
    before = log.stat().st_size
    os.kill(worker.proc.pid, signal.SIGUSR1)
    deadline, found = time.monotonic() + 30, None
    while found is None and time.monotonic() < deadline:
        time.sleep(0.2)
        with log.open("rb") as f:
            f.seek(before)
            lines = [json.loads(x) for x in f.read().splitlines() if x.startswith(b"{")]
        found = next((x for x in lines if x.get("message") == "delivery and commits"), None)
    assert found is not None, "no state dump in the worker log"
    tasks = [x for x in lines if x.get("message") == "task"]
    # every stage's batch task is there, waiting in Delivery.take for its next batch
    assert sum(any("take" in w for w in t["where"]) for t in tasks) == 3
    assert set(found["inbox"]) == {"person", "address", "household"}
    assert found["assigned"] and not found["flow_suspended"] and found["held"] == []
    assert worker.proc.poll() is None and worker.ready()  # it goes on
