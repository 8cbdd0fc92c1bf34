"""What the latency histogram measures: the hub's time to a fact's first link.

A fact linked again later (moved to another household by a BRP record that came after it,
or released from waiting for the person's registration) waited for that record. Counted
as latency it made the live p99 of the bench the age of the oldest relinked fact (60 s
and more, issue 19); it is measured apart, as an age.
"""

from __future__ import annotations

from wijkhub.schemas.registry import LINKED_EVENT, Catalog
from wijkhub.streams.harness import build_stages
from wijkhub.streams.stage import Message
from wijkhub.testing import Scenario

from builders import offline_worker_settings

CATALOG = Catalog()


def linked(raw: bytes, household: str, generation: int, withdrawn: bool = False) -> Message:
    record = {"household_ref": household, "linked_by": "person", "raw_event": raw,
              "member_change": None, "match_probability": None, "event_id": "E-1",
              "generation": generation, "withdrawn": withdrawn, "person_ref": "P-1",
              "address_ref": "1011AB-7", "members": []}  # fmt: skip
    value = CATALOG.encode(LINKED_EVENT, record)
    return Message("linked", household.encode(), value, f"linked/0/{generation}")


def test_a_fact_counts_as_latency_at_its_first_link_and_as_age_when_linked_again(tmp_path):
    settings = offline_worker_settings(tmp_path).with_(pseudonym_key=b"p" * 32)
    _, _, household = build_stages(settings, CATALOG, clock=lambda: 0.0)
    scenario = Scenario()
    who = scenario.person("Smit", "1990-01-01")
    scenario.arrears("1011AB", "7", "Energie", "2026-05-01", who=who, with_bsn=True)
    raw = next(v for t, _, v in scenario.raw_records(settings.pseudonym_key, CATALOG)
               if t == "raw.debt")  # fmt: skip

    first = household.process(household.new_state(), [linked(raw, "H-1", 1)])
    assert (len(first.received_at), len(first.relinked_at)) == (1, 0)
    again = household.process(first.state, [linked(raw, "H-1", 1)])  # redelivered
    assert (len(again.received_at), len(again.relinked_at)) == (0, 0)

    moved = household.process(household.new_state(), [linked(raw, "H-2", 2)])
    assert (len(moved.received_at), len(moved.relinked_at)) == (0, 1)
    assert moved.relinked_at == first.received_at  # the fact's own receipt: its age
