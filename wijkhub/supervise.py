"""Start and stop hub processes (worker, intake, inbox, delivery) from the demo, tests and
benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from wijkhub.settings import Settings


class WorkerProcess:
    """``wijkhub worker`` as a child process; its JSON log goes to ``log_path``."""

    command: tuple[str, ...] = ("worker",)

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = {**os.environ, **self.settings.to_env()}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wijkhub", *self.command],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.command[0]} exited with {self.proc.returncode}; see {self.log_path}:\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            if self.ready():
                return self
            time.sleep(0.25)
        self.stop()
        name = self.command[0]
        raise RuntimeError(f"{name} not ready within {timeout:.0f}s; see {self.log_path}")

    def ready(self) -> bool:
        """Web server up and the worker past its first rebalance and recovery."""
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=1) as r:
                return r.status == 200 and b"ok" in r.read()
        except OSError:
            return False

    @property
    def metrics_url(self) -> str:
        return self.base_url + "/metrics"

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return r.read().decode()

    def kill(self) -> None:
        """``kill -9``: no LeaveGroup, no flush, no commit (fault-injection tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
        return self.proc.returncode


class IntakeProcess(WorkerProcess):
    """``wijkhub serve-intake``: the HTTP ingest."""

    command = ("serve-intake",)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.intake_host}:{self.settings.intake_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.intake_host}:{self.settings.connector_metrics_port}/metrics"


class InboxProcess(WorkerProcess):
    """``wijkhub inbox serve``: ready once it has read the alerts and household views."""

    command = ("inbox", "serve")

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.inbox_host}:{self.settings.inbox_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.inbox_host}:{self.settings.inbox_metrics_port}/metrics"


class DeliveryProcess(WorkerProcess):
    """``wijkhub deliver``: its /metrics page answering means it is running."""

    command = ("deliver",)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.intake_host}:{self.settings.delivery_metrics_port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/metrics", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False
