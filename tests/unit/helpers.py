"""Pure-logic test helpers: linked events as the link stage makes them, a fake producer."""

import datetime as dt
import itertools
from dataclasses import dataclass, field

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


@dataclass
class FakeKafka:
    """What an :class:`~wijkhub.connectors.intake.Intake` sent, per record, without a broker."""

    sent: list[dict] = field(default_factory=list)

    def send(self, topic: str, key=None, value=None, headers=None) -> Acknowledged:
        self.sent.append({"topic": topic, "key": key, "value": value,
                          "headers": dict(headers or [])})  # fmt: skip
        return Acknowledged()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def topics(self) -> list[str]:
        return [r["topic"] for r in self.sent]
