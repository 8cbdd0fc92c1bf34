"""Runs last: nothing the tests produced holds a clear BSN, on any topic or log line, and
names, dates of birth and addresses only where the topic definitions say they may be.

Every topic of this test session (the hub's, the tables' changelogs, the
external topic of the relay test) is read from the beginning and searched for
every BSN the tests used, as ASCII digits, in keys, values and headers; then every
record is read as anyone holding it could (Avro decoded, raw events within records too)
and searched for the names, dates of birth and postcodes the tests put in
(``TopicSpec.holds`` in streams/topics.py says which topic may hold which).
"""

from __future__ import annotations

import datetime as dt
import json
import re

from kafka import KafkaAdminClient

from wijkhub.streams.topics import ADDRESS, BIRTH_DATE, CONTACT, CONTACT_CARDS, NAME, cluster_topics

from builders import EXAMPLE_BSNS, as_admin, readable, sample_bsns

INTAKE_BSNS = {"111222333", "111222334"}


def test_no_clear_bsn_on_any_topic_or_log_line(hub, worker_log, plant):
    assert plant.bsns_used, "the pipeline tests must have run first"
    hub.wait_drained()
    admin = KafkaAdminClient(**as_admin(hub.settings))
    # Every topic of the hub; not the relay test's "external" topic, which stands for
    # another system's own data (it holds the source's clear BSN, as that system does).
    names = [
        t
        for t in admin.list_topics()
        if t.startswith((hub.settings.topic_prefix, hub.settings.app_id))
        and not t.startswith(hub.topic("external."))
    ]
    admin.close()
    assert any("changelog" in t for t in names), names  # the tables' topics are checked too
    # A BSN as a whole number: "123456789" inside the 12-digit iJw message id
    # "123456789012" is not a BSN.
    bsns = plant.bsns_used | EXAMPLE_BSNS | INTAKE_BSNS | sample_bsns()
    found = re.compile(rb"(?<![0-9])(?:" + b"|".join(b.encode() for b in bsns) + rb")(?![0-9])")
    scanned = 0
    for name in names:
        for record in hub.records_of(name):
            blob = (record.key or b"") + (record.value or b"")
            blob += b"".join(v for _, v in record.headers)
            assert not found.search(blob), f"clear BSN on topic {name}"
            scanned += 1
    assert scanned > 50
    data = hub.settings.data_dir
    logs = [worker_log, data / "intake.log", data / "inbox.log", data / "delivery.log"]
    assert all(p.exists() for p in logs)
    for path in logs:
        check_log(path.read_text(), found)


# Personal data the tests put in: surnames, dates of birth, postcodes (see test_linking,
# connectors/samples). None of it may reach a log line.
PERSONAL = re.compile(
    r"Jansen|de Vries|Bakker|\bDijk\b|Smit\b|Yilmaz|1984-02-29|1950-07-14|1979-03-12"
    r"|(?<![0-9A-Za-z])[1-9][0-9]{3} ?[A-Z]{2}(?![A-Za-z])"
    r"|06-2345 6789|yilmaz@voorbeeld"
)


def check_log(text: str, bsns: re.Pattern) -> None:
    """One JSON object per line, with the fields operators filter on, and nothing personal."""
    lines = text.splitlines()
    assert lines, "the process logged nothing"
    for line in lines:
        entry = json.loads(line)
        assert {"timestamp", "level", "logger", "message"} <= entry.keys(), entry
        assert entry["level"] in {"debug", "info", "warning", "error", "critical"}, entry
        dt.datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
        assert not bsns.search(line.encode()), line
        assert not PERSONAL.search(line), line


# The names, dates of birth and postcodes the tests put in, each kind on its own.
KINDS = {
    NAME: re.compile(r"Jansen|de Vries|Bakker|Yilmaz|\bDijk\b|\bSmit\b"),
    BIRTH_DATE: re.compile(r"1984-02-29|1950-07-14|1979-03-12|19840229|19500714|19790312"),
    ADDRESS: re.compile(r"(?<![0-9A-Za-z])1[0-9]{3} ?[A-Z]{2}(?![A-Za-z])"),
    # a person's telephone and e-mail (test_inbox's contact card), not a professional's
    CONTACT: re.compile(r"06-2345 6789|a\.yilmaz@voorbeeld\.nl"),
}


def test_names_dates_of_birth_and_addresses_only_where_documented(hub, plant):
    """A topic or changelog whose definition does not list a kind of personal data holds
    none of it, as anyone reading the records would see them."""
    assert plant.bsns_used, "the pipeline tests must have run first"
    hub.wait_drained()
    specs = cluster_topics(hub.settings)
    seen: dict[str, set[str]] = {}
    for name, spec in sorted(specs.items()):
        for record in hub.records_of(name):
            text = readable(record.key) + readable(record.value)
            text += "".join(readable(v) for _, v in record.headers)
            for kind, pattern in KINDS.items():
                if pattern.search(text):
                    seen.setdefault(name, set()).add(kind)
                    assert kind in spec.holds, f"{kind} on {name}: {pattern.search(text)[0]!r}"
    # the scan can fail: the documented places do hold them
    assert NAME in seen.get(hub.topic("raw.population"), set())
    assert ADDRESS in seen.get(hub.topic("household-view"), set())
    assert {NAME, ADDRESS, CONTACT} <= seen.get(hub.topic(CONTACT_CARDS), set())
