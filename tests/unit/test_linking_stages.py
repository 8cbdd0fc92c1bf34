"""Linking: where a person lived when (person stage), who lived together (address stage)."""

import datetime as dt

from wijkhub.streams import linking, residence
from wijkhub.streams.linking import Park, Route, Unlinkable, household_for_address
from wijkhub.streams.matching import Weights, normalise

WEIGHTS = Weights.shipped()
REGISTERED = "nl.wijkhub.population.PersonRegistered"
DECEASED = "nl.wijkhub.population.PersonDeceased"
RELATION = "nl.wijkhub.population.RelationChanged"
ARREARS = "nl.wijkhub.debt.ArrearsSignal"


def event(name, day, person=None, address=None, match=None, **payload):
    when = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return {
        "envelope": {"occurred_at": when, "event_id": f"{name}{day}{person}"},
        "subject": {"person_ref": person, "address_ref": address, "match": match},
        "payload": (name, payload),
    }


def registered(person, address, day, kind="woonadres", match=None):
    return event(REGISTERED, day, person, address, match, address_kind=kind)


# person stage


def test_a_move_arrives_at_the_new_address_and_leaves_the_old_one():
    state = linking.new_person()
    assert linking.route(registered("P", "A", "2025-01-01"), state) == [Route("A", "arrived")]
    assert linking.route(registered("P", "B", "2026-03-01"), state) == [
        Route("B", "arrived"),
        Route("A", "left"),
    ]


def test_events_go_to_the_address_of_their_date_even_when_they_arrive_late():
    state = linking.new_person()
    linking.route(registered("P", "A", "2025-01-01"), state)
    linking.route(registered("P", "B", "2026-03-01"), state)
    before, after = event(ARREARS, "2026-02-10", "P"), event(ARREARS, "2026-03-05", "P")
    assert linking.route(before, state) == [Route("A", "event")]
    assert linking.route(after, state) == [Route("B", "event")]


def test_a_late_registration_is_inserted_in_history_with_its_end():
    state = linking.new_person()
    linking.route(registered("P", "B", "2026-03-01"), state)
    assert linking.route(registered("P", "A", "2025-01-01"), state) == [
        Route("A", "arrived", until="2026-03-01")
    ]
    assert linking.route(event(ARREARS, "2025-06-01", "P"), state) == [Route("A", "event")]


def test_a_replayed_registration_changes_nothing():
    state = linking.new_person()
    linking.route(registered("P", "A", "2025-01-01"), state)
    before = repr(state)
    assert linking.route(registered("P", "A", "2025-01-01"), state) == [Route("A", "arrived")]
    assert repr(state) == before


def test_unknown_person_waits_death_leaves_address_only_goes_by_address():
    assert linking.route(event(ARREARS, "2026-01-01", "P"), linking.new_person()) == Park("P")
    state = linking.new_person()
    linking.route(registered("P", "A", "2025-01-01"), state)
    assert linking.route(event(DECEASED, "2026-01-01", "P"), state) == [Route("A", "left")]
    assert linking.route(event(ARREARS, "2026-01-01", None, "X"), state) == [Route("X", "event")]
    assert isinstance(linking.route(event(ARREARS, "2026-01-01"), state), Unlinkable)


# address stage


def at(*events_and_roles, address="1011AB-5"):
    state = residence.new_address()
    for e, role in events_and_roles:
        residence.apply(state, address, role, None, e)
    return state


def test_people_at_one_address_without_relations_are_one_household():
    state = at((registered("P", "1011AB-5", "2025-01-01"), "arrived"),
               (registered("Q", "1011AB-5", "2025-02-01"), "arrived"))  # fmt: skip
    main = household_for_address("1011AB-5")
    assert residence.households_at(state, "1011AB-5", "2025-06-01") == {"P": main, "Q": main}


def test_two_families_at_one_address_are_two_households():
    state = at(
        *[(registered(p, "1011AB-5", "2025-01-01"), "arrived") for p in ("P1", "P2", "Q1", "Q2")],
        (event(RELATION, "2025-01-01", "P1", related_person_ref="P2", relation="partner",
               change="started"), "event"),
        (event(RELATION, "2025-01-01", "Q1", related_person_ref="Q2", relation="ouder",
               change="started"), "event"),
    )  # fmt: skip
    households = residence.households_at(state, "1011AB-5", "2025-06-01")
    assert households["P1"] == households["P2"] == household_for_address("1011AB-5")
    assert households["Q1"] == households["Q2"] != households["P1"]


def test_a_postal_address_never_makes_a_family_and_gets_no_address_signal():
    state = at((registered("P", "1011AB-5", "2025-01-01", kind="briefadres"), "arrived"))
    [household] = residence.households_at(state, "1011AB-5", "2025-06-01").values()
    assert household != household_for_address("1011AB-5")
    signal = residence.link_signal(state, "1011AB-5", "2025-06-01", None, WEIGHTS, 0.99)
    assert signal == residence.Unmatched("nobody registered at the address on the signal date")


def test_who_moved_out_is_not_in_the_household_after_the_move():
    state = at((registered("P", "1011AB-5", "2025-01-01"), "arrived"),
               (registered("Q", "1011AB-5", "2025-01-01"), "arrived"),
               (registered("Q", "2000CD-1", "2026-01-01"), "left"))  # fmt: skip
    assert set(residence.households_at(state, "1011AB-5", "2025-12-31")) == {"P", "Q"}
    assert set(residence.households_at(state, "1011AB-5", "2026-01-01")) == {"P"}


def test_a_signal_is_matched_to_the_resident_by_name_and_date_of_birth():
    father = {"family_name": "Bakker", "prefix": "", "initials": "J",
              "birth_date": dt.date(1970, 1, 1)}  # fmt: skip
    son = {**father, "birth_date": dt.date(2001, 9, 30)}
    state = at((registered("F", "1011AB-5", "2025-01-01", match=father), "arrived"),
               (registered("S", "1011AB-5", "2025-01-01", match=son), "arrived"))  # fmt: skip
    signal = event(ARREARS, "2026-01-05", None, "1011AB-5", match=son)
    linked = residence.decide_link(state, "1011AB-5", "event", signal, WEIGHTS, 0.99)
    assert linked.linked_by == "match" and linked.probability > 0.99
    stranger = {**son, "family_name": "Visser", "birth_date": dt.date(1960, 2, 2)}
    unknown = event(ARREARS, "2026-01-05", None, "1011AB-5", match=stranger)
    result = residence.decide_link(state, "1011AB-5", "event", unknown, WEIGHTS, 0.99)
    assert result == residence.Unmatched("below-threshold", result.probability)


def test_address_signals_need_exactly_one_household_on_the_signal_date():
    state = at((registered("P", "1011AB-5", "2025-03-01"), "arrived"))
    early = residence.link_signal(state, "1011AB-5", "2025-01-01", None, WEIGHTS, 0.99)
    assert isinstance(early, residence.Unmatched)  # before anyone lived there
    later = residence.link_signal(state, "1011AB-5", "2025-06-01", None, WEIGHTS, 0.99)
    assert later == residence.Linked(household_for_address("1011AB-5"), "address")


def test_matching_attributes_are_normalised_with_the_address():
    person = residence.matching_person(
        {"family_name": "Dijk", "prefix": "van", "initials": "J", "birth_date": None}, "1011AB-5-A"
    )
    assert person == normalise(family="van Dijk", initials="J", postcode="1011AB", house="5 A")


def test_a_signal_without_the_toevoeging_still_finds_the_resident_of_the_building():
    upstairs = {"family_name": "Yilmaz", "prefix": "", "initials": "A",
                "birth_date": dt.date(1991, 3, 14)}  # fmt: skip
    downstairs = {**upstairs, "family_name": "Kok", "birth_date": dt.date(1948, 8, 1)}
    state = residence.new_address()
    residence.apply(state, "1011AB-5--2", "arrived", None,
                    registered("U", "1011AB-5--2", "2025-01-01", match=upstairs))  # fmt: skip
    residence.apply(state, "1011AB-5--1", "arrived", None,
                    registered("D", "1011AB-5--1", "2025-01-01", match=downstairs))  # fmt: skip
    signal = event(ARREARS, "2026-01-05", None, "1011AB-5", match=upstairs)
    linked = residence.decide_link(state, "1011AB-5", "event", signal, WEIGHTS, 0.99)
    assert linked.person_ref == "U"
    assert linked.household_ref == household_for_address("1011AB-5--2")
    unnamed = event(ARREARS, "2026-01-05", None, "1011AB-5")
    result = residence.decide_link(state, "1011AB-5", "event", unnamed, WEIGHTS, 0.99)
    assert result == residence.Unmatched("several households at the address on the signal date")
    assert residence.building("1011AB-5--2") == "1011AB-5" == residence.building("1011AB-5")


def test_after_leaving_the_municipality_events_go_to_the_hand_over_queue():
    departed = "nl.wijkhub.population.PersonDeparted"
    state = linking.new_person()
    linking.route(registered("P", "A", "2025-01-01"), state)
    assert linking.route(event(departed, "2026-02-01", "P"), state) == [Route("A", "left")]
    before = event(ARREARS, "2026-01-15", "P")
    assert linking.route(before, state) == [Route("A", "event")]  # still lived here then
    after = event(ARREARS, "2026-03-01", "P")
    assert linking.route(after, state) == linking.HandOver("P", "2026-02-01")
    linking.route(registered("P", "B", "2026-06-01"), state)  # moved back in
    assert linking.route(event(ARREARS, "2026-07-01", "P"), state) == [Route("B", "event")]
