"""A real, local Keycloak: the OpenID Connect provider of the demo and the tests.

A municipality signs its staff in through its own provider (Entra ID, ADFS,
Keycloak); the inbox only speaks OpenID Connect to it. So that the demo and the
browser tests run the same code against a real provider, this module fetches the
Keycloak server distribution from Maven Central (``deploy/keycloak/pom.xml``),
unpacks and builds it once under ``~/.cache/wijkhub/keycloak/<hash of the pom>/``
(the build step takes half a minute; each start then uses ``--optimized``), and
runs it as a plain ``java`` process on 127.0.0.1, like :mod:`wijkhub.broker` runs
Kafka. Each home gets a tree of its own (``bin/`` and ``conf/`` copied, ``lib/``,
``themes/`` and ``providers/`` linked to the cache) so its database (H2 dev-file)
and the realm it imports (``deploy/keycloak/realm.json``, ``--import-realm``) are
its own. Keycloak 26 needs Java 21 or newer: :func:`java_home` finds one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from wijkhub.broker import CACHE_ROOT as KAFKA_CACHE
from wijkhub.broker import REPO_ROOT, _alive, port_free
from wijkhub.logs import get as get_logger

POM = REPO_ROOT / "deploy" / "keycloak" / "pom.xml"
REALM_FILE = REPO_ROOT / "deploy" / "keycloak" / "realm.json"
CACHE_ROOT = KAFKA_CACHE.parent / "keycloak"
REALM = "wijkhub"
CLIENT_ID = "wijkhub-inbox"
# Build-time options: baked into the cached server by `kc.sh build`, so a start is --optimized.
BUILD_OPTIONS = ("--db=dev-file", "--health-enabled=false", "--cache=local")
MIN_JAVA = 21
log = get_logger("wijkhub.idp")


class IdpError(RuntimeError):
    """The local provider could not be fetched, started or reached; the message says why."""


def _realm() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(REALM_FILE.read_text(encoding="utf-8")))


def demo_client_secret() -> str:
    """The inbox client's secret in the demo realm (documented there: never for production)."""
    client = next(c for c in _realm()["clients"] if c["clientId"] == CLIENT_ID)
    return str(client["secret"])


def demo_users() -> dict[str, list[str]]:
    """The demo realm's users and their groups (every password: the broker's DEMO_PASSWORD)."""
    return {u["username"]: [g.strip("/") for g in u.get("groups", [])] for u in _realm()["users"]}


def _java_major(home: Path) -> int:
    """The feature version of the JDK or JRE in ``home`` (its ``release`` file), 0 if none."""
    try:
        release = (home / "release").read_text()
    except OSError:
        return 0
    found = re.search(r'JAVA_VERSION="(\d+)', release)
    return int(found.group(1)) if found else 0


def java_home(configured: str = "") -> Path:
    """A Java home of version 21 or newer: ``configured`` (WIJKHUB_IDP_JAVA_HOME), else
    JAVA_HOME, the ``java`` on PATH, or the newest under /usr/lib/jvm."""
    if configured:
        if _java_major(Path(configured)) < MIN_JAVA:
            raise IdpError(f"WIJKHUB_IDP_JAVA_HOME {configured} is not a Java {MIN_JAVA}+ home")
        return Path(configured)
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    if java := shutil.which("java"):
        candidates.append(Path(java).resolve().parent.parent)
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(jvm.iterdir(), key=_java_major, reverse=True)
    for home in candidates:
        if _java_major(home) >= MIN_JAVA and (home / "bin" / "java").exists():
            return home
    raise IdpError(
        f"Keycloak needs Java {MIN_JAVA} or newer and none was found (JAVA_HOME, PATH, "
        "/usr/lib/jvm): install one or set WIJKHUB_IDP_JAVA_HOME"
    )


def dist_dir(java: Path | None = None) -> Path:
    """The unpacked and built Keycloak of the pinned version, fetched once with Maven."""
    if not POM.exists():
        raise IdpError(f"no local provider outside a checkout ({POM} is missing)")
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    root = CACHE_ROOT / digest
    if (root / ".complete").exists():
        return next(root.glob("keycloak-*/"))
    if shutil.which("mvn") is None:
        raise IdpError("Maven (mvn) is needed once to fetch Keycloak from Maven Central")
    shutil.rmtree(root, ignore_errors=True)
    download = root / "download"
    cmd = ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy", f"-DoutputDirectory={download}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise IdpError(f"fetching Keycloak failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    [archive] = download.glob("keycloak-quarkus-dist-*.zip")
    with zipfile.ZipFile(archive) as z:
        z.extractall(root)
    shutil.rmtree(download)
    dist = next(root.glob("keycloak-*/"))
    for script in (dist / "bin").glob("*.sh"):
        script.chmod(0o755)  # zipfile keeps no modes
    env = {**os.environ, "JAVA_HOME": str(java or java_home())}
    build = subprocess.run([str(dist / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
                           capture_output=True, text=True, env=env)  # fmt: skip
    if build.returncode != 0:
        raise IdpError(f"building Keycloak failed:\n{build.stdout[-3000:]}{build.stderr[-2000:]}")
    (root / ".complete").write_text(digest)
    return dist


def _http_json(
    url: str, data: dict[str, str] | None = None, token: str = "", method: str = "",
    body: Any = None, timeout: float = 10.0,
) -> Any:  # fmt: skip
    """One request to Keycloak: a form (``data``) or JSON (``body``); the JSON answer or None."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = None
    if data is not None:
        payload = urllib.parse.urlencode(data).encode()
    elif body is not None:
        payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=payload, headers=headers, method=method or None)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        text = answer.read()
    return json.loads(text) if text else None


@dataclass
class LocalIdp:
    """One Keycloak whose state (database, admin password, pid) lives in ``home``."""

    home: Path
    port: int = 8180
    java: str = ""  # WIJKHUB_IDP_JAVA_HOME; empty: found by java_home()
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    @property
    def state_file(self) -> Path:
        return self.home / "idp.json"

    @property
    def tree(self) -> Path:
        return self.home / "keycloak"

    def admin_password(self) -> str:
        """The master realm's administrator password, made once per home (mode 0600)."""
        path = self.home / "admin.password"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def _lay_tree(self, dist: Path) -> None:
        """The home's Keycloak: its own bin/, conf/, data/ and import; the rest linked."""
        self.tree.mkdir(parents=True, exist_ok=True)
        for name in ("lib", "themes", "providers"):
            link = self.tree / name
            if not link.is_symlink():
                link.symlink_to(dist / name, target_is_directory=True)
        for name in ("bin", "conf"):  # kc.sh finds its home from its own real path
            shutil.rmtree(self.tree / name, ignore_errors=True)
            shutil.copytree(dist / name, self.tree / name)
        imports = self.tree / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REALM_FILE, imports / "realm.json")

    def pid(self) -> int | None:
        try:
            pid = int(json.loads(self.state_file.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None
        if self._proc is not None and self._proc.pid == pid:
            return pid if self._proc.poll() is None else None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        """Serving the realm (its discovery document answers)."""
        try:
            _http_json(f"{self.issuer}/.well-known/openid-configuration", timeout=2)
        except (OSError, ValueError):
            return False
        return self.pid() is not None

    def start(self, timeout: float = 180.0, fresh: bool = False) -> str:
        """Start Keycloak (importing the realm into a new database) and return the issuer
        once the realm serves. Idempotent: a running provider is returned as it is."""
        if fresh:
            self.stop()
            shutil.rmtree(self.tree / "data", ignore_errors=True)
        if self.pid() is not None:
            return self._await_serving(timeout)
        if not port_free(self.port):
            raise IdpError(f"port {self.port} is in use by another process: set WIJKHUB_IDP_PORT")
        java = java_home(self.java)
        dist = dist_dir(java)
        self._lay_tree(dist)
        management = _free_port_besides(self.port)
        env = {
            **os.environ,
            "JAVA_HOME": str(java),
            "JAVA_OPTS_KC_HEAP": "-Xms64m -Xmx512m",
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password(),
        }
        args = [
            str(self.tree / "bin" / "kc.sh"), "start", "--optimized", "--import-realm",
            "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={self.port}",
            f"--http-management-port={management}", "--hostname-strict=false",
            f"--db-url=jdbc:h2:file:{self.tree / 'data' / 'h2' / 'keycloakdb'};NON_KEYWORDS=VALUE",
            "--cache=local", "--log=file", f"--log-file={self.home / 'keycloak.log'}",
        ]  # fmt: skip
        began = time.monotonic()
        with open(self.home / "server.out", "ab") as out:
            self._proc = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.state_file.write_text(json.dumps({"pid": self._proc.pid, "port": self.port}))
        try:
            issuer = self._await_serving(timeout)
        except IdpError:
            self.stop()
            raise
        seconds = round(time.monotonic() - began, 1)
        self.state_file.write_text(
            json.dumps({"pid": self._proc.pid, "port": self.port, "started_seconds": seconds})
        )
        log.info("idp started", issuer=issuer, seconds=seconds)
        return issuer

    def _await_serving(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                out = (self.home / "server.out").read_text(errors="replace")[-3000:]
                raise IdpError(f"Keycloak exited while starting:\n{out}")
            if self.running():
                return self.issuer
            time.sleep(0.25)
        raise IdpError(f"Keycloak did not serve {self.issuer} within {timeout:.0f}s")

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM to the process group (kc.sh and its java); True if one ran."""
        pid = self.pid()
        if pid is None:
            self.state_file.unlink(missing_ok=True)
            return False
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.pid() is not None:
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)
        return True

    def memory_rss_bytes(self) -> int:
        """Resident memory of the Keycloak JVM (kc.sh's child), 0 when not running."""
        pid = self.pid()
        if pid is None:
            return 0
        total = 0
        for proc in Path("/proc").iterdir():
            with suppress(OSError, ValueError):
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if proc.name == str(pid) or int(stat[2]) == pid:  # its pgid is the group
                    for line in (proc / "status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
        return total

    def admin(self) -> IdpAdmin:
        return IdpAdmin(self.base_url, "admin", self.admin_password())


def _free_port_besides(port: int) -> int:
    from wijkhub.broker import free_port

    while (found := free_port()) == port:
        pass
    return found


@dataclass
class IdpAdmin:
    """The few calls of Keycloak's admin REST API that the demo and the tests need."""

    base_url: str
    user: str
    password: str = field(repr=False)

    def _token(self) -> str:
        answer = _http_json(
            f"{self.base_url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli",
                  "username": self.user, "password": self.password},
        )  # fmt: skip
        return str(answer["access_token"])

    def call(self, path: str, method: str = "GET", body: Any = None) -> Any:
        url = f"{self.base_url}/admin/realms/{REALM}{path}"
        return _http_json(url, token=self._token(), method=method, body=body)

    def client(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.call(f"/clients?clientId={CLIENT_ID}")[0])

    def register_inbox(self, base_urls: list[str], backchannel: bool = True) -> None:
        """Let inboxes running at ``base_urls`` use the inbox client: each one's callback and
        page after sign-out are added to those registered; with ``backchannel``, logout
        tokens go to the first (a client has one back-channel logout URI)."""
        client = self.client()
        attributes = client["attributes"]
        client["redirectUris"] = sorted(
            {*client["redirectUris"], *(f"{url}/oidc/callback" for url in base_urls)}
        )
        after = {*attributes.get("post.logout.redirect.uris", "").split("##")} - {""}
        attributes["post.logout.redirect.uris"] = "##".join(
            sorted(after | {f"{url}/inloggen" for url in base_urls})
        )
        if backchannel:
            attributes["backchannel.logout.url"] = f"{base_urls[0]}/oidc/backchannel-logout"
        self.call(f"/clients/{client['id']}", "PUT", client)

    def group_id(self, name: str) -> str:
        groups = self.call(f"/groups?search={urllib.parse.quote(name)}&exact=true")
        return str(next(g["id"] for g in groups if g["name"] == name))

    def user_id(self, username: str) -> str:
        users = self.call(f"/users?username={urllib.parse.quote(username)}&exact=true")
        return str(users[0]["id"])

    def create_user(self, username: str, password: str, groups: list[str]) -> str:
        """A user with a password and group memberships; its id."""
        self.call("/users", "POST", {
            "username": username, "enabled": True, "emailVerified": True,
            "firstName": username, "lastName": "Test", "email": f"{username}@gemeente.example",
            "requiredActions": [],
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        })  # fmt: skip
        user = self.user_id(username)
        for group in groups:
            self.call(f"/users/{user}/groups/{self.group_id(group)}", "PUT")
        return user

    def remove_from_group(self, username: str, group: str) -> None:
        self.call(f"/users/{self.user_id(username)}/groups/{self.group_id(group)}", "DELETE")

    def log_out_user(self, username: str) -> None:
        """End every session of the user at the provider (back-channel logout follows)."""
        self.call(f"/users/{self.user_id(username)}/logout", "POST")


def local_idp(data_dir: Path, port: int, java: str = "") -> LocalIdp:
    """The local provider of a data dir (its home beside the broker's)."""
    return LocalIdp(Path(data_dir).resolve() / "idp", port=port, java=java)
