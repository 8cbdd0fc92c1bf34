"""A real, single-node Apache Kafka broker (KRaft) for development, demo and tests.

The jars come from Maven Central through ``deploy/kafka/pom.xml`` and are cached
under ``~/.cache/wijkhub/kafka/<hash of the pom>/`` so later starts are offline.
The broker runs as a plain ``java`` process on 127.0.0.1 and is stopped by PID
with SIGTERM, which runs Kafka's clean shutdown. Nothing here is a stand-in:
where ``KAFKA_BOOTSTRAP_SERVERS`` is set, callers use that cluster instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wijkhub.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
# A small table in the CBS pc6hnr layout (synthetic codes) for the demo and the tests.
DISTRICT_FIXTURE = REPO_ROOT / "deploy" / "cbs" / "pc6hnr20250801_gwb.csv"
# Demo teams and inbox accounts (documented demo password; never for production).
DEMO_TEAMS = REPO_ROOT / "deploy" / "teams.demo.yaml"
DEMO_PASSWORD = "wijkhub-demo-wachtwoord"
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
SERVER_TEMPLATE = REPO_ROOT / "deploy" / "kafka" / "server.properties.template"
LOG4J_CONFIG = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wijkhub" / "kafka"
JVM_OPTS = [
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or reached."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def jar_dir() -> Path:
    """The folder of runtime jars for the pinned broker, fetched once with Maven."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    libs = CACHE_ROOT / digest / "libs"
    if (libs / ".complete").exists():
        return libs
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is needed once to fetch the Kafka jars from Maven Central")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={tmp}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BrokerError(
            f"fetching Kafka jars failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    (libs / ".complete").write_text(digest)
    return libs


def _cluster_id() -> str:
    """16 random bytes, base64url without padding, not starting with '-' (as StorageTool)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass
class LocalBroker:
    """One KRaft broker+controller whose state lives in ``home`` (pid, ports, data, logs)."""

    home: Path

    @property
    def state_file(self) -> Path:
        return self.home / "broker.json"

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def running(self) -> dict | None:
        """The state of a live broker started from ``home``, or None."""
        state = self.state()
        if not state:
            return None
        try:
            os.kill(state["pid"], 0)
        except (ProcessLookupError, PermissionError):
            return None
        return state if port_open("127.0.0.1", state["port"]) else None

    @property
    def bootstrap(self) -> str | None:
        state = self.running()
        return f"127.0.0.1:{state['port']}" if state else None

    def start(self, port: int = 0, timeout: float = 60.0) -> str:
        """Start the broker (idempotent) and return its bootstrap address once it serves."""
        if bootstrap := self.bootstrap:
            return bootstrap
        libs = jar_dir()
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java 17+ is needed to run the local Kafka broker")
        port = port or free_port()
        controller_port = free_port()
        data = self.home / "data"
        logs = self.home / "logs"
        shutil.rmtree(data, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text(
            SERVER_TEMPLATE.read_text().format(
                port=port, controller_port=controller_port, log_dirs=data
            )
        )
        classpath = f"{libs}/*"
        fmt = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed: {fmt.stdout}{fmt.stderr}")
        tmpdir = self.home / "tmp"  # snappy/zstd unpack native code here; must allow exec
        tmpdir.mkdir(exist_ok=True)
        began = time.monotonic()
        with open(logs / "server.out", "ab") as out:
            proc = subprocess.Popen(
                [
                    java,
                    *JVM_OPTS,
                    f"-Djava.io.tmpdir={tmpdir}",
                    f"-Dkafka.logs.dir={logs}",
                    f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(props),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.state_file.write_text(json.dumps({"pid": proc.pid, "port": port}))
        while time.monotonic() - began < timeout:
            if proc.poll() is not None:
                tail = (logs / "server.out").read_text(errors="replace")[-3000:]
                raise BrokerError(f"Kafka exited with {proc.returncode} while starting:\n{tail}")
            if port_open("127.0.0.1", port):
                state = {"pid": proc.pid, "port": port, "started_seconds": time.monotonic() - began}
                self.state_file.write_text(json.dumps(state))
                return f"127.0.0.1:{port}"
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"Kafka did not answer on 127.0.0.1:{port} within {timeout:.0f}s")

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker (Kafka's clean shutdown), SIGKILL if it hangs; True if one ran."""
        state = self.state()
        if not state:
            return False
        pid = state["pid"]
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.state_file.unlink(missing_ok=True)
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                # Reap it if it is our child; otherwise just poll.
                os.waitpid(pid, os.WNOHANG)
            except (ProcessLookupError, ChildProcessError):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)
        return True

    def memory_rss_bytes(self) -> int | None:
        state = self.running()
        if not state:
            return None
        try:
            for line in Path(f"/proc/{state['pid']}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None


@contextmanager
def cluster(settings: Settings, home: Path) -> Iterator[Settings]:
    """The settings with a cluster to use: the configured one, or a local broker started in
    ``home`` for the duration of the block and stopped after it (benchmarks, tools)."""
    if settings.bootstrap_servers is not None:
        yield settings
        return
    broker = LocalBroker(home)
    try:
        yield settings.with_(bootstrap_servers=broker.start())
    finally:
        broker.stop()
