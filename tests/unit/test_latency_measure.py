"""What the latency histogram measures: from the receipt of the source record that caused a
fact's link to the household stage applying it.

A fact that waited for a BRP record (parked until the person's registration came, or moved
by a later one) was linked because of that record. Counted from its own receipt, it made the
live p99 of the bench the age of the oldest such fact (60 s and more, issue 19). Each stage
stamps what it sends with the receipt of the newest source record its decision saw
(``caused_at`` header), so the household stage measures from the record that completed the
link; the fact's own age is measured apart.
"""

from __future__ import annotations

import datetime as dt

from wijkhub.schemas.registry import LINKED_EVENT, RAW_EVENT, Catalog
from wijkhub.streams.harness import Harness, build_stages
from wijkhub.streams.stage import CAUSED_AT, Message, caused_at
from wijkhub.testing import Scenario

from builders import offline_worker_settings

CATALOG = Catalog()
FACT_CAME = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
BRP_CAME = FACT_CAME + dt.timedelta(hours=5)


def linked(raw: bytes, household: str, generation: int, caused: float | None) -> Message:
    record = {"household_ref": household, "linked_by": "person", "raw_event": raw,
              "member_change": None, "match_probability": None, "event_id": "E-1",
              "generation": generation, "withdrawn": False, "person_ref": "P-1",
              "address_ref": "1011AB-7", "members": []}  # fmt: skip
    value = CATALOG.encode(LINKED_EVENT, record)
    return Message("linked", household.encode(), value, f"linked/0/{generation}", caused)


def received(value: bytes, at: dt.datetime) -> bytes:
    raw = CATALOG.decode(value, RAW_EVENT)
    raw["envelope"]["received_at"] = at
    return CATALOG.encode(RAW_EVENT, raw)


def town(settings):
    """A debt signal with BSN that came five hours before its person's BRP registration."""
    scenario = Scenario()
    who = scenario.person("Smit", "1990-01-01")
    scenario.register(who, "1011AB", "7", "2020-01-01")
    scenario.arrears("1011AB", "7", "Energie", "2026-05-01", who=who, with_bsn=True)
    records = scenario.raw_records(settings.pseudonym_key, CATALOG)
    signal = [(t, k, received(v, FACT_CAME)) for t, k, v in records if t == "raw.debt"]
    brp = [(t, k, received(v, BRP_CAME)) for t, k, v in records if t == "raw.population"]
    assert len(signal) == 1 and len(brp) == 1
    return signal, brp


def town_in_harness(tmp_path):
    """The town's records, and an empty in-memory pipeline to feed them to."""
    settings = offline_worker_settings(tmp_path).with_(pseudonym_key=b"p" * 32)
    return Harness(build_stages(settings, CATALOG, clock=lambda: 0.0)), *town(settings)


def test_a_fact_that_waited_for_its_brp_record_is_measured_from_that_record(tmp_path):
    harness, signal, brp = town_in_harness(tmp_path)
    harness.feed(*signal[0])
    harness.run()
    assert not harness.records("linked")  # parked: the person's registration has not come
    harness.feed(*brp[0])
    harness.run()
    facts = [o for o in harness.records("linked")
             if CATALOG.decode(o.value, LINKED_EVENT)["raw_event"]]  # fmt: skip
    assert len(facts) == 1
    assert caused_at(facts[0].headers) == BRP_CAME.timestamp()  # not the fact's receipt
    routed = harness.records("by-address")
    assert routed and all(caused_at(o.headers) == BRP_CAME.timestamp() for o in routed)


def test_a_fact_counts_as_latency_from_its_cause_and_as_age_when_linked_again(tmp_path):
    settings = offline_worker_settings(tmp_path).with_(pseudonym_key=b"p" * 32)
    _, _, household = build_stages(settings, CATALOG, clock=lambda: 0.0)
    signal, _ = town(settings)
    raw = signal[0][2]
    own = FACT_CAME.timestamp()

    first = household.process(household.new_state(), [linked(raw, "H-1", 1, 100.0)])
    assert (first.caused_at, first.relinked_at) == ([100.0], [])
    again = household.process(first.state, [linked(raw, "H-1", 1, 100.0)])  # redelivered
    assert (again.caused_at, again.relinked_at) == ([], [])
    moved = household.process(household.new_state(), [linked(raw, "H-2", 2, 200.0)])
    assert (moved.caused_at, moved.relinked_at) == ([200.0], [own])  # its age apart
    older = household.process(household.new_state(), [linked(raw, "H-3", 1, None)])
    assert older.caused_at == [own]  # a record from before the header: its own receipt


def test_the_cause_header_is_read_back_and_never_trusted_blindly():
    assert caused_at([(CAUSED_AT, b"1764500000.250")]) == 1764500000.25
    assert caused_at([("other", b"1")]) is None and caused_at(None) is None
    for bad in (b"not a number", None, b"nan", b"inf", b"-5"):  # null: aiokafka gives None
        assert caused_at([(CAUSED_AT, bad)]) is None, bad  # type: ignore[list-item]


def test_a_replayed_copy_does_not_stamp_what_it_did_not_cause(tmp_path):
    harness, signal, brp = town_in_harness(tmp_path)
    harness.feed(*brp[0])
    harness.run()
    sent = len(harness.records("by-address"))
    topic, key, value = brp[0]
    assert signal[0][1] == key  # one person: one batch of the person stage below
    harness.feed(*signal[0])  # new: it causes the sends
    harness.feed(topic, key, received(value, BRP_CAME + dt.timedelta(days=1)))  # a replay
    harness.run()
    routed = harness.records("by-address")[sent:]
    assert routed and {caused_at(o.headers) for o in routed} == {FACT_CAME.timestamp()}


def test_a_batch_is_counted_per_output_and_per_count_and_timed_per_fact():
    # streams/faust_adapter._Observer adds a batch's results up before it touches a counter
    from prometheus_client import generate_latest

    from wijkhub.metrics import Metrics
    from wijkhub.streams.faust_adapter import _Observer
    from wijkhub.streams.stage import Output, Result

    metrics = Metrics()
    first: Result[dict] = Result({}, [Output("by-address", b"k", b"v"),
                                      Output("alerts", b"a", None)])  # fmt: skip
    first.counts["link_outcome", "routed"] += 2
    first.caused_at.append(0.0)
    second: Result[dict] = Result({}, [Output("by-address", b"j", b"w")])
    second.counts["link_outcome", "routed"] += 1
    second.counts["alert_raised", "R1", "signal", "team-a"] += 1
    second.caused_at.append(0.0)
    _Observer(metrics, "person", "t.").results([first, second])
    text = generate_latest(metrics.registry).decode()
    assert 'wijkhub_events_produced_total{stage="person",topic="t.by-address"} 2.0' in text
    assert 'wijkhub_events_produced_total{stage="person",topic="t.alerts"} 1.0' in text
    assert 'wijkhub_link_outcomes_total{outcome="routed"} 3.0' in text
    assert 'wijkhub_alerts_raised_total{family="signal",rule="R1",team="team-a"} 1.0' in text
    assert 'wijkhub_processing_latency_seconds_count{stage="person"} 2.0' in text
