"""The contact card: a pure function of an open alert and the household's facts (the same
card for any order of the facts). The stage's publishing and the erasure of cards are in
test_erasure.py, with the household they use."""

from __future__ import annotations

import random

import pytest

from wijkhub.streams import contact_card, ruleset

RULE = ruleset.load().rules[0]


def fact(eid: str, day: str, person: str | None, kind: str = "X.Signal", **card: str) -> dict:
    stored = {"gen": 1, "withdrawn": False, "id": eid, "day": day, "rank": 0, "name": kind,
              "domain": "debt", "person": person, "payload": {}, "correlation_id": "",
              "received": 0.0}  # fmt: skip
    if card:
        stored["card"] = {**dict.fromkeys(("name", "street", "city", "telephone", "email",
                                           "unit"), ""), **card}  # fmt: skip
    return stored


def entry(*eids: str, state: str = "open") -> dict:
    return {"state": state, "team": "wijkteam-centrum", "facts": [{"event_id": e} for e in eids]}


FACTS = {
    "e1": fact("e1", "2026-01-05", None, name="A. Yilmaz", telephone="06-11111111",
               unit="1038VB-39"),
    "e2": fact("e2", "2026-02-05", None, telephone="06-22222222", email="a@voorbeeld.nl",
               unit="1038VB-39-A-2", street="Dorpsstraat", city="Amsterdam"),
    "e3": fact("e3", "2026-02-06", "P-1"),  # a fact about P-1 without contact details
    "r1": fact("r1", "2025-01-01", "P-1", unit="1038VB-39", telephone="06-33333333"),
    "r2": fact("r2", "2025-06-01", "P-1", name="B de Boer", unit="1038VB-41"),
}  # fmt: skip


def test_the_card_lists_each_person_with_what_the_newest_source_supplied():
    found = contact_card.derive("A-1", entry("e1", "e2", "e3"), RULE, "H-1", FACTS)
    assert found is not None
    assert found["basis"] == RULE.contact_basis and found["team"] == "wijkteam-centrum"
    assert found["persons"] == [
        # a signal without BSN is a person of its own, with what that signal supplied
        {"person_ref": None, "name": "", "street": "Dorpsstraat", "house_number": "39 A-2",
         "postcode": "1038VB", "city": "Amsterdam", "telephone": "06-22222222",
         "email": "a@voorbeeld.nl", "sources": ["debt"]},
        {"person_ref": None, "name": "A. Yilmaz", "street": "", "house_number": "39",
         "postcode": "1038VB", "city": "", "telephone": "06-11111111", "email": "",
         "sources": ["debt"]},
        # by pseudonym: named by the household's other facts about the person, the newest
        # address whole (not the older fact's house number)
        {"person_ref": "P-1", "name": "B de Boer", "street": "", "house_number": "41",
         "postcode": "1038VB", "city": "", "telephone": "06-33333333", "email": "",
         "sources": ["debt"]},
    ]  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_the_card_is_the_same_for_any_order_of_the_facts(seed: int):
    items = list(FACTS.items())
    random.Random(seed).shuffle(items)
    expected = contact_card.derive("A-1", entry("e1", "e2", "e3"), RULE, "H-1", FACTS)
    assert contact_card.derive("A-1", entry("e3", "e2", "e1"), RULE, "H-1", dict(items)) == (
        expected
    )


def test_a_person_known_by_pseudonym_without_an_address_gets_the_registered_one():
    facts = {"e3": FACTS["e3"], "r2": {**FACTS["r2"], "card": {**FACTS["r2"]["card"],
                                                              "unit": ""}}}  # fmt: skip
    found = contact_card.derive("A-1", entry("e3"), RULE, "H-1", facts, {"P-1": "1011AB-7"})
    assert found is not None
    [person] = found["persons"]
    assert (person["name"], person["postcode"], person["house_number"], person["sources"]) == (
        "B de Boer", "1011AB", "7", ["debt", "population"])  # fmt: skip


def test_a_closed_alert_or_one_whose_facts_are_gone_has_no_card():
    assert contact_card.derive("A-1", entry("e1", state="resolved"), RULE, "H-1", FACTS) is None
    withdrawn = {**FACTS, "e1": {**FACTS["e1"], "withdrawn": True}}
    assert contact_card.derive("A-1", entry("e1"), RULE, "H-1", withdrawn) is None
    assert contact_card.derive("A-1", entry("e3"), RULE, "H-1", {"e3": FACTS["e3"]}) is None
    # a person known by pseudonym with nothing supplied but where the BRP registers them
    [person] = contact_card.derive("A-1", entry("e3"), RULE, "H-1", {"e3": FACTS["e3"]},
                                   {"P-1": "1011AB-7"})["persons"]  # fmt: skip
    assert (person["name"], person["postcode"], person["sources"]) == (
        "", "1011AB", ["population"])  # fmt: skip
