import pytest

from wijkhub.streams.routing import UNROUTED, Router


def test_router_by_postcode_area_and_hand_over_when_uncovered():
    router = Router.parse("a=1000-1049, b=1050-1099")
    assert router.team_for("1011AB-5") == "a"
    assert router.team_for("1050ZZ-1") == "b"
    assert router.team_for("9999AA-1") == UNROUTED
    assert router.team_for(None) == UNROUTED


def test_router_config_errors_are_clear():
    with pytest.raises(ValueError, match="team=1000-1049"):
        Router.parse("nonsense")
