"""Person matching without a BSN: normal forms, comparison levels, decisions."""

from wijkhub.streams.matching import (
    AGREE,
    DISAGREE,
    FIELDS,
    MISSING,
    PARTIAL,
    Matcher,
    Weights,
    compare,
    decide,
    normalise,
)

WEIGHTS = Weights.shipped()


def level(a, b, name):
    return compare(a, b)[FIELDS.index(name)]


def test_dutch_names_and_dates_have_one_normal_form():
    a = normalise(
        family="Dijk", prefix="van", initials="J.P.", dob="1985-06-15", postcode="1234 ab"
    )
    b = normalise(family="van Dijk", given="Jan Pieter", dob="19850615", postcode="1234AB")
    assert a["family"] == b["family"] == "vandijk"
    assert a["initials"] == b["initials"] == "jp"
    assert a["dob"] == b["dob"] == "19850615" and a["postcode"] == "1234ab"
    assert normalise(family="Çelik")["family"] == "celik"


def test_comparison_levels():
    a = normalise(family="Jansen", dob="1980-03-04", house="12 A")
    assert level(a, normalise(family="Jansen"), "family") == AGREE
    assert level(a, normalise(family="Janssen"), "family") == AGREE  # JW 0.97
    assert level(a, normalise(family="Pietersen"), "family") == DISAGREE
    assert level(a, normalise(dob="1980-04-03"), "dob") == PARTIAL  # day and month swapped
    assert level(a, normalise(dob="1981-03-04"), "dob") == PARTIAL  # one digit
    assert level(a, normalise(dob="1975-11-20"), "dob") == DISAGREE
    assert level(a, normalise(house="12"), "house") == MISSING  # toevoeging not given
    assert level(a, normalise(house="12 B"), "house") == PARTIAL  # another door
    assert level(a, normalise(), "dob") == MISSING


def test_the_right_resident_is_found_and_a_relative_is_not_taken_for_them():
    father = normalise(
        family="Bakker", given="Johan", dob="1970-01-01", postcode="1011AB", house="5"
    )
    son = normalise(family="Bakker", given="Joris", dob="2001-09-30", postcode="1011AB", house="5")
    signal = normalise(
        family="Bakker", initials="J", dob="2001-09-30", postcode="1011AB", house="5"
    )
    decision = decide(WEIGHTS, signal, {"father": father, "son": son})
    assert (decision.person_ref, decision.reason) == ("son", "matched")
    no_dob = normalise(family="Bakker", initials="J", postcode="1011AB", house="5")
    assert decide(WEIGHTS, no_dob, {"father": father, "son": son}).person_ref is None


def test_below_threshold_and_no_candidates_are_not_guesses():
    known = normalise(family="Smit", given="Anna", dob="1990-01-01", postcode="1011AB", house="1")
    other = normalise(family="Visser", initials="K", dob="1955-05-05", postcode="1011AB", house="1")
    assert decide(WEIGHTS, other, {"p": known}).reason == "below-threshold"
    assert decide(WEIGHTS, other, {}).reason == "no-candidates"


def test_the_incremental_matcher_blocks_and_forgets():
    m = Matcher(WEIGHTS)
    person = normalise(family="Smit", given="Anna", dob="1990-01-01", postcode="1011AB", house="1")
    m.add("p1", person)
    probe = normalise(family="Smit", initials="A", dob="1990-01-01", postcode="1011AB", house="1")
    assert m.decide(probe).person_ref == "p1"
    m.remove("p1")
    assert m.decide(probe).reason == "no-candidates"


def test_weights_round_trip_through_json():
    assert Weights.from_json(WEIGHTS.to_json()) == WEIGHTS
    assert WEIGHTS.log_ratio["dob"][AGREE] > 0 > WEIGHTS.log_ratio["dob"][DISAGREE]
