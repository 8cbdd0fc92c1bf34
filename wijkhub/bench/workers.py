"""N worker processes of one consumer group, for ``wijkhub bench --workers N``, and the CPU
they (and the broker) use.

Scale-out is by partitions and workers, never by agent concurrency (docs/adr/0004): the
workers share the app id, so Kafka divides the co-partitioned topics among them. They are
started together and :meth:`Workers.start` returns once the group is stable with all N, so
that a measurement can begin with N workers processing, after the rebalances of joining.

On a small machine the broker competes with the workers for the same cores, so the bench
states the cores each used: CPU seconds (user + system, from ``/proc``) per wall second of
the measured window. Linux only; elsewhere the figures are ``None``.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer

from wijkhub.broker import free_port
from wijkhub.kafka import connect
from wijkhub.settings import Settings
from wijkhub.status import group_lag
from wijkhub.streams.access import ADMIN
from wijkhub.supervise import WorkerProcess

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process and its threads so far (None: not measurable)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


class Workers:
    """N ``wijkhub worker`` processes in one group, each with its own state dir and port."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        own = [settings.with_(data_dir=settings.data_dir / f"worker-{i}", web_port=free_port())
               for i in range(count)]  # fmt: skip
        self.procs = [WorkerProcess(s, s.data_dir / "worker.log") for s in own]
        self._clients: tuple[KafkaConsumer, KafkaAdminClient] | None = None

    def start(self, timeout: float = 120.0) -> Workers:
        """Start every worker at once and wait until the group is stable with all of them."""
        with ThreadPoolExecutor(len(self.procs)) as pool:
            list(pool.map(lambda w: w.start(timeout), self.procs))
        deadline = time.monotonic() + timeout
        while self._members() != len(self.procs) or not all(w.ready() for w in self.procs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no stable group of {len(self.procs)} workers")
            time.sleep(0.25)
        return self

    def _members(self) -> int:
        admin = KafkaAdminClient(**connect(self.settings, ADMIN).kafka_python())
        # kafka-python cannot decode the member metadata of Faust's own assignor and logs
        # it whole (kilobytes per call); the count and the state are all this needs.
        logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
        try:
            group = admin.describe_groups([self.settings.app_id])[self.settings.app_id]
            state = group.get("group_state") or group.get("state")
            return len(group["members"]) if state == "Stable" else -1
        finally:
            admin.close()

    def lag(self) -> int:
        """Records on the group's input topics it has not committed yet (0: drained). The
        outputs of a batch are acknowledged before its offsets commit, so a stage's input
        is complete by the time the stage before it has committed what produced it."""
        if self._clients is None:
            kafka = connect(self.settings, ADMIN).kafka_python()
            self._clients = (KafkaConsumer(**kafka, enable_auto_commit=False),
                             KafkaAdminClient(**kafka))  # fmt: skip
        consumer, admin = self._clients
        return sum(group_lag(consumer, admin, self.settings).values())

    def metrics_text(self) -> str:
        """Every worker's /metrics page, one after the other (counters are summed by name)."""
        return "\n".join(w.metrics_text() for w in self.procs)

    def cpu_seconds(self) -> float | None:
        found = [cpu_seconds(w.proc.pid if w.proc else None) for w in self.procs]
        return None if None in found else sum(f for f in found if f is not None)

    def stop(self) -> None:
        for w in self.procs:
            w.stop()
        if self._clients is not None:
            for client in self._clients:
                client.close()
            self._clients = None
