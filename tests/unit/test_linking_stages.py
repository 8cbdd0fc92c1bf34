"""Linking: where a person lived when (person stage), who lived together (address stage)."""

import datetime as dt

from wijkhub.streams import address_stage, person_stage, residence
from wijkhub.streams.linking import household_for_address
from wijkhub.streams.matching import Weights, normalise

WEIGHTS = Weights.shipped()
ARREARS = "nl.wijkhub.debt.ArrearsSignal"


def person(*facts):
    """A person stage state from (kind, day, address) facts, each under its own id."""
    state = person_stage.new_state()
    for n, (kind, day, address) in enumerate(facts):
        if kind == "registered":
            state["registrations"][f"r{n}"] = {"address": address, "day": day,
                                               "kind": "woonadres", "value": ""}  # fmt: skip
        else:
            state["endings"][f"e{n}"] = {"day": day, "why": kind}
    return person_stage.periods(state)


# person stage


def test_a_move_ends_the_old_period_where_the_new_one_begins_in_any_order():
    facts = [("registered", "2025-01-01", "A"), ("registered", "2026-03-01", "B")]
    lived = person(*facts)
    assert lived == person(*reversed(facts))
    assert [(p["address_ref"], p["from_"], p["until"]) for p in lived] == [
        ("A", "2025-01-01", "2026-03-01"),
        ("B", "2026-03-01", None),
    ]


def test_events_go_to_the_address_of_their_own_date():
    lived = person(("registered", "2026-03-01", "B"), ("registered", "2025-01-01", "A"))
    assert person_stage.destination("2026-02-10", lived) == "B:A"
    assert person_stage.destination("2026-03-05", lived) == "B:B"
    assert person_stage.destination("2024-06-01", lived) == "B:A"  # before the first: there


def test_a_re_registration_at_the_same_address_is_one_period():
    lived = person(("registered", "2025-01-01", "A"), ("registered", "2025-06-01", "A"))
    assert [(p["from_"], p["until"]) for p in lived] == [("2025-01-01", None)]


def test_unknown_person_waits_and_a_death_keeps_later_events_with_the_household():
    assert person_stage.destination("2026-01-01", person()) == "P"
    lived = person(("registered", "2025-01-01", "A"), ("deceased", "2026-01-01", None))
    assert person_stage.destination("2026-02-01", lived) == "B:A"


def test_after_leaving_the_municipality_events_go_to_the_hand_over_queue_until_return():
    lived = person(("registered", "2025-01-01", "A"), ("departed", "2026-02-01", None),
                   ("registered", "2026-06-01", "B"))  # fmt: skip
    assert person_stage.destination("2026-01-15", lived) == "B:A"  # still lived here then
    assert person_stage.destination("2026-03-01", lived) == "H:2026-02-01"
    assert person_stage.destination("2026-07-01", lived) == "B:B"  # moved back in


# address stage


def register(*residents, relations=()):
    """The register of a building from (person, unit, from, until, kind, match) residents and
    (person, related, started, day) relation changes, as the address stage derives it."""
    state = address_stage.new_state()
    for p, unit, since, until, kind, match in residents:
        state["residents"].setdefault(p, {"gen": 1, "periods": [], "match": match})
        state["residents"][p]["periods"].append(
            {"address_ref": unit, "from_": since, "until": until, "kind": kind}
        )
    for n, (a, b, started, day) in enumerate(relations):
        state["events"][f"rel{n}"] = {
            "gen": 1, "withdrawn": False, "unit": "1011AB-5", "day": day, "value": "",
            "relation": {"pair": sorted((a, b)), "relation": "partner", "started": started},
            "lgen": 0, "link": None}  # fmt: skip
    return address_stage.register(state)


def living(p, unit="1011AB-5", since="2025-01-01", until=None, kind="woonadres", match=None):
    return (p, unit, since, until, kind, match)


def test_people_at_one_address_without_relations_are_one_household():
    reg = register(living("P"), living("Q", since="2025-02-01"))
    main = household_for_address("1011AB-5")
    assert residence.households_at(reg, "1011AB-5", "2025-06-01") == {"P": main, "Q": main}


def test_two_families_at_one_address_are_two_households():
    reg = register(*[living(p) for p in ("P1", "P2", "Q1", "Q2")],
                   relations=[("P1", "P2", True, "2025-01-01"),
                              ("Q1", "Q2", True, "2025-01-01")])  # fmt: skip
    households = residence.households_at(reg, "1011AB-5", "2025-06-01")
    assert households["P1"] == households["P2"] == household_for_address("1011AB-5")
    assert households["Q1"] == households["Q2"] != households["P1"]
    members = address_stage.memberships(reg)
    assert {m["person_ref"] for m in members[households["Q1"]][1]} == {"Q1", "Q2"}
    assert {m["person_ref"] for m in members[households["P1"]][1]} == {"P1", "P2"}


def test_a_relation_that_ends_moves_the_family_back_into_the_main_household():
    reg = register(*[living(p) for p in ("P1", "Q1", "Q2")],
                   relations=[("Q2", "Q1", False, "2025-09-01"),
                              ("Q1", "Q2", True, "2025-03-01")])  # fmt: skip
    main = household_for_address("1011AB-5")
    assert residence.households_at(reg, "1011AB-5", "2025-06-01")["Q1"] != main
    assert residence.households_at(reg, "1011AB-5", "2025-10-01")["Q1"] == main
    q1 = [m for m in address_stage.memberships(reg)[main][1] if m["person_ref"] == "Q1"]
    assert [(m["from"], m["until"]) for m in q1] == [("2025-01-01", "2025-03-01"),
                                                     ("2025-09-01", None)]  # fmt: skip


def test_a_postal_address_never_makes_a_family_and_gets_no_address_signal():
    reg = register(living("P", kind="briefadres"))
    [household] = residence.households_at(reg, "1011AB-5", "2025-06-01").values()
    assert household != household_for_address("1011AB-5")
    signal = residence.link_signal(reg, "1011AB-5", "2025-06-01", None, WEIGHTS, 0.99)
    assert signal == residence.Unmatched("nobody registered at the address on the signal date")


def test_who_moved_out_is_not_in_the_household_after_the_move():
    reg = register(living("P"), living("Q", until="2026-01-01"))
    assert set(residence.households_at(reg, "1011AB-5", "2025-12-31")) == {"P", "Q"}
    assert set(residence.households_at(reg, "1011AB-5", "2026-01-01")) == {"P"}


def signal(day, address="1011AB-5", match=None):
    when = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return {"envelope": {"occurred_at": when, "event_id": f"s{day}"},
            "subject": {"person_ref": None, "address_ref": address, "match": match},
            "payload": (ARREARS, {})}  # fmt: skip


def test_a_signal_is_matched_to_the_resident_by_name_and_date_of_birth():
    father = {"family_name": "Bakker", "prefix": "", "initials": "J", "birth_date": "1970-01-01"}
    son = {**father, "birth_date": "2001-09-30"}
    reg = register(living("F", match=father), living("S", match=son))
    found = residence.decide_link(reg, "1011AB-5", signal("2026-01-05", match=son), WEIGHTS, 0.99)
    assert found.linked_by == "match" and found.probability > 0.99 and found.person_ref == "S"
    stranger = {**son, "family_name": "Visser", "birth_date": dt.date(1960, 2, 2)}
    unknown = signal("2026-01-05", match=stranger)
    result = residence.decide_link(reg, "1011AB-5", unknown, WEIGHTS, 0.99)
    assert result == residence.Unmatched("below-threshold", result.probability)


def test_address_signals_need_exactly_one_household_on_the_signal_date():
    reg = register(living("P", since="2025-03-01"))
    early = residence.link_signal(reg, "1011AB-5", "2025-01-01", None, WEIGHTS, 0.99)
    assert isinstance(early, residence.Unmatched)  # before anyone lived there
    later = residence.link_signal(reg, "1011AB-5", "2025-06-01", None, WEIGHTS, 0.99)
    assert later == residence.Linked(household_for_address("1011AB-5"), "address", unit="1011AB-5")


def test_matching_attributes_are_normalised_with_the_address():
    found = residence.matching_person(
        {"family_name": "Dijk", "prefix": "van", "initials": "J", "birth_date": None}, "1011AB-5-A"
    )
    assert found == normalise(family="van Dijk", initials="J", postcode="1011AB", house="5 A")


def test_a_signal_without_the_toevoeging_still_finds_the_resident_of_the_building():
    upstairs = {"family_name": "Yilmaz", "prefix": "", "initials": "A", "birth_date": "1991-03-14"}
    downstairs = {**upstairs, "family_name": "Kok", "birth_date": "1948-08-01"}
    reg = register(living("U", unit="1011AB-5--2", match=upstairs),
                   living("D", unit="1011AB-5--1", match=downstairs))  # fmt: skip
    found = residence.decide_link(reg, "1011AB-5", signal("2026-01-05", match=upstairs), WEIGHTS,
                                  0.99)  # fmt: skip
    assert found.person_ref == "U" and found.unit == "1011AB-5--2"
    assert found.household_ref == household_for_address("1011AB-5--2")
    result = residence.decide_link(reg, "1011AB-5", signal("2026-01-05"), WEIGHTS, 0.99)
    assert result == residence.Unmatched("several households at the address on the signal date")
    assert residence.building("1011AB-5--2") == "1011AB-5" == residence.building("1011AB-5")


def test_an_event_without_a_name_goes_on_as_it_came_and_one_with_a_name_goes_without_it(
    monkeypatch,
):
    from wijkhub.schemas.registry import RAW_EVENT, Catalog
    from wijkhub.streams.ids import Ids
    from wijkhub.streams.stage import pack
    from wijkhub.testing import tricky

    catalog = Catalog()
    stage = address_stage.AddressStage(
        catalog, WEIGHTS, 0.99, Ids(b"linking-test-id-key-0123456789-abcdef")
    )
    values = [v for _, _, v in tricky().raw_records(b"linking-test-pseudonym-key-012345", catalog)]
    named = [v for v in values if catalog.decode(v, RAW_EVENT)["subject"]["match"]]
    plain = [v for v in values if not catalog.decode(v, RAW_EVENT)["subject"]["match"]
             and not catalog.decode(v, RAW_EVENT)["subject"]["contact"]]  # fmt: skip
    assert named and plain
    for value in named:
        stripped = catalog.decode(stage._strip(pack(value), contact=True), RAW_EVENT)
        assert stripped["subject"]["match"] is None
        assert stripped["envelope"] == catalog.decode(value, RAW_EVENT)["envelope"]
    monkeypatch.setattr(catalog, "encode", None)  # nothing to strip: no copy encoded
    for value in plain:
        assert stage._strip(pack(value), contact=False) == value
