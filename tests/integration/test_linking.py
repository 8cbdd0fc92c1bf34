"""Linking on the real broker: moves, births, shared addresses, review, late events.

Every test plants its own people at its own addresses. Events are identified
by the ids the intake returned; where they were linked is read back from
the ``linked`` topic, and household membership from ``household-view``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wijkhub import audit
from wijkhub.schemas.registry import AUDIT_ENTRY, Catalog
from wijkhub.streams.topics import AUDIT, HAND_OVER, UNMATCHED

from builders import OPERATOR_TOKEN, household

pytestmark = pytest.mark.timeout(600)


def with_bsn(signal: dict, bsn: str) -> dict:
    return {**signal, "bsn": bsn}


def moved(p: dict, postcode: str, number: str, day: str) -> dict:
    return {**p, "kind": "person_moved", "message_id": p["message_id"] + "-move",
            "occurred_at": day, "postcode": postcode, "huisnummer": number}  # fmt: skip


def relation(a: dict, b: dict, kind: str, day: str) -> dict:
    return {"kind": "relation_changed", "message_id": f"rel-{a['bsn']}-{b['bsn']}",
            "bsn": a["bsn"], "related_bsn": b["bsn"], "relation": kind, "change": "started",
            "occurred_at": day}  # fmt: skip


def only(linked: dict, event_id: str) -> dict:
    [where] = linked[event_id]
    return where


def test_a_move_between_two_signals_links_each_to_the_household_of_its_date(hub, plant):
    p = plant.person("1021AA", "1")
    hub.ingest("population", [p])
    hub.ingest("population", [moved(p, "1022BB", "2", "2026-02-01")])
    before = with_bsn(plant.arrears("1021AA", "1", "Huur", "2026-01-10"), p["bsn"])
    after = with_bsn(plant.arrears("1022BB", "2", "Energie", "2026-03-01"), p["bsn"])
    # the earlier signal arrives after the move: out of order, still linked by its date
    ids = hub.ingest("vroegsignalering", [after, before]).event_ids
    hub.wait_drained()
    linked = hub.linked()
    old, new = household("1021AA", "1"), household("1022BB", "2")
    assert only(linked, ids[1])["household_ref"] == old
    assert only(linked, ids[0])["household_ref"] == new
    assert hub.view(old)["members"] == [] and len(hub.view(new)["members"]) == 1


def test_signals_after_leaving_the_municipality_go_to_hand_over_not_to_a_team(hub, plant):
    p = plant.person("1081HH", "8")
    departed = {"kind": "person_departed", "message_id": p["message_id"] + "-vertrek",
                "bsn": p["bsn"], "occurred_at": "2026-02-01", "destination": "0344"}  # fmt: skip
    hub.ingest("population", [p, departed])
    late = with_bsn(plant.arrears("1081HH", "8", "Huur", "2026-03-01"), p["bsn"])
    [event_id] = hub.ingest("vroegsignalering", [late]).event_ids
    hub.wait_drained()
    assert event_id not in hub.linked()
    handed = [dict(r.headers) for r in hub.records(HAND_OVER) if r.key == event_id.encode()]
    assert [(h["ho_state"], h.get("ho_departed_on")) for h in handed] == [
        (b"handed-over", b"2026-02-01")
    ]
    assert hub.view(household("1081HH", "8"))["members"] == []


def test_a_birth_adds_a_member_to_the_household(hub, plant):
    mother = plant.person("1031CC", "3")
    child = {**plant.person("1031CC", "3"), "occurred_at": "2026-04-02"}
    hub.ingest("population", [mother, child, relation(mother, child, "ouder", "2026-04-02")])
    hub.wait_drained()
    view = hub.view(household("1031CC", "3"))
    assert len(view["members"]) == 2
    assert view["district"] == {"buurt": "BU03630003", "wijk": "WK036300", "gemeente": "GM0363",
                                "year": 2025}  # fmt: skip


def test_two_households_at_one_address_stay_two(hub, plant):
    p1, p2, q1, q2 = (plant.person("1041DD", "4") for _ in range(4))
    hub.ingest("population", [p1, p2, q1, q2, relation(p1, p2, "partner", "2025-01-01"),
                              relation(q1, q2, "partner", "2025-01-01")])  # fmt: skip
    ids = hub.ingest(
        "teams", [plant.case(p1["bsn"], "Stadsbank"), plant.case(q1["bsn"], "Humanitas")]
    )
    hub.wait_drained()
    linked = hub.linked()
    first, second = (only(linked, i)["household_ref"] for i in ids.event_ids)
    assert first != second  # two families, no relation between them: two households
    assert household("1041DD", "4") in (first, second)  # the main one, as published (keyed)
    assert [i["holder"] for i in hub.view(second)["involvements"]] == ["Humanitas"]
    assert [i["holder"] for i in hub.view(first)["involvements"]] == ["Stadsbank"]


def test_a_signal_without_bsn_links_by_name_or_goes_to_review(hub, plant):
    resident = {**plant.person("1051EE", "5"), "family_name": "Jansen", "prefix": "",
                "initials": "M", "birth_date": "1984-02-29"}  # fmt: skip
    hub.ingest("population", [resident])
    named = {**plant.arrears("1051EE", "5", "Zorg", "2026-05-01"),
             "family_name": "Jansen", "initials": "M", "birth_date": "1984-02-29"}  # fmt: skip
    stranger = {**plant.arrears("1051EE", "5", "Energie", "2026-05-02"),
                "family_name": "de Vries", "initials": "K", "birth_date": "1950-07-14"}  # fmt: skip
    ids = hub.ingest("vroegsignalering", [named, stranger]).event_ids
    hub.wait_drained()
    linked = hub.linked()
    assert only(linked, ids[0]) == {"household_ref": household("1051EE", "5"),
                                    "linked_by": "match", "member_change": None}  # fmt: skip
    assert ids[1] not in linked
    [review] = [r for r in hub.records(UNMATCHED) if r.key == ids[1].encode()]
    assert dict(review.headers)["um_reason"] == b"below-threshold"
    assert dict(review.headers)["um_state"] == b"open"


def test_operators_read_a_household_with_a_token_and_every_read_is_audited(hub, plant):
    p = plant.person("1061FF", "6")
    hub.ingest("population", [p])
    hub.wait_drained()
    ref = household("1061FF", "6")
    env = {**os.environ, **hub.settings.to_env(), "WIJKHUB_CLI_OPERATOR_TOKEN": OPERATOR_TOKEN}
    show = [sys.executable, "-m", "wijkhub", "household", "show", ref, "--purpose", "case 42"]
    shown = subprocess.run(show, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["household_ref"] == ref and len(view["members"]) == 1
    assert view["district"]["buurt"].startswith("BU0363")
    assert view["signals"] == [] and view["domains_shown"] == []  # structure only: none asked
    env["WIJKHUB_CLI_OPERATOR_TOKEN"] = "not-the-token-" * 3
    refused = subprocess.run(show, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "401" in refused.stderr
    env["WIJKHUB_CLI_OPERATOR_TOKEN"] = OPERATOR_TOKEN
    no_purpose = subprocess.run([*show[:-2], "--purpose", " "], env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
    assert no_purpose.returncode != 0 and "400" in no_purpose.stderr
    catalog = Catalog()
    entries = [catalog.decode(r.value, AUDIT_ENTRY) for r in hub.records(AUDIT)]
    mine = [(e["actor"], e["allowed"], e["reason"]) for e in entries if e["resource"] == ref]
    assert mine == [
        ("beheerder", True, "purpose: case 42; domains: none"),
        ("unknown", False, "missing or wrong operator token"),
        ("beheerder", False, "no purpose given"),
    ]
    assert audit.verify(entries).intact  # the worker's entries are one unbroken chain
