"""Erasure, subject access and the audit chain on the real broker, with the worker as a process.

A household of three under its own topic prefix, with compaction settings short enough
that the broker's log cleaner runs within the test (``max.compaction.lag.ms`` 5 s,
``delete.retention.ms`` 1 s). The father is erased with ``wijkhub erase --bsn``. Then
every topic of the run (compacted after the cleaner ran), every RocksDB store of the
worker (after ``wijkhub state compact``) and the file drop are searched for his
pseudonym, his name and his date of birth:

- compacted topics, changelogs, stores, files: nothing, except the person stage's
  suppression marker under his key, which holds no fact;
- delete-policy topics (the raw topics, the linking repartitions, the erasure requests):
  only on those, which drop him with their retention; the test asserts that their
  retention on the broker is the data class's, so the bound in docs/privacy/erasure.md
  holds.

The mother's alert and the household view stay, without him.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaProducer

from wijkhub import audit
from wijkhub.admin import admin_client, configs_of, prepare
from wijkhub.broker import free_port
from wijkhub.connectors.alerts import latest_alerts
from wijkhub.connectors.identity import Pseudonymiser
from wijkhub.localstate import entries, stores
from wijkhub.rights import audit_entries
from wijkhub.schemas.registry import AUDIT_ENTRY, Catalog
from wijkhub.settings import Settings
from wijkhub.streams.ids import Ids
from wijkhub.streams.topics import AUDIT, cluster_topics
from wijkhub.supervise import WorkerProcess
from wijkhub.testing import household_of_three

from builders import Hub, as_admin, readable

pytestmark = pytest.mark.timeout(600)
CLEANER_WAIT = 120  # s: the cleaner's backoff (15 s) and a pass over every partition


def cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.to_env(), "WIJKHUB_CLI_ACTOR": "fg-anna"}
    return subprocess.run([sys.executable, "-m", "wijkhub", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def run(hub_settings: Settings, tmp_path_factory):
    """Its own prefix, app id and worker; the household ingested, its three alerts raised."""
    tag = uuid.uuid4().hex[:6]
    settings = hub_settings.with_(app_id=f"wijkhub-erase-{tag}", topic_prefix=f"erase-{tag}.",
                                  data_dir=tmp_path_factory.mktemp("erase"),
                                  web_port=free_port(), compaction_max_lag_seconds=5,
                                  tombstone_retention_seconds=1)  # fmt: skip
    prepare(settings)
    worker = WorkerProcess(settings, settings.data_dir / "worker.log").start()
    hub = Hub(settings, worker)
    scenario, father = household_of_three()
    for source, records in scenario.by_source().items():
        hub.ingest(source, records)
    hub.wait_drained()
    deadline = time.monotonic() + 60
    while len(latest_alerts(settings)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        yield settings, worker, hub, father
    finally:
        worker.stop()


def test_erasure_leaves_no_trace_and_the_others_intact(run, tmp_path):
    settings, worker, hub, father = run
    person = Pseudonymiser(settings.pseudonym_key).person_ref(father.bsn)
    before = {a["rule_id"]: a for a in latest_alerts(settings)}
    assert sorted(before) == ["DH-TWO-HOLDERS-SAME-HELP", "VS-ARREARS-2-CREDITORS-90D",
                              "VS-ARREARS-3-MONTHS-ONE-CREDITOR"]  # fmt: skip
    drop = tmp_path / "drop"
    for folder, name, text in (("processed", "brp.csv", f"{father.bsn};Dekker"),
                               ("processed", "other.csv", "999999990;Smit")):  # fmt: skip
        (drop / "brp" / folder).mkdir(parents=True, exist_ok=True)
        (drop / "brp" / folder / name).write_text(text)

    asked_at = time.monotonic()
    done = cli(settings, "erase", "--bsn", "--role", "fg", "--case", "AVG-2026-0042",
               "--drop-root", str(drop),
               stdin=father.bsn + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout[done.stdout.index("{") :])
    assert answer["marker"] == Ids(settings.id_key).erased(person)
    assert answer["files_purged"] == 1 and not (drop / "brp/processed/brp.csv").exists()
    assert father.bsn not in done.stdout + done.stderr

    hub.wait_drained()
    deadline = time.monotonic() + 60
    while len(after := latest_alerts(settings)) != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    [kept] = after
    applied_in = time.monotonic() - asked_at
    assert kept["alert_id"] == before["VS-ARREARS-2-CREDITORS-90D"]["alert_id"]
    [view] = [hub.view(kept["household_ref"])]
    assert view is not None and person not in view["members"] and len(view["members"]) == 2

    asked = cli(settings, "subject-access", "--person-ref", person, "--case", "AVG-15-8")
    assert asked.returncode == 0, asked.stderr
    nothing = json.loads(asked.stdout)
    assert (nothing["facts"], nothing["households"], nothing["alerts"]) == ({}, [], [])

    # The audit has the erasure under the marker, never the pseudonym; the chains are whole.
    trail = audit_entries(settings)
    [erasure] = [e for e in trail if e["action"] == "person.erase"]
    assert (erasure["actor"], erasure["resource"], erasure["reason"]) == (
        "fg:fg-anna", answer["marker"], "case: AVG-2026-0042")  # fmt: skip
    assert audit.verify(trail).intact

    # Let the log cleaner compact every compacted topic: its active segment rolls on the next
    # write after max.compaction.lag.ms; `topics roll` (a daily job) writes one.
    time.sleep(settings.compaction_max_lag_seconds + 1)
    worker.stop()
    topics = cluster_topics(settings)
    rolled = cli(settings, "topics", "roll")
    assert rolled.returncode == 0, rolled.stderr
    needles = (
        person,
        father.family_name,
        father.birth_date,
        father.family_name.lower(),
        father.birth_date.replace("-", ""),
    )  # as given, and as the matcher keeps them
    deadline = time.monotonic() + CLEANER_WAIT
    while (found := traces(hub, topics, needles, person)) and time.monotonic() < deadline:
        time.sleep(5)
    print(
        f"erasure applied {applied_in:.1f} s after the command; compacted topics clean "
        f"{time.monotonic() - asked_at:.1f} s after it (max.compaction.lag.ms 5 s)"
    )
    compacted = {t for t in found if topics[t].data_class.compacted}
    assert compacted == set(), f"{sorted(compacted)} still hold the erased person"
    bounded = retention_of(settings, sorted(found))
    for name in found:  # delete-policy topics only: dropped with their class's term
        assert bounded[name] == str(settings.retention(topics[name].data_class) * 86_400_000)
    print("erased person still readable (until their retention) on:", sorted(found))

    # The worker's stores, compacted with the worker stopped.
    assert cli(settings, "state", "compact").returncode == 0
    paths = stores(settings.data_dir)
    assert paths
    for path in paths:
        for key, value in entries(path):
            if key == person.encode() and path.name.startswith("person-state"):
                marker = json.loads(value)["state"]
                assert not any(marker[k] for k in ("registrations", "endings", "snapshots",
                                                   "events"))  # fmt: skip
                continue
            seen = readable(key) + readable(value)  # packed raw events decoded too
            assert not any(n in seen for n in needles), path.name
    assert not any(father.bsn.encode() in p.read_bytes() for p in drop.rglob("*") if p.is_file())


def traces(hub: Hub, topics: dict, needles: tuple[str, ...], person: str) -> set[str]:
    """The topics on which a record still holds one of the needles, read as text (Avro
    decoded, raw events within records decoded too). The person stage's marker (its
    changelog's latest record under the person's key) does not count."""
    found = set()
    for name in topics:
        records = hub.records_of(name)
        last = {}
        for r in records:
            last[r.key] = r
        for r in records:
            if "person-state" in name and r.key == person.encode() and last[r.key] is r:
                continue
            text = readable(r.key) + readable(r.value)
            if any(n in text for n in needles):
                found.add(name)
                break
    return found


def retention_of(settings: Settings, names: list[str]) -> dict[str, str | None]:
    admin = admin_client(settings)
    try:
        return {name: c["retention.ms"] for name, c in configs_of(admin, names).items()}
    finally:
        admin.close()


def test_subject_access_exports_what_the_hub_holds_on_the_mother(run):
    settings = run[0]
    scenario, _ = household_of_three()
    mother = next(r for s, r in scenario.records if r["kind"] == "person_registered")
    person = Pseudonymiser(settings.pseudonym_key).person_ref(mother["bsn"])
    done = cli(settings, "subject-access", "--person-ref", person, "--case", "AVG-15-7")
    assert done.returncode == 0, done.stderr
    export = json.loads(done.stdout)
    [home] = export["households"]
    assert home["member_periods"][0]["from"] == "2023-06-01"
    debts = export["facts"]["debt"]
    assert sorted(s["category"] for s in debts) == ["Energie", "Huur"]
    [alert] = export["alerts"]
    assert alert["rule_id"] == "VS-ARREARS-2-CREDITORS-90D" and "Wgs" in alert["legal_basis"]
    trail = audit_entries(settings)
    assert any(e["action"] == "person.subject-access" and e["reason"] == "case: AVG-15-7"
               for e in trail)  # fmt: skip


def test_audit_verify_finds_an_edited_entry(run):
    settings, _, _, _ = run
    ok = cli(settings, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    catalog = Catalog()
    [first] = [e for e in audit_entries(settings) if e["seq"] == 1][:1]
    forged = {**first, "actor": "someone-else"}  # the same place in the chain, other content
    producer = KafkaProducer(**as_admin(settings), acks="all")  # only the admin may write so
    producer.send(f"{settings.topic_prefix}{AUDIT}", catalog.encode(AUDIT_ENTRY, forged),
                  key=first["writer"].encode()).get(timeout=30)  # fmt: skip
    producer.close()
    tampered = cli(settings, "audit", "verify")
    assert tampered.returncode == 1
    assert f"conflict: writer {first['writer']} entry 1" in tampered.stdout
