import pytest

from wijkhub.streams import linking
from wijkhub.streams.routing import UNROUTED, Router


def raw(person=None, address=None, name="nl.wijkhub.debt.ArrearsSignal"):
    return {"subject": {"person_ref": person, "address_ref": address}, "payload": (name, {})}


def test_registration_gives_the_household_at_the_address():
    rec = linking.person_record(raw("P-1", "1011AB-5", linking.PERSON_REGISTERED))
    assert rec == {
        "address_ref": "1011AB-5",
        "household_ref": linking.household_for_address("1011AB-5"),
    }
    assert linking.person_record(raw("P-1", "1011AB-5")) is None


def test_known_person_links_by_person_then_address_then_parks():
    known = {"address_ref": "x", "household_ref": "H-9"}
    assert linking.decide(raw("P-1", "1011AB-5"), known) == linking.Link("H-9", "person")
    by_address = linking.decide(raw(None, "1011AB-5"), None)
    assert by_address == linking.Link(linking.household_for_address("1011AB-5"), "address")
    assert linking.decide(raw("P-1", None), None) == linking.Park("P-1")


def test_router_by_postcode_area_and_hand_over_when_uncovered():
    router = Router.parse("a=1000-1049, b=1050-1099")
    assert router.team_for("1011AB-5") == "a"
    assert router.team_for("1050ZZ-1") == "b"
    assert router.team_for("9999AA-1") == UNROUTED
    assert router.team_for(None) == UNROUTED


def test_router_config_errors_are_clear():
    with pytest.raises(ValueError, match="team=1000-1049"):
        Router.parse("nonsense")
