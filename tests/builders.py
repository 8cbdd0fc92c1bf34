"""Every builder the tests share, in one module, so that no test module imports another.

Registered as a plugin in ``tests/conftest.py`` (``pytest_plugins``) for its fixtures;
imported as ``from builders import ...`` (``pythonpath = ["tests"]`` in pyproject.toml).

- Linked events as the link stage makes them, and a fake producer: for the unit tier.
- Source records as the intake receives them (:class:`SourceRecords`, fixture ``plant``),
  the :class:`Hub` a test drives, and the BSNs the tests put in: for the integration tier.
  The privacy scan searches every topic for the BSNs ``plant`` handed out, so the
  registry lives in that session fixture rather than in a module-level global.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import os
import random
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from wijkhub import pki
from wijkhub.connectors.alerts import iter_alerts
from wijkhub.connectors.identity import address_ref, bsn_is_valid
from wijkhub.connectors.intake import Intake, IntakeReport
from wijkhub.kafka import connect
from wijkhub.schemas.registry import AUDIT_ENTRY, HOUSEHOLD_VIEW, LINKED_EVENT, Catalog
from wijkhub.settings import Settings
from wijkhub.status import group_lag
from wijkhub.streams.access import ADMIN
from wijkhub.streams.ids import Ids
from wijkhub.streams.linking import household_for_address
from wijkhub.streams.topics import AUDIT, LINKED, full_name
from wijkhub.streams.topics import HOUSEHOLD_VIEW as HOUSEHOLD_VIEW_TOPIC
from wijkhub.supervise import WorkerProcess
from wijkhub.synthetic import make_bsn

from shared_data import SAMPLE_EXPECTED, SAMPLES

# --- unit tier: linked events as the link stage makes them ------------------------------

_ids = itertools.count(1)


def linked(
    payload_name,
    payload,
    household="H-1",
    person=None,
    address="1011AB-5",
    domain="debt",
    event_id=None,
    when=None,
):
    when = when or dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    return {
        "household_ref": household,
        "linked_by": "person" if person else "address",
        "event": {
            "envelope": {
                "event_id": event_id or f"e{next(_ids)}",
                "source": "urn:test",
                "source_message_id": "m",
                "domain": domain,
                "type": "t",
                "occurred_at": when,
                "received_at": when,
                "municipality": "0363",
                "schema_version": 1,
                "correlation_id": "c",
            },
            "subject": {
                "person_ref": person,
                "address_ref": address,
                "match": None,
                "data_quality": [],
            },
            "payload": (payload_name, payload),
        },
    }


def arrears(creditor, day, amount=100, since=None, crisis=False, **kw):
    signal_date = dt.date(2026, 1, 1) + dt.timedelta(days=day)
    kw.setdefault("when", dt.datetime.combine(signal_date, dt.time(), dt.UTC))
    return linked(
        "nl.wijkhub.debt.ArrearsSignal",
        {
            "signal_id": f"s-{creditor}-{day}",
            "creditor_type": creditor,
            "amount_cents": amount,
            "arrears_months": 1,
            "arrears_since": since,
            "signal_date": dt.date(2026, 1, 1) + dt.timedelta(days=day),
            "crisis": crisis,
            "warm_handover": False,
        },
        **kw,
    )


def case(team, case_id, case_type="schuldhulp", **kw):
    return linked(
        "nl.wijkhub.teams.CaseOpened",
        {
            "case_id": case_id,
            "team": team,
            "case_type": case_type,
            "opened_on": dt.date(2026, 2, 1),
            "contact": "team@example",
        },
        person="P-1",
        domain="teams",
        **kw,
    )


def provision(provider, provision_id, domain="care", **kw):
    return linked(
        "nl.wijkhub.care.ProvisionStarted",
        {
            "provision_id": provision_id,
            "provider": provider,
            "product_category": "02",
            "started_on": dt.date(2026, 2, 1),
        },
        person="P-1",
        domain=domain,
        **kw,
    )


def snapshot(provider, numbers, on=dt.date(2026, 4, 1), domain="youth", person="P-1", **kw):
    return linked(
        "nl.wijkhub.care.ToewijzingSnapshot",
        {
            "provider": provider,
            "snapshot_on": on,
            "assignments": [
                {
                    "number": n,
                    "product_category": "55",
                    "product_code": "",
                    "assigned_on": on,
                    "start_on": on,
                    "end_on": None,
                }
                for n in numbers
            ],
        },
        person=person,
        domain=domain,
        **kw,
    )


def stopped(provider, provision_id, reason="31", domain="care", **kw):
    return linked(
        "nl.wijkhub.care.ProvisionStopped",
        {
            "provision_id": provision_id,
            "provider": provider,
            "product_category": "02",
            "product_code": "",
            "stopped_on": dt.date(2026, 6, 1),
            "reason_code": reason,
            "definitive": reason != "20",
        },
        person="P-1",
        domain=domain,
        **kw,
    )


def closed(team, case_id, **kw):
    return linked(
        "nl.wijkhub.teams.CaseClosed",
        {"case_id": case_id, "team": team, "closed_on": dt.date(2026, 6, 1), "outcome": ""},
        person="P-1",
        domain="teams",
        **kw,
    )


def consent(given, on, purpose="wmo-regie", domain="youth", **kw):
    return linked(
        "nl.wijkhub.teams.ConsentChanged",
        {"purpose": purpose, "domain": domain, "given": given, "on": on},
        person="P-1",
        domain="teams",
        **kw,
    )


def shipped_rules():
    """The rules of the shipped streams/rules.yaml, validated as a worker would."""
    from wijkhub.streams import ruleset

    return ruleset.load().rules


def benefit(change, day, **kw):
    return linked(
        "nl.wijkhub.income.BenefitChanged",
        {
            "benefit_id": f"b-{change}-{day}",
            "benefit_type": "bijstand",
            "change": change,
            "on": dt.date(2026, 1, 1) + dt.timedelta(days=day),
            "reason": "",
        },
        person="P-1",
        domain="income",
        **kw,
    )


class Acknowledged:
    """A send Kafka acknowledged (the shape of kafka-python's FutureRecordMetadata)."""

    def failed(self) -> bool:
        return False

    def succeeded(self) -> bool:
        return True


class Unacknowledged(Acknowledged):
    """A send that timed out: the broker did not answer (retriable)."""

    def failed(self) -> bool:
        return True

    def succeeded(self) -> bool:
        return False

    def retriable(self) -> bool:
        return True


@dataclass
class FakeKafka:
    """What an :class:`~wijkhub.connectors.intake.Intake` sent, per record, without a broker."""

    sent: list[dict] = field(default_factory=list)
    flushes: int = 0  # each is one wait for Kafka's acknowledgements
    away: bool = False  # the broker does not answer: no send succeeds (retriable)

    def send(self, topic: str, key=None, value=None, headers=None) -> Acknowledged:
        self.sent.append({"topic": topic, "key": key, "value": value,
                          "headers": dict(headers or [])})  # fmt: skip
        return Unacknowledged() if self.away else Acknowledged()

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass

    @property
    def topics(self) -> list[str]:
        return [r["topic"] for r in self.sent]


# --- integration tier: what the tests put in ---------------------------------------------

OPERATOR_TOKEN = secrets.token_urlsafe(32)
TEAM_A, TEAM_B = "wijkteam-centrum", "wijkteam-noord"
_PASSWORDS = {name: secrets.token_urlsafe(16) for name in ("anna", "bram", "carla")}
EXAMPLE_BSNS = {"999900006", "123456789"}  # in the iJw and DDAS examples


def inbox_password(account: str) -> str:
    """The session's password of one inbox account (fresh each run, never in the repository)."""
    return _PASSWORDS[account]


@dataclass
class SourceRecords:
    """Source records as the intake receives them, with message ids unique in the session.

    Every BSN :meth:`person` hands out is kept in :attr:`bsns_used`: the privacy
    scan and the delivery test search what the hub produced for exactly these.
    """

    rng: random.Random = field(default_factory=lambda: random.Random(7))
    bsns_used: set[str] = field(default_factory=set)
    _messages: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def person(self, postcode: str, number: str) -> dict:
        bsn = make_bsn(self.rng)
        self.bsns_used.add(bsn)
        return {
            "kind": "person_registered",
            "message_id": f"brp-{next(self._messages)}",
            "occurred_at": "2025-01-01",
            "bsn": bsn,
            "postcode": postcode,
            "huisnummer": number,
        }

    def arrears(self, postcode: str, number: str, creditor: str, day: str) -> dict:
        return {
            "kind": "arrears_signal",
            "message_id": f"vs-{next(self._messages)}",
            "signal_id": f"S-{next(self._messages)}",
            "creditor_type": creditor,
            "amount_cents": 45_000,
            "arrears_months": 2,
            "occurred_at": day,
            "postcode": postcode,
            "huisnummer": number,
        }

    def case(self, bsn: str, team: str) -> dict:
        return {
            "kind": "case_opened",
            "message_id": f"case-{next(self._messages)}",
            "case_id": f"C-{next(self._messages)}",
            "team": team,
            "case_type": "schuldhulp",
            "occurred_at": "2026-04-01",
            "bsn": bsn,
            "contact": "06-00000000",
        }


@pytest.fixture(scope="session")
def plant() -> SourceRecords:
    """One builder for the whole session: the BSNs it handed out are the privacy scan's list."""
    return SourceRecords()


# The id key of every test: the integration session's worker runs with it, so a test can
# name the household_ref the hub publishes for an address (nobody without the key can).
TEST_ID_KEY = b"wijkhub-test-id-key-0123456789abcdef"
IDS = Ids(TEST_ID_KEY)


def household(postcode: str, number: str) -> str:
    """The household_ref the hub publishes for the main household at this address."""
    return IDS.household(household_for_address(address_ref(postcode, number)))


def sample_bsns() -> set[str]:
    """Every valid BSN in the samples, for the privacy scan."""
    found: set[str] = set()
    for name in SAMPLE_EXPECTED:
        text = (SAMPLES / name).read_text()
        found |= {n for n in re.findall(r"(?<!\d)\d{9}(?!\d)", text) if bsn_is_valid(n)}
    return found


# --- integration tier: what the tests read back ------------------------------------------


def as_admin(settings: Settings) -> dict[str, Any]:
    """Client arguments for the tests' own reads and writes: the cluster administrator (the
    services themselves run as their own principals, with only their ACLs)."""
    return connect(settings, ADMIN).kafka_python()


def wait_for_alerts(hub: Hub, refs: set[str], count: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = hub.alerts(refs)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def series(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of one metric in a /metrics page."""
    found = []
    for labels, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        found.append((dict(re.findall(r'(\w+)="([^"]*)"', labels)), float(value)))
    return found


class Hub:
    """What a test does with the running hub: ingest, wait, read topics."""

    def __init__(self, settings: Settings, worker: WorkerProcess) -> None:
        self.settings = settings
        self.worker = worker

    def ingest(self, source: str, records: list[dict] | list[bytes]) -> IntakeReport:
        lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
        intake = Intake(self.settings, source)
        try:
            return intake.ingest(b"\n".join(lines), f"test-{source}")
        finally:
            intake.close()

    def topic(self, name: str) -> str:
        return full_name(name, self.settings.topic_prefix)

    def records(self, name: str) -> list:
        """Every record on one of the hub's topics (name as in streams/topics.py)."""
        return self.records_of(self.topic(name))

    def records_of(self, topic: str) -> list:
        """Every record on a topic, from the beginning to the current end."""
        consumer = KafkaConsumer(**as_admin(self.settings), enable_auto_commit=False)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            out: list = []
            while any(consumer.position(tp) < end[tp] for tp in tps):
                for batch in consumer.poll(timeout_ms=500).values():
                    out.extend(batch)
            return out
        finally:
            consumer.close()

    def lag(self) -> int:
        """Records on the worker's input topics that its group has not committed yet."""
        admin = KafkaAdminClient(**as_admin(self.settings))
        consumer = KafkaConsumer(**as_admin(self.settings))
        try:
            return sum(group_lag(consumer, admin, self.settings).values())
        finally:
            admin.close()
            consumer.close()

    def wait_drained(self, timeout: float = 60.0) -> None:
        """Until the worker has committed every record of every topic it consumes."""
        deadline = time.monotonic() + timeout
        while (lag := self.lag()) > 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker still has {lag} records to process after {timeout}s")
            time.sleep(0.5)

    def linked(self) -> dict[str, list[dict]]:
        """event_id → where the event is linked now: household, method, member change.

        A correction withdraws an event from one household (a record with a higher
        generation) and links it to another: only the placements still standing count.
        """
        catalog = Catalog()
        latest: dict[tuple[str, str], dict] = {}
        for record in self.records(LINKED):
            linked = catalog.decode(record.value, LINKED_EVENT)
            if linked["linked_by"] == "register":
                continue  # a household's membership periods, not an event
            at = (linked["event_id"], linked["household_ref"])
            if at not in latest or latest[at]["generation"] < linked["generation"]:
                latest[at] = linked
        found: dict[str, list[dict]] = {}
        for (event_id, _), linked in sorted(latest.items()):
            if not linked["withdrawn"]:
                found.setdefault(event_id, []).append(
                    {k: linked[k] for k in ("household_ref", "linked_by", "member_change")}
                )
        return found

    def view(self, household_ref: str) -> dict | None:
        """The latest household view of one household on the compacted topic."""
        catalog = Catalog()
        latest = None
        for record in self.records(HOUSEHOLD_VIEW_TOPIC):
            if record.key == household_ref.encode():  # a tombstone: no view any more
                latest = (
                    None if record.value is None else catalog.decode(record.value, HOUSEHOLD_VIEW)
                )
        return latest

    def alerts(self, household_refs: set[str] | None = None) -> list[dict]:
        found = [
            a
            for a in iter_alerts(self.settings, follow=False)
            if household_refs is None or a["household_ref"] in household_refs
        ]
        return found


# -- poison input: what every intake path must turn into dead letters, not crashes --------

DEPTH = 100_000
SIGNAL = {"kind": "arrears_signal", "message_id": "m-1", "signal_id": "S-1",
          "creditor_type": "Huur", "occurred_at": "2026-05-01", "bsn": "111222333"}  # fmt: skip
BOM = b"\xef\xbb\xbf"


def with_amount(literal: str) -> bytes:
    """A valid signal whose amount is a raw JSON literal (Python's json reads NaN, 1e999)."""
    return json.dumps(SIGNAL)[:-1].encode() + b', "amount": ' + literal.encode() + b"}"


POISON: dict[str, bytes] = {
    "array nested 100k deep": b"[" * DEPTH + b"]" * DEPTH,
    "object nested 100k deep": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "integer of 5,000 digits": b'{"kind": "arrears_signal", "amount": ' + b"9" * 5000 + b"}",
    "amount 1e999": with_amount("1e999"),
    "amount NaN": with_amount("NaN"),
    "amount -Infinity": with_amount("-Infinity"),
    "months of 4,000 digits": json.dumps({**SIGNAL, "amount": "1"})[:-1].encode()
    + b', "arrears_months": '
    + b"9" * 4000
    + b"}",
    "invalid UTF-8 in JSON": b'{"kind": "arrears_signal", "bsn": "\xff\xfe"}',
    "invalid UTF-8 in CSV": b"ID;bedrag\nX;\xff\xfe\n",
    "lone surrogate": json.dumps({**SIGNAL, "amount": "1", "message_id": "\ud800"}).encode(),
    "BOM then nesting": BOM + b"[" * DEPTH,
    "amount 1e999 in CSV": b"ID;bedrag;signaaldatum;signaalpartner.type;Burgerservicenummer\n"
    b"X;1e999;2026-05-01;Huur;111222333\n",
}


def offline_worker_settings(folder: Path) -> Settings:
    """A worker's settings as on a secured cluster (a CA, its password file, action keys)
    pointing at no broker: for what a worker does before it touches Kafka."""
    credentials = folder / "credentials"
    credentials.mkdir(parents=True, exist_ok=True)
    (credentials / "worker.password").write_text("s" * 32)
    return Settings(
        data_dir=folder,
        bootstrap_servers="127.0.0.1:1",
        kafka_credentials_dir=str(credentials),
        kafka_ca_file=str(pki.ensure(folder / "pki").ca_file),
        action_keys="k1=" + "a" * 32,
        dead_letter_key=b"d" * 32,
        id_key=TEST_ID_KEY,
    )


_READER = Catalog()


def readable(data: bytes | None) -> str:
    """A record's bytes as anyone holding them could read them: Avro records decoded (by
    the schema id on the wire, raw events inside them too), dates as ISO text; any other
    bytes as text. For the privacy scans: a name or a date of birth in an Avro record is
    not ASCII in the bytes, and must still be found."""
    if not data:
        return ""
    if data[:1] == b"\x00" and len(data) > 5:
        try:
            version = _READER.version(int.from_bytes(data[1:5], "big"))
            return json.dumps(_plain_text(_READER.decode(data, version.subject)))
        except Exception:  # not a record after all: read as text below
            pass
    text = data.decode("utf-8", errors="replace")
    if text[:1] in "{[":  # a stage's state (JSON): raw events inside it are packed (base64)
        try:
            return text + " " + " ".join(_unpacked(json.loads(text)))
        except ValueError:
            pass
    return text


def _unpacked(value) -> list[str]:
    """Every base64 string in a JSON state that holds an Avro record, read as text."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _unpacked(v)]
    if isinstance(value, list):
        return [t for v in value for t in _unpacked(v)]
    if isinstance(value, str) and len(value) > 8:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            return []
        return [readable(raw)] if raw[:1] == b"\x00" else []
    return []


def _plain_text(value):
    if isinstance(value, dict):
        return {k: _plain_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_text(v) for v in value]
    if isinstance(value, bytes):
        return readable(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


# --- browser tier: the inbox in a real (Debian) Chromium ----------------------------------

SCREENSHOTS = Path(".wijkhub/screenshots")


def chromium() -> webdriver.Chrome:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("Debian's chromium and chromium-driver are needed: `.ci/run` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.fixture
def browser():
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def list_until(driver, base: str, alert_id: str, timeout: float = 30.0) -> None:
    """Reload the list until the alert shows up (the inbox follows the alerts topic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        driver.get(f"{base}/meldingen")
        if driver.find_elements(By.CSS_SELECTOR, f'a[href="/meldingen/{alert_id}"]'):
            return
        time.sleep(0.5)
    raise AssertionError(f"alert {alert_id} not in the inbox list after {timeout}s")


def press(driver, label: str) -> None:
    """Press a button and wait for the page the inbox answers with (applied, or pending)."""
    submit(driver, f'//button[normalize-space()="{label}"]', By.XPATH)


def submit(driver, locator: str, by: str = By.CSS_SELECTOR) -> None:
    """Click and wait until the answer page has loaded. A marker on the old document is gone
    then. (Chrome's staleness check, and reading an element while the document is replaced,
    can fail with "Node ... does not belong to the document": the test relies on neither.)"""
    driver.execute_script("window.wijkhubBefore = true;")
    driver.find_element(by, locator).click()
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return window.wijkhubBefore !== true;")
    )
    WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".done")))


def shown(driver, css: str, text: str, timeout: float = 30.0) -> str:
    """The element's text once it holds ``text``: the inbox may answer before the worker
    applied the action ("wordt verwerkt"), so the page is refreshed until then."""
    deadline = time.monotonic() + timeout
    while True:
        found = driver.find_element(By.CSS_SELECTOR, css).text
        if text in found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
        driver.refresh()


def audit_entries(hub) -> list[dict]:
    catalog = Catalog()
    return [catalog.decode(r.value, AUDIT_ENTRY) for r in hub.records(AUDIT)]


WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_source() -> str:
    """axe-core as `make install` put it in the cache (by the hash of tests/a11y/package.json,
    as the Makefile computes it); never a copy in the repository."""
    manifest = Path(__file__).parent / "a11y" / "package.json"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    script = cache / "wijkhub" / f"axe-{digest}" / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        pytest.fail(f"axe-core is not installed at {script}: run `make install`")
    return script.read_text()


def assert_accessible(driver) -> None:
    """axe-core on the page as it is now: zero WCAG 2.1 A and AA violations."""
    driver.execute_script(axe_source())
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.map(n => n.target)])))"
        ".catch(e => done([['axe failed', String(e), []]]));",
        WCAG_21_AA,
    )
    assert found == [], (driver.current_url, found)
