"""From a source record (a flat dict, as any parser yields it) to a RawEvent.

This is the single validation-and-pseudonymisation step behind every intake
path: parsers of iJw/iWmo XML, CSV and JSON exports only turn bytes into these
flat records. The clear BSN goes in, a ``person_ref`` comes out.

Source record fields (strings unless stated):
``kind`` (one of :data:`KINDS`), ``message_id``, ``occurred_at`` (ISO date or
datetime), optional ``bsn``, ``postcode`` + ``huisnummer`` or ``bag_id``,
and the fields each kind needs (see :data:`KINDS`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from wijkhub.connectors.identity import InvalidInput, Pseudonymiser, address_ref
from wijkhub.streams.topics import Domain

EVENT_NAMESPACE = uuid.UUID("6d1f4a52-53c1-4b57-9c7e-1f6f1a0b7a11")
SCHEMA_VERSION = 1


def _date(record: dict[str, Any], name: str) -> dt.date:
    raw = record.get(name)
    if not raw:
        raise InvalidInput(f"field {name} is missing")
    try:
        return dt.date.fromisoformat(str(raw)[:10])
    except ValueError:
        raise InvalidInput(f"field {name} is not a valid date (YYYY-MM-DD)") from None


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None or str(value).strip() == "":
        raise InvalidInput(f"field {name} is missing")
    return str(value).strip()


def _int(record: dict[str, Any], name: str) -> int:
    try:
        return int(str(record.get(name)).strip())
    except ValueError:
        raise InvalidInput(f"field {name} is not a whole number") from None


def _choice(record: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = _text(record, name)
    if value not in allowed:
        raise InvalidInput(f"field {name} must be one of {', '.join(allowed)}")
    return value


# DDAS signaalpartner.type (exchange model v0.9).
CREDITOR_TYPES = (
    "Energie", "Huur", "Hypotheek", "CAK Zorgverzekeringen", "Zorg", "Water", "DUO",
    "Belastingdienst", "CAK Eigen bijdrage", "Dienst Toeslagen", "Overige",
)  # fmt: skip
CASE_TYPES = ("schuldhulp", "wmo", "jeugd", "participatie", "breed")


def _person_registered(r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "nl.wijkhub.population.PersonRegistered", {
        "registered_on": _date(r, "occurred_at"),
        "address_kind": r.get("address_kind") or "woonadres",
    }


def _arrears_signal(r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "nl.wijkhub.debt.ArrearsSignal", {
        "signal_id": _text(r, "signal_id"),
        "creditor_type": _choice(r, "creditor_type", CREDITOR_TYPES),
        "amount_cents": _int(r, "amount_cents"),
        "arrears_months": _int(r, "arrears_months"),
        "signal_date": _date(r, "occurred_at"),
        "crisis": str(r.get("crisis", "")).lower() in ("1", "true", "ja"),
    }


def _provision_started(r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "nl.wijkhub.care.ProvisionStarted", {
        "provision_id": _text(r, "provision_id"),
        "provider": _text(r, "provider"),
        "product_category": _text(r, "product_category"),
        "started_on": _date(r, "occurred_at"),
    }


def _benefit_ended(r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "nl.wijkhub.income.BenefitEnded", {
        "benefit_id": _text(r, "benefit_id"),
        "benefit_type": _text(r, "benefit_type"),
        "ended_on": _date(r, "occurred_at"),
        "reason": _text(r, "reason"),
    }


def _case_opened(r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "nl.wijkhub.teams.CaseOpened", {
        "case_id": _text(r, "case_id"),
        "team": _text(r, "team"),
        "case_type": _choice(r, "case_type", CASE_TYPES),
        "opened_on": _date(r, "occurred_at"),
        "contact": str(r.get("contact") or ""),
    }


# kind -> (domain, CloudEvents type, is a BSN required, payload builder)
KINDS: dict[str, tuple[Domain | None, str, bool, Callable]] = {
    "person_registered": (
        Domain.POPULATION,
        "nl.wijkhub.population.person-registered",
        True,
        _person_registered,
    ),
    "arrears_signal": (Domain.DEBT, "nl.wijkhub.debt.arrears-signal", False, _arrears_signal),
    # care or youth: the record's own "domain" field decides (iWmo vs iJw)
    "provision_started": (None, "nl.wijkhub.{domain}.provision-started", True, _provision_started),
    "benefit_ended": (Domain.INCOME, "nl.wijkhub.income.benefit-ended", True, _benefit_ended),
    "case_opened": (Domain.TEAMS, "nl.wijkhub.teams.case-opened", True, _case_opened),
}


def event_id(source: str, message_id: str) -> str:
    """Deterministic per source message: the same message replayed keeps its id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{source}\x1f{message_id}"))


def _occurred_at(record: dict[str, Any]) -> dt.datetime:
    raw = _text(record, "occurred_at")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("field occurred_at is not an ISO date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def to_raw_event(
    record: dict[str, Any],
    source: str,
    pseudonymiser: Pseudonymiser,
    municipality: str,
    received_at: dt.datetime,
) -> tuple[Domain, str, dict[str, Any]]:
    """Validate and pseudonymise one source record: (domain, partition key, RawEvent)."""
    kind = record.get("kind")
    if kind not in KINDS:
        raise InvalidInput(f"unknown kind; expected one of {', '.join(KINDS)}")
    domain, ce_type, bsn_required, build = KINDS[kind]
    if domain is None:
        domain = Domain(_choice(record, "domain", (Domain.CARE.value, Domain.YOUTH.value)))
        ce_type = ce_type.format(domain=domain.value)
    message_id = _text(record, "message_id")
    occurred = _occurred_at(record)
    bsn = str(record.get("bsn") or "").strip()
    if bsn_required and not bsn:
        raise InvalidInput("BSN is missing; this source must provide one")
    person_ref = pseudonymiser.person_ref(bsn) if bsn else None
    if record.get("bag_id") or record.get("postcode"):
        addr = address_ref(record.get("postcode"), record.get("huisnummer"), record.get("bag_id"))
    else:
        addr = None
    if person_ref is None and addr is None:
        raise InvalidInput("neither a BSN nor an address: the event cannot be linked")
    payload_name, payload = build(record)
    correlation = str(record.get("correlation_id") or message_id)
    eid = event_id(source, message_id)
    raw_event = {
        "envelope": {
            "event_id": eid,
            "source": f"urn:nld:gemeente:{municipality}:{source}",
            "source_message_id": message_id,
            "domain": domain.value,
            "type": ce_type,
            "occurred_at": occurred,
            "received_at": received_at,
            "municipality": municipality,
            "schema_version": SCHEMA_VERSION,
            "correlation_id": correlation,
        },
        "subject": {"person_ref": person_ref, "address_ref": addr},
        "payload": (payload_name, payload),
    }
    return domain, person_ref or addr or "", raw_event


def cloudevent_headers(raw_event: dict[str, Any]) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka binding (binary mode): attributes as ce_ headers."""
    env, subject = raw_event["envelope"], raw_event["subject"]
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", env["event_id"].encode()),
        ("ce_source", env["source"].encode()),
        ("ce_type", env["type"].encode()),
        ("ce_subject", (subject["person_ref"] or subject["address_ref"] or "").encode()),
        ("ce_time", env["occurred_at"].isoformat().encode()),
        ("ce_correlationid", env["correlation_id"].encode()),
        ("content-type", b"application/avro"),
    ]
