"""End to end on the real broker: intake → worker → alerts, counted and checked for BSNs.

Tests share one worker (starting Faust costs seconds) but never a household:
each test plants its own addresses and people. The last tests check
properties of everything that went through: conservation and privacy.
"""

from __future__ import annotations

import json
import re

import pytest
from kafka import KafkaProducer

from wijkhub.connectors.deadletter import unseal
from wijkhub.schemas.registry import HOUSEHOLD_VIEW, LINKED_EVENT, RAW_EVENT, ROUTED, Catalog
from wijkhub.streams import topics
from wijkhub.streams.topics import (
    BY_ADDRESS,
    DLQ_STREAMS,
    LINKED,
    RAW_TOPICS,
    UNMATCHED,
)

from builders import as_admin, household, series, wait_for_alerts
from shared_data import IJW

JW301 = IJW / "JW301.example.xml"
SCENARIO: dict[str, list] = {}


def test_rent_and_energy_arrears_raise_one_early_detection_alert(hub, plant):
    p = plant.person("1011AB", "1")
    records = [
        plant.arrears("1011AB", "1", "Huur", "2026-03-01"),
        plant.arrears("1011AB", "1", "Energie", "2026-04-15"),
    ]
    assert hub.ingest("population", [p]).events == 1
    assert hub.ingest("vroegsignalering", records).events == 2
    SCENARIO["early"] = [("population", [p]), ("vroegsignalering", records)]
    ref = household("1011AB", "1")
    [alert] = wait_for_alerts(hub, {ref}, 1)
    assert alert["family"] == "early_detection"
    assert alert["rule_id"] == "VS-ARREARS-2-CREDITORS-90D"
    assert alert["team"] == "wijkteam-centrum"
    assert sorted(f["description"] for f in alert["facts"]) == [
        "Betalingsachterstand gemeld, schuldeiser: Energie",
        "Betalingsachterstand gemeld, schuldeiser: Huur",
    ]
    assert "45000" not in json.dumps(alert, default=str)  # no amounts in alerts


def test_two_debt_help_cases_at_different_teams_raise_one_duplicate_help_alert(hub, plant):
    p = plant.person("1055CD", "12")
    cases = [plant.case(p["bsn"], "Schuldhulp Noord"), plant.case(p["bsn"], "Stadsbank")]
    hub.ingest("population", [p])
    hub.ingest("teams", cases)
    SCENARIO["duplicate"] = [("population", [p]), ("teams", cases)]
    [alert] = wait_for_alerts(hub, {household("1055CD", "12")}, 1)
    assert alert["family"] == "duplicate_help"
    assert alert["team"] == "wijkteam-noord"
    assert {f["description"] for f in alert["facts"]} == {
        "Actief schuldhulp-traject bij Schuldhulp Noord (contact: 06-00000000)",
        "Actief schuldhulp-traject bij Stadsbank (contact: 06-00000000)",
    }


def test_cases_before_the_registration_wait_and_then_link(hub, plant):
    p = plant.person("1110EF", "3")
    hub.ingest("teams", [plant.case(p["bsn"], "Humanitas"), plant.case(p["bsn"], "Stadsbank")])
    hub.wait_drained()
    assert hub.alerts({household("1110EF", "3")}) == []  # parked, not guessed
    hub.ingest("population", [p])
    [alert] = wait_for_alerts(hub, {household("1110EF", "3")}, 1)
    assert alert["family"] == "duplicate_help"


def test_control_household_raises_nothing(hub, plant):
    p = plant.person("1012GH", "7")
    hub.ingest("population", [p])
    hub.ingest(
        "vroegsignalering",
        [
            plant.arrears("1012GH", "7", "Huur", "2026-01-01"),
            plant.arrears("1012GH", "7", "Huur", "2026-02-01"),
            plant.arrears("1012GH", "7", "Water", "2026-06-01"),
        ],
    )
    hub.ingest("teams", [plant.case(p["bsn"], "Stadsbank")])
    hub.wait_drained()
    assert hub.alerts({household("1012GH", "7")}) == []


def test_replaying_the_same_input_raises_no_new_alert(hub):
    refs = {household("1011AB", "1"), household("1055CD", "12")}
    before = [a["alert_id"] for a in hub.alerts(refs)]
    assert len(before) == 2, "the first two scenarios must have run"
    for scenario in ("early", "duplicate"):
        for source, records in SCENARIO[scenario]:
            hub.ingest(source, records)
    hub.wait_drained()
    assert [a["alert_id"] for a in hub.alerts(refs)] == before


def test_bad_input_is_dead_lettered_with_sealed_original_and_reason(hub, topics, plant):
    bad_bsn = {**plant.person("1013JK", "1"), "bsn": "123456780"}
    lines = [
        b"{not json",
        json.dumps(bad_bsn).encode(),
        json.dumps({**plant.person("1013JK", "1"), "occurred_at": "2027-06-31"}).encode(),
        json.dumps(plant.person("1013JK", "1")).encode(),
    ]
    report = hub.ingest("population", lines)
    assert (report.read, report.events, report.dead_lettered) == (4, 1, 3)
    _, letters = topics.new()
    # keyed by place (spread over partitions): in the input's order by position
    letters.sort(key=lambda r: dict(r.headers)["dl_origin"])
    assert len({r.key for r in letters}) == 3
    assert all(r.key.startswith(b"DL-") for r in letters)
    reasons = [dict(r.headers)["dl_reason"].decode() for r in letters]
    assert reasons == [
        "input is not valid JSON",
        "BSN fails the elfproef or is not 8-9 digits",
        "field occurred_at is not an ISO date or date-time",
    ]
    originals = [unseal(hub.settings.dead_letter_key, r.value) for r in letters]
    assert originals == lines[:3]
    assert all(b"123456780" not in r.value for r in letters)


def test_a_later_301_without_an_assignment_publishes_it_as_withdrawn(hub, plant):
    """301s are full snapshots: the link stage diffs them into ToewijzingChanged events."""
    catalog = Catalog()
    client = plant.person("1017KL", "4")  # our own client, so no other test touches this household
    hub.ingest("population", [client])
    first = JW301.read_bytes().replace(b">999900006<", f">{client['bsn']}<".encode())
    assert first.count(b"<jw301:ToegewezenProduct>") == 2
    start = first.index(b"<jw301:ToegewezenProduct>", first.index(b"300202") - 200)
    end = first.index(b"</jw301:ToegewezenProduct>", start) + len(b"</jw301:ToegewezenProduct>")
    later = (first[:start] + first[end:]).replace(b"123456789012", b"123456789013")
    later = later.replace(b"<ijw:Dagtekening>2026-04-01", b"<ijw:Dagtekening>2026-05-01")
    assert hub.ingest("ijw", [first]).events == 1
    assert hub.ingest("ijw", [later]).events == 1
    hub.wait_drained()
    ref = household("1017KL", "4")
    changes = set()
    for record in hub.records(LINKED):
        linked = catalog.decode(record.value, LINKED_EVENT)
        if not linked["raw_event"]:
            continue  # a withdrawal or a household's membership periods
        name, payload = catalog.decode(linked["raw_event"], RAW_EVENT)["payload"]
        if linked["household_ref"] == ref and name.endswith("ToewijzingChanged"):
            changes.add((payload["change"], payload["number"]))
    assert changes == {("assigned", "300201"), ("assigned", "300202"), ("withdrawn", "300202")}
    views = [
        catalog.decode(r.value, HOUSEHOLD_VIEW)
        for r in hub.records(topics.HOUSEHOLD_VIEW)
        if r.key == ref.encode()
    ]
    assert [i["ref"] for i in views[-1]["involvements"]] == ["300201"]


def test_undecodable_record_on_a_raw_topic_goes_to_the_stream_dead_letters(hub):
    producer = KafkaProducer(**as_admin(hub.settings))
    garbage = b"\x00\x00\x00\x00\x01\xff\xfe not avro"
    producer.send(hub.topic("raw.debt"), key=b"1013JK-9", value=garbage).get(timeout=10)
    producer.close()
    hub.wait_drained()
    key = hub.settings.dead_letter_key
    [letter] = [r for r in hub.records(DLQ_STREAMS) if unseal(key, r.value) == garbage]
    headers = dict(letter.headers)
    assert garbage not in letter.value and headers["dl_sealed"] == b"1"  # sealed on the topic
    assert headers["dl_reason_code"] == b"undecodable"
    assert headers["dl_origin"].startswith(hub.topic("raw.debt").encode())


def test_every_record_is_linked_waiting_unmatched_or_dead_lettered(hub):
    """in == out + dead letters, stage by stage, counted on the topics and in the metrics.

    Person stage: every raw record is a BRP fact (register), a 301 (diffed), an event
    about a person (kept, then routed, parked or handed over), an event about an address
    (routed), unlinkable (review) or a dead letter. Address stage: every by-address
    record is a resident's periods, an event (or its withdrawal) or a dead letter, and
    every event still standing there is linked to one household or in review.
    """
    hub.wait_drained()
    text = hub.worker.metrics_text()
    n = {labels["outcome"]: v for labels, v in series(text, "wijkhub_link_outcomes_total")}
    dead: dict[str, float] = {}
    for labels, v in series(text, "wijkhub_dead_letters_total"):
        dead[labels["stage"]] = dead.get(labels["stage"], 0) + v
    raw = sum(len(hub.records(t)) for t in RAW_TOPICS)
    assert raw > 0 and n["unparked"] >= 2 and n["diffed"] >= 2 and n["derived"] >= 3
    person_in = (n["register"] + n["diffed"] + n["person-event"] + n["address-event"]
                 + n["unlinkable"] + dead.get("person", 0))  # fmt: skip
    assert person_in == raw
    routed = len(hub.records(BY_ADDRESS))
    assert routed == n["residency"] + n["event"] + dead.get("address", 0)
    catalog = Catalog()
    newest: dict[tuple[str, bytes], dict] = {}  # (event id, building) → latest routing
    for r in hub.records(BY_ADDRESS):
        record = catalog.decode(r.value, ROUTED)
        at = (record["event_id"], r.key)
        if record["role"] == "event" and (
            at not in newest or newest[at]["generation"] < record["generation"]
        ):
            newest[at] = record
    standing = {
        eid: catalog.decode(record["raw_event"], RAW_EVENT)["payload"][0]
        for (eid, _), record in newest.items()
        if not record["withdrawn"]
    }
    review: dict[str, bool] = {}
    for r in hub.records(UNMATCHED):
        review[r.key.decode()] = r.value is not None  # a tombstone closes the entry
    linked = hub.linked()
    for eid, name in standing.items():
        if name.endswith("RelationChanged"):
            continue  # shapes households, belongs to none
        assert (eid in linked) != review.get(eid, False), eid  # exactly one of the two
        assert len(linked.get(eid, [])) <= 1
    assert len(hub.records(DLQ_STREAMS)) == sum(dead.values())


def test_metrics_are_served_with_real_counts(hub):
    text = hub.worker.metrics_text()
    raised = sum(
        float(v) for v in re.findall(r"^wijkhub_alerts_raised_total\{[^}]*\} (\S+)$", text, re.M)
    )
    assert raised == len({a["alert_id"] for a in hub.alerts()})
    assert (
        'wijkhub_dead_letters_total{reason="undecodable",source="raw.debt",stage="person"} 1.0'
        in text
    )
    assert "wijkhub_processing_latency_seconds_bucket" in text


pytestmark = pytest.mark.timeout(600)


def test_routing_crisis_team_by_rule_and_fallback_outside_the_districts(hub, plant):
    def unrouted() -> dict[str, float]:
        text = hub.worker.metrics_text()
        return {labels["family"]: v for labels, v in series(text, "wijkhub_alerts_unrouted_total")}

    hub.wait_drained()  # what other tests planted is counted before this test's mark
    before = unrouted()
    p, q = (
        plant.person("1016MN", "2"),
        plant.person("9999AA", "1"),
    )  # 9999AA: no district in the table
    hub.ingest("population", [p, q])
    crisis = {**plant.arrears("1016MN", "2", "Water", "2026-04-01"), "crisis": True}
    hub.ingest(
        "vroegsignalering",
        [
            crisis,
            plant.arrears("9999AA", "1", "Huur", "2026-03-01"),
            plant.arrears("9999AA", "1", "Energie", "2026-03-09"),
        ],
    )
    [alert] = wait_for_alerts(hub, {household("1016MN", "2")}, 1)
    assert (alert["rule_id"], alert["severity"]) == ("VS-CRISIS-SIGNAL", "critical")
    assert alert["team"] == "schuldhulp-crisisteam"
    [outside] = wait_for_alerts(hub, {household("9999AA", "1")}, 1)
    assert outside["team"] == "wijkteam-centraal"
    # the crisis alert is routed by its rule; only the one outside the districts is unrouted
    added = {family: v - before.get(family, 0.0) for family, v in unrouted().items()}
    assert {family: n for family, n in added.items() if n} == {"early_detection": 1.0}


def test_duplicate_help_alert_resolves_itself_when_one_case_closes(hub, plant):
    p = plant.person("1018PQ", "3")
    first, second = plant.case(p["bsn"], "Stadsbank"), plant.case(p["bsn"], "Humanitas")
    hub.ingest("population", [p])
    hub.ingest("teams", [first, second])
    ref = household("1018PQ", "3")
    [raised] = wait_for_alerts(hub, {ref}, 1)
    assert raised["state"] == "open"
    close = {"kind": "case_closed", "message_id": f"close-{second['case_id']}", "bsn": p["bsn"],
             "case_id": second["case_id"], "team": "Humanitas",
             "occurred_at": "2026-06-01"}  # fmt: skip
    hub.ingest("teams", [close])
    states = [a for a in wait_for_alerts(hub, {ref}, 2) if a["alert_id"] == raised["alert_id"]]
    assert [(a["state"], a["resolution"]) for a in states] == [
        ("open", None), ("resolved", "condition ended")]  # fmt: skip
