"""The data subject's rights and the operator's audited reads: ``wijkhub erase``,
``wijkhub subject-access``, and the audit entry of every CLI read of personal data.

A BSN given to a command is pseudonymised at once (:class:`connectors.identity.
Pseudonymiser`, the connectors' own key) and never written anywhere in clear. The
audit entry of an erasure names the person by their *erased marker*
(:meth:`streams.ids.Ids.erased`), never by their pseudonym: the audit topic outlives
the erasure, and the FG, holding the id key, can still show that this person was erased.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from wijkhub import audit
from wijkhub.connectors.alerts import latest_alerts
from wijkhub.connectors.identity import Pseudonymiser, bsn_is_valid
from wijkhub.erasure import purge_files, request
from wijkhub.kafka import connect
from wijkhub.schemas.registry import AUDIT_ENTRY, ERASURE, HOUSEHOLD_VIEW, Catalog, DecodeError
from wijkhub.settings import Settings, SettingsError
from wijkhub.streams import ruleset
from wijkhub.streams.access import OPERATOR
from wijkhub.streams.household_stage import plain
from wijkhub.streams.ids import Ids
from wijkhub.streams.topics import AUDIT, ERASURES, full_name
from wijkhub.streams.topics import HOUSEHOLD_VIEW as VIEW_TOPIC


class RightsError(RuntimeError):
    """A request that cannot be carried out as given (one line for the operator)."""


def actor(settings: Settings, role: str = "operator") -> str:
    """Who runs the command, as the audit names them: role and account."""
    return f"{role}:{settings.cli_actor or getpass.getuser()}"


def person_of(settings: Settings, bsn: str | None, person_ref: str | None) -> str:
    """The person_ref of a BSN (pseudonymised here; checked by the elfproef) or as given."""
    if (bsn is None) == (person_ref is None):
        raise RightsError("give the person's BSN or their person_ref (one of the two)")
    if person_ref is not None:
        if not person_ref.startswith("P"):
            raise RightsError("a person_ref looks like P1-…")
        return person_ref
    assert bsn is not None
    if not bsn_is_valid(bsn.strip()):
        raise RightsError("that is not a valid BSN (elfproef)")
    if not settings.pseudonym_key:
        raise RightsError("WIJKHUB_PSEUDONYM_KEY is needed to pseudonymise the BSN")
    return Pseudonymiser(settings.pseudonym_key).person_ref(bsn.strip())


def _producer(settings: Settings) -> KafkaProducer:
    try:
        return KafkaProducer(**connect(settings, OPERATOR).kafka_python(), acks="all", retries=5)
    except KafkaError as exc:
        raise RightsError(
            f"no Kafka broker answers at {settings.bootstrap_servers}: {exc}"
        ) from exc


def record_audit(
    settings: Settings, who: str, action: str, resource: str, allowed: bool, reason: str
) -> None:
    """One audit entry of this CLI run, acknowledged before the command goes on."""
    _send_audit(settings, [(who, action, resource, allowed, reason)])


def _send_audit(settings: Settings, entries: list[tuple[str, str, str, bool, str]]) -> None:
    chain = audit.Chain("operator-cli")
    catalog = Catalog()
    producer = _producer(settings)
    try:
        for who, action, resource, allowed, reason in entries:
            key, record = chain.link(audit.entry(who, action, resource, allowed, reason, "cli"))
            producer.send(full_name(AUDIT, settings.topic_prefix),
                          catalog.encode(AUDIT_ENTRY, record), key=key).get(timeout=30)  # fmt: skip
    except KafkaError as exc:
        raise RightsError(f"the audit entry could not be written, nothing was read: {exc}") from exc
    finally:
        producer.close()


def erase(
    settings: Settings,
    person_ref: str,
    case_ref: str,
    who: str,
    bsn: str | None = None,
    drop_root: Path | None = None,
) -> dict[str, Any]:
    """Audit, then send the erasure request, then purge the file drop (with a BSN)."""
    if not case_ref.strip():
        raise RightsError("give the request's case reference (--case)")
    marker = Ids(settings.id_key).erased(person_ref)
    record_audit(settings, who, "person.erase", marker, True, f"case: {case_ref}")
    erasure = request(person_ref, who, case_ref)
    producer = _producer(settings)
    try:
        producer.send(full_name(ERASURES, settings.topic_prefix),
                      Catalog().encode(ERASURE, erasure), key=person_ref.encode()
                      ).get(timeout=30)  # fmt: skip
    except KafkaError as exc:
        raise RightsError(f"the erasure request could not be sent: {exc}") from exc
    finally:
        producer.close()
    purged = purge_files(drop_root, bsn) if bsn and drop_root else None
    return {
        "erasure_id": erasure["erasure_id"],
        "marker": marker,
        "erased_before": erasure["erased_before"].isoformat(),
        "files_purged": len(purged.files) if purged else None,
    }


def _read_all(settings: Settings, topic: str) -> Iterator[Any]:
    try:
        consumer = KafkaConsumer(**connect(settings, OPERATOR).kafka_python(),
                                 enable_auto_commit=False,
                                 client_id=f"{settings.app_id}-rights-reader")  # fmt: skip
    except KafkaError as exc:
        raise RightsError(
            f"no Kafka broker answers at {settings.bootstrap_servers}: {exc}"
        ) from exc
    try:
        name = full_name(topic, settings.topic_prefix)
        partitions = consumer.partitions_for_topic(name)
        if not partitions:
            raise RightsError(f"topic {name} does not exist: run `wijkhub topics create`")
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                yield from records
    finally:
        consumer.close()


def audit_entries(settings: Settings) -> list[dict[str, Any]]:
    """Every audit entry; one that cannot be read is kept as a finding for ``verify``."""
    catalog = Catalog()
    found = []
    for r in _read_all(settings, AUDIT):
        try:
            found.append(catalog.decode(r.value, AUDIT_ENTRY))
        except DecodeError:
            found.append({"writer": f"unreadable:{r.partition}/{r.offset}", "seq": -1})
    return found


def subject_access(settings: Settings, person_ref: str, case_ref: str, who: str) -> dict[str, Any]:
    """Everything the hub holds on a person (AVG art. 15): facts per domain, households
    they were counted in, alerts concerning them with rule and legal basis, and who viewed
    those households and alerts. Audited before anything is read."""
    if not case_ref.strip():
        raise RightsError("give the request's case reference (--case)")
    marker = Ids(settings.id_key).erased(person_ref)
    record_audit(settings, who, "person.subject-access", marker, True, f"case: {case_ref}")
    catalog = Catalog()
    views: dict[str, dict[str, Any]] = {}
    for r in _read_all(settings, VIEW_TOPIC):
        if r.value is None:
            views.pop(r.key.decode(), None)
        else:
            views[r.key.decode()] = catalog.decode(r.value, HOUSEHOLD_VIEW)
    facts: dict[str, list[dict[str, Any]]] = {}
    households: list[dict[str, Any]] = []
    event_ids: set[str] = set()
    for ref, view in sorted(views.items()):
        periods = [p for p in view["member_periods"] if p["person_ref"] == person_ref]
        mine = [s for s in view["signals"] if s.get("person_ref") == person_ref]
        helped = [i for i in view["involvements"] if i.get("person_ref") == person_ref]
        consent = [c for c in view["consent"] if c["person_ref"] == person_ref]
        if not (periods or mine or helped or consent):
            continue
        households.append({"household_ref": ref, "address_ref": view["address_ref"],
                           "member_periods": plain(periods)})  # fmt: skip
        for s in mine:
            facts.setdefault(s["domain"], []).append(plain(s))
            event_ids.add(s["event_id"])
        for i in helped:
            facts.setdefault(i["domain"], []).append(plain(i))
        if consent:
            facts.setdefault("consent", []).extend(plain(consent))
    rules = {r.id: r for r in ruleset.load(settings.rules_file or None).rules}
    refs = {h["household_ref"] for h in households}
    alerts = [
        {"alert_id": a["alert_id"], "rule_id": a["rule_id"], "state": a["state"],
         "legal_basis": rules[a["rule_id"]].legal_basis if a["rule_id"] in rules else "",
         "raised_at": a["raised_at"].isoformat(), "team": a["team"]}
        for a in latest_alerts(settings)
        if a["household_ref"] in refs
        and any(f["event_id"] in event_ids for f in a["facts"])  # theirs, not the others'
    ]  # fmt: skip
    seen = refs | {a["alert_id"] for a in alerts}
    viewed = [
        {"at": e["at"].isoformat(), "actor": e["actor"], "action": e["action"],
         "resource": e["resource"], "allowed": e["allowed"]}
        for e in audit_entries(settings)
        if e["resource"] in seen
    ]  # fmt: skip
    return {"person_ref": person_ref, "exported_at": dt.datetime.now(dt.UTC).isoformat(),
            "facts": facts, "households": households, "alerts": alerts,
            "viewed": viewed}  # fmt: skip


def verify_audit(settings: Settings) -> audit.Report:
    try:
        return audit.verify(audit_entries(settings))
    except SettingsError as exc:
        raise RightsError(str(exc)) from exc
