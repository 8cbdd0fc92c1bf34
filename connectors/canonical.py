"""From a source record (a flat dict, as every parser yields it) to a RawEvent.

This is the single validation-and-pseudonymisation step behind every intake
path and format: the iJw/iWmo XML, CSV and JSON parsers only turn bytes into
these flat records. The clear BSN goes in, a ``person_ref`` comes out.

Common fields (strings): ``kind`` (a key of :data:`KINDS`), ``message_id``
(unique per source message: the event id is derived from it, so a re-delivered
message is the same event), ``occurred_at`` (ISO date or date-time), ``bsn``,
``postcode`` + ``huisnummer`` (or ``bag_id`` when they are absent), and for signals without a usable
BSN the match attributes ``family_name``, ``prefix``, ``initials``,
``birth_date``. Each kind's own fields are read by its builder below.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from wijkhub.connectors.identity import (
    InvalidInput,
    Pseudonymiser,
    address_ref,
    bsn_is_valid,
    split_street,
)
from wijkhub.logs import mask_bsn_like
from wijkhub.streams.topics import Domain

SCHEMA_VERSION = 1
Record = dict[str, Any]

# DDAS signaalpartner.type (exchange model v0.9).
CREDITOR_TYPES = (
    "Energie",
    "Huur",
    "Hypotheek",
    "CAK Zorgverzekeringen",
    "Zorg",
    "Water",
    "DUO",
    "Belastingdienst",
    "CAK Eigen bijdrage",
    "Dienst Toeslagen",
    "Overige",
)
# Contact fields a vroegsignaal or BRP record may carry for the contact card (besides the
# name): DDAS client Straatnaam, Plaatsnaam; telephone and e-mail as the Besluit
# gemeentelijke schuldhulpverlening art. 3 lets a creditor deliver them.
CONTACT_FIELDS = ("street", "city", "telephone", "email")
CASE_TYPES = ("schuldhulp", "wmo", "jeugd", "participatie", "breed")
TEMPORARY_STOP = "20"  # RedenBeeindiging 20: temporary; every other code is definitive


def _date(record: Record, name: str) -> dt.date:
    raw = record.get(name)
    if not raw:
        raise InvalidInput(f"field {name} is missing")
    try:
        return dt.date.fromisoformat(str(raw)[:10])
    except ValueError:
        raise InvalidInput(f"field {name} is not a valid date (YYYY-MM-DD)") from None


def _optional_date(record: Record, name: str) -> dt.date | None:
    return _date(record, name) if record.get(name) else None


def _text(record: Record, name: str) -> str:
    value = record.get(name)
    if value is None or str(value).strip() == "":
        raise InvalidInput(f"field {name} is missing")
    return str(value).strip()


def _int(record: Record, name: str, default: int | None = None) -> int:
    value = record.get(name)
    if (value is None or str(value).strip() == "") and default is not None:
        return default
    try:
        number = int(str(value).strip())
    except ValueError:  # also a number of more than 4,300 digits
        raise InvalidInput(f"field {name} is not a whole number") from None
    if abs(number) >= 2**53:  # beyond any count or amount a source can mean
        raise InvalidInput(f"field {name} is out of range")
    return number


def _cents(record: Record, name: str) -> int:
    """Euros with an optional decimal comma or point, or whole cents in ``<name>_cents``."""
    if record.get(f"{name}_cents") not in (None, ""):
        return _int(record, f"{name}_cents")
    raw = str(record.get(name, "")).strip().replace(",", ".")
    try:
        euros = float(raw)
    except ValueError:
        raise InvalidInput(f"field {name} is not an amount in euros") from None
    if not math.isfinite(euros) or abs(euros) >= 1e15:  # 1e999, NaN: no amount at all
        raise InvalidInput(f"field {name} is not an amount in euros")
    return round(euros * 100)


def _choice(record: Record, name: str, allowed: tuple[str, ...]) -> str:
    value = _text(record, name)
    if value not in allowed:
        raise InvalidInput(f"field {name} must be one of {', '.join(allowed)}")
    return value


def _flag(record: Record, name: str) -> bool:
    return str(record.get(name, "")).strip().lower() in ("1", "true", "ja", "j", "yes")


def _text_or(record: Record, name: str, default: str = "") -> str:
    return str(record.get(name) or default).strip()


class Bsn(Enum):
    """What a source must do with a BSN."""

    REQUIRED = "required"  # mandatory and verified at the source: invalid → dead letter
    OPTIONAL = "optional"  # may be absent; if present it must be valid
    BEST_EFFORT = "best-effort"  # creditors: invalid → dropped with a data-quality flag


@dataclass(frozen=True)
class Kind:
    domain: Domain | None  # None: the record's "domain" field says care or youth
    ce_type: str
    bsn: Bsn
    build: Callable[[Record, Pseudonymiser], tuple[str, Record]]
    # A BRP registration carries name and date of birth to the link stage, so that
    # signals without a BSN can be matched to the people living at the address.
    registers: bool = False
    # It carries how to reach the person (subject.contact) for the responsible team's
    # contact card: a vroegsignaal (DDAS client) and a BRP registration (issue 17).
    contact: bool = False


def _person_registered(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.population.PersonRegistered", {
        "registered_on": _date(r, "occurred_at"),
        "address_kind": _choice(r, "address_kind", ("woonadres", "briefadres", "instelling"))
        if r.get("address_kind")
        else "woonadres",
        "change": "moved" if r.get("kind") == "person_moved" else "registered",
    }


def _person_deceased(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.population.PersonDeceased", {"died_on": _date(r, "occurred_at")}


def _person_departed(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.population.PersonDeparted", {
        "departed_on": _date(r, "occurred_at"),
        "destination": _text_or(r, "destination"),
    }


def _relation_changed(r: Record, p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.population.RelationChanged", {
        "related_person_ref": p.person_ref(_text(r, "related_bsn")),
        "relation": _choice(r, "relation", ("ouder", "kind", "partner")),
        "change": _choice(r, "change", ("started", "ended")),
        "on": _date(r, "occurred_at"),
    }


def _toewijzing_snapshot(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    assignments = r.get("assignments")
    if not isinstance(assignments, list):
        raise InvalidInput("field assignments must be a list")
    return "nl.wijkhub.care.ToewijzingSnapshot", {
        "provider": _text(r, "provider"),
        "snapshot_on": _date(r, "occurred_at"),
        "assignments": [
            {
                "number": _text(a, "number"),
                "product_category": _text(a, "product_category"),
                "product_code": _text_or(a, "product_code"),
                "assigned_on": _date(a, "assigned_on"),
                "start_on": _date(a, "start_on"),
                "end_on": _optional_date(a, "end_on"),
            }
            for a in assignments
        ],
    }


def _provision(r: Record) -> Record:
    return {
        "provision_id": _text(r, "provision_id"),
        "provider": _text(r, "provider"),
        "product_category": _text(r, "product_category"),
        "product_code": _text_or(r, "product_code"),
    }


def _provision_started(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.care.ProvisionStarted", {
        **_provision(r),
        "started_on": _date(r, "occurred_at"),
    }


def _provision_stopped(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    reason = _text(r, "reason_code")
    return "nl.wijkhub.care.ProvisionStopped", {
        **_provision(r),
        "stopped_on": _date(r, "occurred_at"),
        "reason_code": reason,
        "definitive": reason != TEMPORARY_STOP,
    }


def _provision_requested(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.care.ProvisionRequested", {
        "provider": _text(r, "provider"),
        "product_category": _text(r, "product_category"),
        "product_code": _text_or(r, "product_code"),
        "requested_start": _date(r, "requested_start"),
        "requested_end": _optional_date(r, "requested_end"),
    }


def _benefit_changed(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.income.BenefitChanged", {
        "benefit_id": _text(r, "benefit_id"),
        "benefit_type": _text(r, "benefit_type"),
        "change": _choice(r, "change", ("granted", "suspended", "ended", "sanction")),
        "on": _date(r, "occurred_at"),
        "reason": _text_or(r, "reason"),
    }


def _arrears_signal(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.debt.ArrearsSignal", {
        "signal_id": _text(r, "signal_id"),
        "creditor_type": _choice(r, "creditor_type", CREDITOR_TYPES),
        "amount_cents": _cents(r, "amount"),
        "arrears_months": _int(r, "arrears_months", default=0),
        "arrears_since": _optional_date(r, "arrears_since"),
        "signal_date": _date(r, "occurred_at"),
        "crisis": _flag(r, "crisis"),
        "warm_handover": _flag(r, "warm_handover"),
    }


def _debt_help_changed(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.debt.DebtHelpChanged", {
        "trajectory_id": _text(r, "trajectory_id"),
        "organisation": _text(r, "organisation"),
        "change": _choice(r, "change", ("intake", "started", "ended")),
        "on": _date(r, "occurred_at"),
        "contact": _text_or(r, "contact"),
    }


def _case_opened(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.teams.CaseOpened", {
        "case_id": _text(r, "case_id"),
        "team": _text(r, "team"),
        "case_type": _choice(r, "case_type", CASE_TYPES),
        "opened_on": _date(r, "occurred_at"),
        "contact": _text_or(r, "contact"),
    }


def _case_closed(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.teams.CaseClosed", {
        "case_id": _text(r, "case_id"),
        "team": _text(r, "team"),
        "closed_on": _date(r, "occurred_at"),
        "outcome": _text_or(r, "outcome"),
    }


def _coordinator_assigned(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.teams.CoordinatorAssigned", {
        "team": _text(r, "team"),
        "on": _date(r, "occurred_at"),
        "contact": _text_or(r, "contact"),
    }


def _consent_changed(r: Record, _p: Pseudonymiser) -> tuple[str, Record]:
    return "nl.wijkhub.teams.ConsentChanged", {
        "purpose": _text(r, "purpose"),
        "domain": _choice(r, "consent_domain", tuple(d.value for d in Domain)),
        "given": _choice(r, "consent", ("given", "withdrawn")) == "given",
        "on": _date(r, "occurred_at"),
    }


P, D = Domain.POPULATION, Domain.DEBT
KINDS: dict[str, Kind] = {
    "person_registered": Kind(
        P,
        "nl.wijkhub.population.person-registered",
        Bsn.REQUIRED,
        _person_registered,
        True,
        contact=True,
    ),
    "person_moved": Kind(
        P,
        "nl.wijkhub.population.person-moved",
        Bsn.REQUIRED,
        _person_registered,
        True,
        contact=True,
    ),
    "person_departed": Kind(
        P, "nl.wijkhub.population.person-departed", Bsn.REQUIRED, _person_departed
    ),
    "person_deceased": Kind(
        P, "nl.wijkhub.population.person-deceased", Bsn.REQUIRED, _person_deceased
    ),
    "relation_changed": Kind(
        P, "nl.wijkhub.population.relation-changed", Bsn.REQUIRED, _relation_changed
    ),
    "toewijzing_snapshot": Kind(
        None, "nl.wijkhub.{domain}.toewijzing-snapshot", Bsn.REQUIRED, _toewijzing_snapshot
    ),
    "provision_started": Kind(
        None, "nl.wijkhub.{domain}.provision-started", Bsn.REQUIRED, _provision_started
    ),
    "provision_stopped": Kind(
        None, "nl.wijkhub.{domain}.provision-stopped", Bsn.REQUIRED, _provision_stopped
    ),
    "provision_requested": Kind(
        None, "nl.wijkhub.{domain}.provision-requested", Bsn.REQUIRED, _provision_requested
    ),
    "benefit_changed": Kind(
        Domain.INCOME, "nl.wijkhub.income.benefit-changed", Bsn.REQUIRED, _benefit_changed
    ),
    "arrears_signal": Kind(
        D, "nl.wijkhub.debt.arrears-signal", Bsn.BEST_EFFORT, _arrears_signal, contact=True
    ),
    "debt_help_changed": Kind(
        D, "nl.wijkhub.debt.debt-help-changed", Bsn.REQUIRED, _debt_help_changed
    ),
    "case_opened": Kind(Domain.TEAMS, "nl.wijkhub.teams.case-opened", Bsn.REQUIRED, _case_opened),
    "case_closed": Kind(Domain.TEAMS, "nl.wijkhub.teams.case-closed", Bsn.REQUIRED, _case_closed),
    "coordinator_assigned": Kind(
        Domain.TEAMS, "nl.wijkhub.teams.coordinator-assigned", Bsn.REQUIRED, _coordinator_assigned
    ),
    "consent_changed": Kind(
        Domain.TEAMS, "nl.wijkhub.teams.consent-changed", Bsn.REQUIRED, _consent_changed
    ),
}


# Which kinds each intake source may emit: its token is its authority, and no further.
# An ``income`` token must not grant consent or make a team "involved", so a record of
# any other kind is dead-lettered ("kind-not-allowed"). One table, checked on every path.
_CARE = frozenset(
    {"toewijzing_snapshot", "provision_started", "provision_stopped", "provision_requested"}
)
SOURCE_KINDS: dict[str, frozenset[str]] = {
    "population": frozenset(
        {
            "person_registered",
            "person_moved",
            "person_departed",
            "person_deceased",
            "relation_changed",
        }
    ),
    "ijw": _CARE,
    "iwmo": _CARE,
    "income": frozenset({"benefit_changed"}),
    "vroegsignalering": frozenset({"arrears_signal"}),
    "schuldhulp": frozenset({"debt_help_changed"}),
    "teams": frozenset({"case_opened", "case_closed", "coordinator_assigned", "consent_changed"}),
}


# Which raw topics each source writes: its kinds' domains (the iStandaarden kinds name
# care or youth per record; iWmo is care, iJw youth). The ACLs give each source's intake
# principal exactly these topics (streams/access.py).
SOURCE_DOMAINS: dict[str, tuple[Domain, ...]] = {
    "population": (Domain.POPULATION,),
    "iwmo": (Domain.CARE,),
    "ijw": (Domain.YOUTH,),
    "income": (Domain.INCOME,),
    "vroegsignalering": (Domain.DEBT,),
    "schuldhulp": (Domain.DEBT,),
    "teams": (Domain.TEAMS,),
}


class Refused(InvalidInput):
    """Well-formed input that this source may not send: dead-lettered under its own code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def authorise_kind(source: str, kind: str) -> None:
    """Refuse a kind outside the source's authority (see :data:`SOURCE_KINDS`)."""
    if kind not in SOURCE_KINDS.get(source, frozenset()):
        raise Refused("kind-not-allowed", "kind not allowed for this source")


def refuse_future(
    occurred: dt.datetime, received_at: dt.datetime, tolerance: dt.timedelta | None
) -> None:
    """Refuse an event dated beyond ``received_at + tolerance``: a future consent could
    never be withdrawn, a future fact would steer windows and expiry. None: no check."""
    if tolerance is not None and occurred > received_at + tolerance:
        raise Refused("future-dated", "occurred_at is further in the future than allowed")


def event_id(pseudonymiser: Pseudonymiser, source: str, message_id: str) -> str:
    """Deterministic per source message: the same message replayed keeps its id. Keyed
    (an HMAC under the pseudonym key, in UUID form): a source may build its message ids
    from a BSN, and an event id travels on every topic and into alerts and webhooks."""
    digest = pseudonymiser.keyed(f"event:{source}\x1f{message_id}".encode())
    return str(uuid.UUID(bytes=digest[:16], version=5))


def _occurred_at(record: Record) -> dt.datetime:
    raw = _text(record, "occurred_at")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("field occurred_at is not an ISO date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _person(
    record: Record, policy: Bsn, pseudonymiser: Pseudonymiser
) -> tuple[str | None, list[str]]:
    """(person_ref, data-quality codes) under the source's BSN policy."""
    bsn = str(record.get("bsn") or "").strip()
    if not bsn:
        if policy is Bsn.REQUIRED:
            raise InvalidInput("BSN is missing; this source must provide one")
        return None, []
    if policy is Bsn.BEST_EFFORT and not bsn_is_valid(bsn):
        # A creditor's typo must not lose the signal: drop the BSN, link on name and address.
        return None, ["bsn-failed-elfproef"]
    return pseudonymiser.person_ref(bsn), []


def _match(record: Record) -> Record | None:
    if not record.get("family_name"):
        return None
    given = _text_or(record, "given_names").split()
    return {
        "family_name": _text(record, "family_name"),
        "prefix": _text_or(record, "prefix"),
        "initials": _text_or(record, "initials") or "".join(g[0] for g in given),
        "birth_date": _optional_date(record, "birth_date"),
    }


def _contact(record: Record) -> Record | None:
    """How to reach the person, as far as the source supplied it (None: nothing)."""
    name = " ".join(
        _text_or(record, f) for f in ("initials", "prefix", "family_name") if _text_or(record, f)
    )
    found = {"name": name, **{f: _text_or(record, f) for f in CONTACT_FIELDS}}
    # a BSN typed into a free-text field never travels on (the one masking rule)
    found = {k: mask_bsn_like(v) for k, v in found.items()}
    return found if any(found.values()) else None


def to_raw_event(
    record: Record,
    source: str,
    pseudonymiser: Pseudonymiser,
    municipality: str,
    received_at: dt.datetime,
    future_tolerance: dt.timedelta | None = None,
) -> tuple[Domain, str, Record]:
    """Validate and pseudonymise one source record: (domain, partition key, RawEvent).

    :class:`Refused` when the source may not send this kind, or (with a
    ``future_tolerance``) when the event is dated too far ahead of ``received_at``.
    """
    kind = KINDS.get(str(record.get("kind")))
    if kind is None:
        raise InvalidInput(f"unknown kind; expected one of {', '.join(KINDS)}")
    authorise_kind(source, str(record["kind"]))
    domain, ce_type = kind.domain, kind.ce_type
    if domain is None:
        domain = Domain(_choice(record, "domain", (Domain.CARE.value, Domain.YOUTH.value)))
        ce_type = ce_type.format(domain=domain.value)
    if domain not in SOURCE_DOMAINS.get(source, ()):
        raise Refused("domain-not-allowed", "domain not allowed for this source")
    message_id = _text(record, "message_id")
    occurred = _occurred_at(record)
    refuse_future(occurred, received_at, future_tolerance)
    person_ref, quality = _person(record, kind.bsn, pseudonymiser)
    house = record.get("huisnummer")
    if not house and record.get("address_line"):  # "Hoofdstr. 12-a"
        house = (split_street(str(record["address_line"])) or ("", None))[1]
    if record.get("bag_id") or record.get("postcode"):
        addr = address_ref(record.get("postcode"), house, record.get("bag_id"))
    else:
        addr = None
    if person_ref is None and addr is None:
        raise InvalidInput("neither a valid BSN nor an address: the event cannot be linked")
    payload_name, payload = kind.build(record, pseudonymiser)
    # A source may build its message ids from a BSN: the id decides the event id, but a
    # 9-digit number in it never travels on (the one masking rule, as for logs).
    correlation = mask_bsn_like(str(record.get("correlation_id") or message_id))
    raw_event = {
        "envelope": {
            "event_id": event_id(pseudonymiser, source, message_id),
            "source": f"urn:nld:gemeente:{municipality}:{source}",
            "source_message_id": mask_bsn_like(message_id),
            "domain": domain.value,
            "type": ce_type,
            "occurred_at": occurred,
            "received_at": received_at,
            "municipality": municipality,
            "schema_version": SCHEMA_VERSION,
            "correlation_id": correlation,
        },
        "subject": {
            "person_ref": person_ref,
            "address_ref": addr,
            "match": _match(record) if person_ref is None or kind.registers else None,
            "contact": _contact(record) if kind.contact else None,
            "data_quality": quality,
        },
        "payload": (payload_name, payload),
    }
    return domain, person_ref or addr or "", raw_event


def cloudevent_headers(raw_event: Record) -> list[tuple[str, bytes]]:
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
