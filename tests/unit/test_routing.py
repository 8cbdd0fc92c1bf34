"""Alert routing as data: specialised team, CBS district, fallback."""

import pytest

from wijkhub.streams.routing import Route, Router, RoutingError

ROUTER = Router.load()
NOORD = {"buurt": "BU03630101", "wijk": "WK036301", "gemeente": "GM0363", "year": 2025}


def test_district_routes_to_its_team_and_a_buurt_entry_wins_over_its_wijk():
    assert ROUTER.route("VS-ARREARS-2-CREDITORS-90D", NOORD) == Route("wijkteam-noord", "wijk")
    special = Router.parse("fallback: f\ndistricts: {noord: [WK036301], parkbuurt: [BU03630101]}")
    assert special.route("R", NOORD) == Route("parkbuurt", "buurt")


def test_specialised_team_by_rule_and_fallback_when_no_team_covers_the_district():
    assert ROUTER.route("VS-CRISIS-SIGNAL", NOORD).team == "schuldhulp-crisisteam"
    elsewhere = {**NOORD, "buurt": "BU05990101", "wijk": "WK059901"}
    assert ROUTER.route("DH-TWO-HOLDERS-SAME-HELP", elsewhere) == Route(
        "wijkteam-centraal", "fallback"
    )
    assert ROUTER.route("DH-TWO-HOLDERS-SAME-HELP", None).routed_by == "fallback"


def test_routing_file_errors_are_clear():
    with pytest.raises(RoutingError, match="needs a fallback team"):
        Router.parse("districts: {}")
    with pytest.raises(RoutingError, match="'1011' is not a CBS wijk"):
        Router.parse("fallback: f\ndistricts: {a: ['1011']}")
    with pytest.raises(RoutingError, match="routed to both a and b"):
        Router.parse("fallback: f\ndistricts: {a: [WK036300], b: [WK036300]}")
