"""Every shipped rule on the real broker: it fires on its scenario and stays quiet on a near
miss. Plus: two rules on one household are two alerts, one rule matched twice is one, a
replay raises nothing new, and team actions travel as events through the household stage.

All scenarios are ingested first and checked after one drain, each in its own household.
"""

from __future__ import annotations

import itertools

import pytest
from kafka import KafkaProducer

from wijkhub.connectors.deadletter import DeadLetter, unseal
from wijkhub.connectors.inbox.actions import action_record
from wijkhub.kafka import connect
from wijkhub.schemas.registry import ALERT_ACTION, Catalog
from wijkhub.streams.access import INBOX
from wijkhub.streams.authenticity import ActionKeys
from wijkhub.streams.topics import ALERT_ACTIONS, DLQ_STREAMS

from builders import Hub, SourceRecords, household, wait_for_alerts

_n = itertools.count(1)


def case(p: dict, team: str, kind: str, day: str) -> dict:
    return {"kind": "case_opened", "message_id": f"rc-{next(_n)}", "case_id": f"RC-{next(_n)}",
            "team": team, "case_type": kind, "occurred_at": day, "bsn": p["bsn"],
            "contact": f"{team.lower().replace(' ', '-')}@gemeente.example"}  # fmt: skip


def teams_record(p: dict, kind: str, day: str, **fields) -> dict:
    return {"kind": kind, "message_id": f"rt-{next(_n)}", "occurred_at": day, "bsn": p["bsn"],
            **fields}  # fmt: skip


def benefit(p: dict, change: str, day: str) -> dict:
    return {"kind": "benefit_changed", "message_id": f"rb-{next(_n)}", "change": change,
            "benefit_id": f"U-{next(_n)}", "benefit_type": "bijstand", "occurred_at": day,
            "bsn": p["bsn"]}  # fmt: skip


def signal(
    plant: SourceRecords, p: dict, postcode: str, number: str, creditor: str, day: str, **extra
) -> dict:
    return {**plant.arrears(postcode, number, creditor, day), "bsn": p["bsn"], **extra}


def scenario(plant: SourceRecords, name: str):
    """(records per source, the rules expected to fire) for one household at its own address."""
    postcode, number = f"12{next(_n) % 100:02d}RX", str(next(_n))
    p = plant.person(postcode, number)

    def s(creditor: str, day: str, **extra) -> dict:
        return signal(plant, p, postcode, number, creditor, day, **extra)

    three_domains = [
        case(p, "Team A", k, "2026-03-01") for k in ("schuldhulp", "wmo", "participatie")
    ]
    scenarios = {
        "2-creditors": ({"vroegsignalering": [s("Huur", "2026-03-01"), s("Energie", "2026-04-15")]},
                        ["VS-ARREARS-2-CREDITORS-90D"]),
        "2-creditors near miss (120 days apart)": (
            {"vroegsignalering": [s("Huur", "2026-01-01"), s("Energie", "2026-05-01")]}, []),
        "3-months": ({"vroegsignalering": [s("Huur", "2026-01-10", amount_cents=10_000),
                                           s("Huur", "2026-02-10", amount_cents=20_000),
                                           s("Huur", "2026-03-10", amount_cents=30_000)]},
                     ["VS-ARREARS-3-MONTHS-ONE-CREDITOR"]),
        "3-months near miss (March missing)": (
            {"vroegsignalering": [s("Huur", "2026-01-10"), s("Huur", "2026-02-10"),
                                  s("Huur", "2026-04-10")]}, []),
        "income-loss": ({"income": [benefit(p, "ended", "2026-03-01")],
                         "vroegsignalering": [s("Energie", "2026-04-15")]},
                        ["VS-INCOME-LOSS-THEN-ARREARS-60D"]),
        "income-loss near miss (70 days later)": (
            {"income": [benefit(p, "sanction", "2026-03-01")],
             "vroegsignalering": [s("Energie", "2026-05-10")]}, []),
        "crisis": ({"vroegsignalering": [s("Water", "2026-04-01", crisis=True)]},
                   ["VS-CRISIS-SIGNAL"]),
        "crisis near miss (no crisis flag)": ({"vroegsignalering": [s("Water", "2026-04-01")]}, []),
        "same-help": ({"teams": [case(p, "Team A", "schuldhulp", "2026-03-01"),
                                 case(p, "Team B", "schuldhulp", "2026-03-05")]},
                      ["DH-TWO-HOLDERS-SAME-HELP"]),
        "same-help near miss (one team)": (
            {"teams": [case(p, "Team A", "schuldhulp", "2026-03-01"),
                       case(p, "Team A", "schuldhulp", "2026-03-05")]}, []),
        "3-domains": ({"teams": three_domains}, ["DH-3-DOMAINS-NO-REGISSEUR"]),
        "3-domains near miss (regisseur assigned)": (
            {"teams": [teams_record(p, "coordinator_assigned", "2026-02-01", team="Team A",
                                    contact="regie@gemeente.example"), *three_domains]}, []),
        "two-teams": ({"teams": [case(p, "Team A", "schuldhulp", "2026-03-01"),
                                 case(p, "Team B", "wmo", "2026-03-05")]},
                      ["DH-TWO-TEAMS-OPEN-CASES"]),
        "two-teams near miss (one team, two kinds)": (
            {"teams": [case(p, "Team A", "schuldhulp", "2026-03-01"),
                       case(p, "Team A", "wmo", "2026-03-05")]}, []),
        "youth-after-debt (consent given)": (
            {"teams": [teams_record(p, "consent_changed", "2026-01-05", consent="given",
                                    purpose="jeugd-schuldsignaal", consent_domain="debt"),
                       case(p, "Team J", "jeugd", "2026-04-01")],
             "vroegsignalering": [s("Huur", "2026-02-01")]},
            ["VS-YOUTH-HELP-AFTER-DEBT-180D"]),
        "youth-after-debt near miss (no consent)": (
            {"teams": [case(p, "Team J", "jeugd", "2026-04-01")],
             "vroegsignalering": [s("Huur", "2026-02-01")]}, []),
        "two rules, one household": (
            {"vroegsignalering": [s("Water", "2026-04-01", crisis=True), s("Huur", "2026-04-10")]},
            ["VS-ARREARS-2-CREDITORS-90D", "VS-CRISIS-SIGNAL"]),
        "one rule matched twice": (
            {"vroegsignalering": [s("Huur", "2026-01-05"), s("Energie", "2026-01-20"),
                                  s("Water", "2026-09-01"), s("DUO", "2026-09-10")]},
            ["VS-ARREARS-2-CREDITORS-90D"]),
    }  # fmt: skip
    records, expected = scenarios[name]
    return p, household(postcode, number), records, expected


NAMES = [
    "2-creditors", "2-creditors near miss (120 days apart)", "3-months",
    "3-months near miss (March missing)", "income-loss", "income-loss near miss (70 days later)",
    "crisis", "crisis near miss (no crisis flag)", "same-help", "same-help near miss (one team)",
    "3-domains", "3-domains near miss (regisseur assigned)", "two-teams",
    "two-teams near miss (one team, two kinds)", "youth-after-debt (consent given)",
    "youth-after-debt near miss (no consent)", "two rules, one household", "one rule matched twice",
]  # fmt: skip


@pytest.fixture(scope="module")
def planted(hub_settings, worker, plant):
    hub = Hub(hub_settings, worker)
    found = {}
    for name in NAMES:
        p, ref, records, expected = scenario(plant, name)
        hub.ingest("population", [p])
        for source, items in records.items():
            report = hub.ingest(source, items)
            assert report.dead_lettered == 0, (name, report.rejected)
        found[name] = (ref, records, expected)
    hub.wait_drained()
    return found


@pytest.mark.parametrize("name", NAMES)
def test_each_rule_fires_on_its_scenario_and_stays_quiet_on_a_near_miss(hub, planted, name):
    ref, _, expected = planted[name]
    raised = [a for a in hub.alerts({ref}) if a["change"] == "raised"]
    if expected:
        raised = wait_for_alerts(hub, {ref}, len(expected))
        raised = [a for a in raised if a["change"] == "raised"]
    assert sorted(a["rule_id"] for a in raised) == expected
    assert len({a["alert_id"] for a in raised}) == len(expected)  # one alert per rule


def test_a_replay_of_the_same_input_raises_nothing_new(hub, planted):
    ref, records, _ = planted["two rules, one household"]
    before = hub.alerts({ref})
    for source, items in records.items():
        hub.ingest(source, items)  # same message ids: same event ids
    hub.wait_drained()
    assert hub.alerts({ref}) == before


def send_action(hub, record: dict, service: str = INBOX) -> bytes:
    """The action as the inbox (or, with ``service``, another principal) sends it."""
    value = Catalog().encode(ALERT_ACTION, record)
    producer = KafkaProducer(**connect(hub.settings, service).kafka_python(), acks="all")
    try:
        producer.send(hub.topic(ALERT_ACTIONS), value,
                      key=record["household_ref"].encode()).get(timeout=10)  # fmt: skip
    finally:
        producer.close()
    return value


def test_team_actions_change_the_alert_and_unauthentic_ones_are_dead_lettered(hub, planted):
    ref, _, _ = planted["two-teams"]
    [alert] = [a for a in hub.alerts({ref}) if a["rule_id"] == "DH-TWO-TEAMS-OPEN-CASES"]
    keys = ActionKeys.parse(hub.settings.action_keys)
    made = keys.sign(action_record(alert, "contact_made", "regisseur.test"))
    send_action(hub, made)
    send_action(hub, made)  # a redelivery: applied once
    other_team = send_action(hub, keys.sign(
        {**action_record(alert, "claim", "ander.team"), "team": "wijkteam-zuid"}))  # fmt: skip
    resolve = action_record(alert, "resolve", "indringer", "no_action_needed")
    unsigned = send_action(hub, resolve)
    forged = send_action(hub, {**keys.sign(resolve), "actor": "iemand.anders"})
    foreign = ActionKeys.parse("k9=" + "x" * 32).sign(resolve)
    unknown_key = send_action(hub, foreign)
    hub.wait_drained()
    changes = [a for a in hub.alerts({ref}) if a["alert_id"] == alert["alert_id"]]
    assert [(a["change"], a["state"], a["revision"]) for a in changes] == [
        ("raised", "open", 1), ("contact_made", "acknowledged", 2)]  # fmt: skip
    assert changes[-1]["contact_made_at"] is not None
    key = hub.settings.dead_letter_key
    letters = {unseal(key, d.original): (d.stage, d.reason_code) for d in (
        DeadLetter.from_headers(r.headers, r.value) for r in hub.records(DLQ_STREAMS))}  # fmt: skip
    assert [letters.get(v) for v in (other_team, unsigned, forged, unknown_key)] == [
        ("household", "other-team"), ("household", "action-unsigned"),
        ("household", "action-forged"), ("household", "action-key-unknown")]  # fmt: skip


def test_a_quiet_households_duplicate_help_alert_expires_on_the_worker_sweep(hub, plant):
    """No inbox running: the worker's own timer ends the alert (its sweep runs every
    second here; WIJKHUB_EXPIRY_SWEEP_SECONDS)."""
    p = plant.person("1049ZH", "151")
    hub.ingest("population", [p])
    old = [
        {**plant.case(p["bsn"], team), "occurred_at": "2024-03-01"}
        for team in ("Stadsbank", "Humanitas")
    ]
    hub.ingest("teams", old)  # raised in event time March 2024: it ended in March 2026
    ref = household("1049ZH", "151")
    changes = wait_for_alerts(hub, {ref}, 2)
    assert [(a["change"], a["state"], a["resolution"]) for a in changes] == [
        ("raised", "open", None), ("expired", "resolved", "expired")]  # fmt: skip
    assert changes[0]["expires_at"].date().isoformat() == "2026-03-01"
