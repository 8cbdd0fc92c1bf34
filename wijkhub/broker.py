"""A real, single-node Apache Kafka broker (KRaft) for development, demo and tests.

The jars come from Maven Central through ``deploy/kafka/pom.xml`` and are cached
under ``~/.cache/wijkhub/kafka/<hash of the pom>/`` so later starts are offline.
The broker runs as a plain ``java`` process on 127.0.0.1 and is stopped by PID
with SIGTERM, which runs Kafka's clean shutdown. Its data dir survives stops and
crashes (storage is formatted only when there is none), so restart and
fault-injection tests see what a real broker does. Nothing here is a stand-in:
where ``KAFKA_BOOTSTRAP_SERVERS`` is set, callers use that cluster instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from kafka.errors import KafkaError

from wijkhub import credentials, pki
from wijkhub.kafka import PLAINTEXT, SASL_SSL, SCRAM
from wijkhub.logs import get as get_logger
from wijkhub.settings import Settings
from wijkhub.streams.access import ADMIN, SERVICES

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
log = get_logger("wijkhub.broker")
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


# Ports for local servers are taken below the kernel's ephemeral range: a port the
# kernel hands out (bind to 0) is also what it gives the next outgoing connection, so a
# server started a moment later could find it taken ("address already in use").
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FROM = 20_000
_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, that outgoing connections do not
    use, and that this process has not handed out before."""
    top = _ephemeral_start()
    span = top - LISTEN_PORTS_FROM
    start = random.randrange(span)  # two test runs on one host seldom meet
    for step in range(span):
        candidate = LISTEN_PORTS_FROM + (start + step) % span
        if candidate not in _handed_out and _can_bind(candidate):
            _handed_out.add(candidate)
            return candidate
    raise BrokerError(f"no free port between {LISTEN_PORTS_FROM} and {top}")


def _ephemeral_start() -> int:
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768  # Linux's default
    return max(low, LISTEN_PORTS_FROM + 1_000)


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def jar_dir() -> Path:
    """The folder of runtime jars for the pinned broker, fetched once with Maven."""
    if not POM.exists():  # an installed wheel: deploy/ is in the checkout only
        raise BrokerError(
            f"no local broker outside a checkout ({POM} is missing): "
            "set KAFKA_BOOTSTRAP_SERVERS to a cluster"
        )
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


class StopOutcome(StrEnum):
    NOT_RUNNING = "not running"
    STOPPED = "stopped"
    KILLED = "killed"  # SIGTERM did not end it in time: SIGKILL


def _alive(pid: int) -> bool:
    """True while the process runs. A zombie (exited, not yet reaped by its parent) is gone:
    it serves nothing and holds no port, and a parent that never reaps would keep it forever."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return not Path("/proc/self/status").exists()  # no /proc: trust kill(0)
    except OSError:
        return True
    return not any(line.startswith("State:\tZ") for line in status.splitlines())


def port_free(port: int) -> bool:
    """Can a server bind 127.0.0.1:port (with SO_REUSEADDR, as the JVM does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalBroker:
    """One KRaft broker+controller whose state lives in ``home``.

    ``home/data`` is the log dir (topics, offsets, the metadata log) and is kept
    across stops, kills and starts, so the broker can be restarted like a real
    one; ``home/ports.json`` keeps its ports so clients reconnect to the same
    address. ``home/broker.json`` describes the running process (pid, port).

    Secured by default (``protocol`` SASL_SSL), as a municipality's cluster is: TLS
    with a certificate from a private CA (``home/pki``), SCRAM-SHA-512 credentials
    for every service principal created when the storage is formatted
    (``home/credentials/<service>.password``, mode 0600), the controller reached over
    mutual TLS, and Kafka's StandardAuthorizer with ``allow.everyone.if.no.acl.found``
    off: a principal may do only what ``wijkhub acls apply`` granted it.
    """

    home: Path
    protocol: str = SASL_SSL
    principal_prefix: str = "wijkhub-"
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()  # the pid check compares the config's path

    @property
    def state_file(self) -> Path:
        return self.home / "broker.json"

    @property
    def ports_file(self) -> Path:
        return self.home / "ports.json"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def props_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def credentials_dir(self) -> Path:
        return self.home / "credentials"

    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def secured(self) -> bool:
        return self.protocol != PLAINTEXT

    def client_settings(self, settings: Settings) -> Settings:
        """``settings`` pointed at this running broker, with its CA and credentials."""
        bootstrap = self.bootstrap
        if bootstrap is None:
            raise BrokerError("the local broker is not running: `wijkhub broker start`")
        if not self.secured:
            return settings.with_(bootstrap_servers=bootstrap, kafka_security_protocol=PLAINTEXT)
        return settings.with_(
            bootstrap_servers=bootstrap,
            kafka_security_protocol=self.protocol,
            kafka_credentials_dir=str(self.credentials_dir),
            kafka_ca_file=str(self.pki_dir / "ca.crt"),
            kafka_principal_prefix=self.principal_prefix,
        )

    def _security(self, port: int, internal: int) -> str:
        """The listener and security block of ``server.properties``."""
        if not self.secured:
            return "\n".join([
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{{controller}}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ])  # fmt: skip
        tls = pki.ensure(self.pki_dir)
        return "\n".join([
            # clients: SASL_SSL; the broker itself (and this tool, to register the services'
            # credentials): mutual TLS as CN=broker on the internal listener and the controller
            f"listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal},"
            "CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal}",
            "inter.broker.listener.name=INTERNAL",
            "listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL,INTERNAL:SSL",
            "listener.name.internal.ssl.client.auth=required",
            "listener.name.controller.ssl.client.auth=required",
            f"sasl.enabled.mechanisms={SCRAM}",
            # server side only: credentials are checked against the metadata log's
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls.broker_pem}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca_file}",
            "ssl.endpoint.identification.algorithm=https",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:CN={pki.BROKER_CN};User:{self.principal_prefix}{ADMIN}",
        ])  # fmt: skip

    def _register_credentials(self, internal: int) -> None:
        """Every service principal's SCRAM credential on the broker (those it lacks)."""
        try:
            passwords = {s: credentials.password(self.credentials_dir, s) for s in SERVICES}
            made = credentials.register(f"127.0.0.1:{internal}", pki.ensure(self.pki_dir),
                                        passwords, self.principal_prefix)  # fmt: skip
        except (RuntimeError, KafkaError) as exc:
            raise BrokerError(
                f"registering the services' Kafka credentials failed: {exc}"
            ) from None
        if made:
            log.info("broker credentials registered", principals=made)

    def formatted(self) -> bool:
        """KRaft storage exists (``kafka-storage format`` ran on the data dir)."""
        return (self.data_dir / "meta.properties").exists()

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: poll() reaps it once it exited, so its pid is really gone
            # when this says so (a zombie seen between two checks would not be).
            return self._proc.poll() is None
        return _alive(pid)

    def _is_ours(self, pid: int) -> bool:
        """The pid runs Kafka on this home's config: a pid left by a crash may be reused."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return not Path("/proc/self/cmdline").exists()
        except OSError:
            return True
        return b"kafka.Kafka" in cmdline and str(self.props_file).encode() in cmdline

    def pid(self) -> int | None:
        """The pid of the live broker process of ``home`` (serving or not), or None."""
        state = self.state()
        if not state:
            return None
        pid = int(state["pid"])
        return pid if self._alive(pid) and self._is_ours(pid) else None

    def running(self) -> dict | None:
        """The state of a live broker started from ``home`` that serves, or None."""
        state = self.state()
        if not state or self.pid() is None:
            return None
        return state if port_open("127.0.0.1", state["port"]) else None

    @property
    def bootstrap(self) -> str | None:
        state = self.running()
        return f"127.0.0.1:{state['port']}" if state else None

    def wipe(self) -> None:
        """Delete the data and the kept ports (the broker must not run)."""
        if self.pid() is not None:
            raise BrokerError("the broker is running: stop it before wiping its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.credentials_dir, ignore_errors=True)  # new storage: new credentials
        self.ports_file.unlink(missing_ok=True)

    def _ports(self, port: int) -> tuple[int, int, int]:
        """(client, controller, internal port): the asked port, else the kept one, else a free
        one; the other two kept where free."""
        try:
            kept = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            kept = {}
        port = port or kept.get("port") or free_port()
        if not port_free(port):
            raise BrokerError(
                f"port {port} is in use by another process; free it, set WIJKHUB_KAFKA_PORT, "
                "or start with --fresh"
            )
        controller = kept.get("controller_port")
        if not controller or controller == port or not port_free(controller):
            controller = free_port()  # static quorum: the voter address is config, not data
        internal = kept.get("internal_port")
        while not internal or internal in (port, controller) or not port_free(internal):
            internal = free_port()
        self.ports_file.write_text(json.dumps(
            {"port": port, "controller_port": controller, "internal_port": internal}))  # fmt: skip
        return port, controller, internal

    def _format(self, java: str, classpath: str) -> None:
        fmt = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", _cluster_id(), "-c", str(self.props_file)],
            capture_output=True, text=True,
        )  # fmt: skip
        if fmt.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed: {fmt.stdout}{fmt.stderr}")
        log.info("broker storage formatted", data_dir=str(self.data_dir), protocol=self.protocol)

    def start(self, port: int = 0, timeout: float = 60.0, fresh: bool = False) -> str:
        """Start the broker and return its bootstrap address once it serves.

        Idempotent: a running broker is returned as it is. The data dir is kept
        and formatted only when there is none; ``fresh`` stops the broker and
        wipes its data first. After a stop or a crash the broker comes back on
        its previous port with every acknowledged record.
        """
        if fresh:
            self.stop()
            self.wipe()
        running = self.state()
        if (pid := self.pid()) is not None and running:  # serving, or starting elsewhere
            return self._await_serving(pid, int(running["port"]), timeout)
        libs = jar_dir()
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java 17+ is needed to run the local Kafka broker")
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        port, controller_port, internal = self._ports(port)
        security = self._security(port, internal).replace("{controller}", str(controller_port))
        self.props_file.write_text(
            SERVER_TEMPLATE.read_text().format(
                controller_port=controller_port, log_dirs=self.data_dir, security=security
            )
        )
        classpath = f"{libs}/*"
        if not self.formatted():
            self._format(java, classpath)
        tmpdir = self.home / "tmp"  # snappy/zstd unpack native code here; must allow exec
        tmpdir.mkdir(exist_ok=True)
        began = time.monotonic()
        with open(logs / "server.out", "ab") as out:
            self._proc = subprocess.Popen(
                [
                    java,
                    *JVM_OPTS,
                    f"-Djava.io.tmpdir={tmpdir}",
                    f"-Dkafka.logs.dir={logs}",
                    f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(self.props_file),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        pid = self._proc.pid
        self.state_file.write_text(json.dumps({"pid": pid, "port": port}))
        try:
            bootstrap = self._await_serving(pid, port, timeout)
            if self.secured:
                self._register_credentials(internal)
        except BrokerError:
            self.stop()
            raise
        state = {"pid": pid, "port": port, "started_seconds": time.monotonic() - began}
        self.state_file.write_text(json.dumps(state))
        return bootstrap

    def _await_serving(self, pid: int, port: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                tail = (self.home / "logs" / "server.out").read_text(errors="replace")[-3000:]
                raise BrokerError(f"Kafka exited while starting:\n{tail}")
            if port_open("127.0.0.1", port):
                return f"127.0.0.1:{port}"
            time.sleep(0.1)
        raise BrokerError(f"Kafka did not answer on 127.0.0.1:{port} within {timeout:.0f}s")

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def shutdown(self, timeout: float = 30.0) -> StopOutcome:
        """SIGTERM (Kafka's clean shutdown) and return only once the process is gone.

        The broker is usually not our child (``wijkhub broker start`` exited long
        ago), so there is nothing to ``waitpid`` for: the pid is polled. After
        ``timeout`` seconds it gets SIGKILL, and that is reported.
        """
        pid = self.pid()
        if pid is None:
            self.state_file.unlink(missing_ok=True)
            return StopOutcome.NOT_RUNNING
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        outcome = StopOutcome.STOPPED
        if not self._wait_gone(pid, timeout):
            log.warning("broker killed after stop timeout", pid=pid, timeout_seconds=timeout)
            self._sigkill(pid)
            outcome = StopOutcome.KILLED
        self.state_file.unlink(missing_ok=True)
        return outcome

    def stop(self, timeout: float = 30.0) -> bool:
        """:meth:`shutdown`; True if a broker ran."""
        return self.shutdown(timeout) is not StopOutcome.NOT_RUNNING

    def kill(self) -> bool:
        """SIGKILL, no clean shutdown: a crash, for fault-injection tests. Data and the stale
        state file stay as a crash leaves them; :meth:`start` brings the broker back."""
        pid = self.pid()
        if pid is None:
            return False
        self._sigkill(pid)
        return True

    def restart(self, timeout: float = 60.0) -> str:
        """Stop (cleanly) and start on the same data and port."""
        self.stop()
        return self.start(timeout=timeout)

    def _sigkill(self, pid: int, timeout: float = 10.0) -> None:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not self._wait_gone(pid, timeout):
            raise BrokerError(f"Kafka (pid {pid}) is still there {timeout:.0f}s after SIGKILL")

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


def local_broker(settings: Settings) -> LocalBroker:
    """The local broker of ``settings`` (its home under the data dir, its protocol)."""
    return LocalBroker(
        settings.data_dir.resolve() / "broker",
        protocol=settings.kafka_security_protocol.upper(),
        principal_prefix=settings.kafka_principal_prefix,
    )


@contextmanager
def cluster(settings: Settings, home: Path) -> Iterator[Settings]:
    """The settings with a cluster to use: the configured one, or a fresh local broker started
    in ``home`` for the duration of the block and stopped after it (benchmarks, tools: every
    run measures the same empty broker)."""
    if settings.bootstrap_servers is not None:
        yield settings
        return
    broker = LocalBroker(home, protocol=settings.kafka_security_protocol.upper())
    try:
        broker.start(fresh=True)
        yield broker.client_settings(settings)
    finally:
        broker.stop()
