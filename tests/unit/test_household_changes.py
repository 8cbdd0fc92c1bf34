"""How each kind of event changes the household view."""

import datetime as dt

from wijkhub.streams import household, rules, toewijzing

from builders import (
    IDS,
    arrears,
    case,
    closed,
    consent,
    linked,
    provision,
    shipped_rules,
    snapshot,
    stopped,
)

RULES = shipped_rules()

MAY = dt.date(2026, 5, 1)


def view_after(*events):
    view = household.new_view("H-1")
    for e in events:
        household.apply(view, e)
    return view


def refs(view, kind):
    return sorted(i["ref"] for i in view["involvements"] if i["kind"] == kind)


def diffed(*snapshots):
    """The ToewijzingChanged events the link stage makes of these 301s, as linked events."""
    state: dict = {}
    out = []
    for s in snapshots:
        raw = s["event"]
        key = (raw["subject"]["person_ref"], raw["payload"][1]["provider"])
        result = toewijzing.diff(state.get(key), raw)
        state[key] = result.state
        out += [{**s, "event": e} for e in result.events]
    return out


def test_a_301_snapshot_adds_assignments_and_a_later_one_withdraws_the_missing():
    first, later = snapshot("AGB1", ["1", "2"]), snapshot("AGB1", ["2", "3"], on=MAY)
    view = view_after(*diffed(first))
    assert refs(view, "jeugd") == ["1", "2"]
    for event in diffed(first, later)[2:]:
        household.apply(view, event)
    assert refs(view, "jeugd") == ["2", "3"]


def test_a_snapshot_touches_only_its_own_provider_and_client():
    events = diffed(
        snapshot("AGB1", ["1"]),
        snapshot("AGB2", ["9"]),
        snapshot("AGB1", ["5"], person="P-2"),
        snapshot("AGB1", [], on=MAY),
    )
    assert refs(view_after(*events), "jeugd") == ["5", "9"]


def test_a_definitive_stop_ends_care_and_a_temporary_one_does_not():
    view = view_after(provision("AGB1", "t1"), stopped("AGB1", "t1", reason="20"))
    assert refs(view, "zorg") == ["t1"]
    household.apply(view, stopped("AGB1", "t1"))
    assert refs(view, "zorg") == []


def test_a_closed_case_no_longer_counts_for_duplicate_help():
    view = view_after(case("Team A", "c1"), case("Team B", "c2"), closed("Team B", "c2"))
    assert rules.evaluate(view, RULES, IDS) == []


def test_a_repeated_signal_is_marked_and_does_not_count_as_new():
    since = dt.date(2025, 12, 1)
    view = view_after(
        arrears("Huur", 0, amount=500, since=since), arrears("Huur", 30, amount=400, since=since)
    )
    assert [s["repeated"] for s in view["signals"]] == [False, True]
    higher = view_after(
        arrears("Huur", 0, amount=500, since=since), arrears("Huur", 30, amount=900, since=since)
    )
    assert [s["repeated"] for s in higher["signals"]] == [False, False]


def test_a_repeated_signal_does_not_complete_the_two_creditor_pattern():
    since = dt.date(2025, 12, 1)
    view = view_after(
        arrears("Energie", 0, amount=500, since=since),
        arrears("Energie", 20, amount=500, since=since),
    )
    assert rules.evaluate(view, RULES, IDS) == []


def test_consent_latest_statement_wins_even_when_an_older_one_arrives_late():
    view = view_after(consent(True, dt.date(2026, 5, 1)), consent(False, dt.date(2026, 4, 1)))
    assert view["consent"]["P-1"]["wmo-regie|youth"] == {"given": True, "on": "2026-05-01"}
    household.apply(view, consent(False, dt.date(2026, 6, 1)))
    assert view["consent"]["P-1"]["wmo-regie|youth"]["given"] is False


def test_a_member_who_moved_away_leaves_the_household_they_lived_in():
    joined = linked("nl.wijkhub.population.PersonRegistered", {}, person="P-1", domain="population")
    joined["member_change"] = "joined"
    left = linked(
        "nl.wijkhub.population.PersonRegistered",
        {},
        person="P-1",
        address="2000CD-1",  # the new address: not this household's
        domain="population",
    )
    left["member_change"] = "left"
    view = view_after(joined)
    assert view["members"] == ["P-1"] and view["address_ref"] == "1011AB-5"
    household.apply(view, left)
    assert view["members"] == [] and view["address_ref"] == "1011AB-5"


def test_an_operator_sees_the_structure_and_only_the_domains_asked_for():
    from wijkhub.streams.household import for_operator

    view = {"household_ref": "H-1", "address_ref": "1011AB-7", "district": None,
            "members": ["P1-a"], "member_periods": [], "open_alerts": ["A-1"],
            "updated_at": "2026-03-01T00:00:00+00:00",
            "signals": [{"event_id": "e1", "domain": "debt"}, {"event_id": "e2",
                                                              "domain": "income"}],
            "involvements": [{"kind": "zorg", "domain": "care"}],
            "coordinator": {"team": "wijkteam-noord"},
            "consent": [{"person_ref": "P1-a", "purpose": "wmo-regie"}]}  # fmt: skip
    nothing = for_operator(view, set())
    assert nothing["facts_per_domain"] == {"care": 1, "debt": 1, "income": 1}
    assert (nothing["signals"], nothing["involvements"], nothing["coordinator"],
            nothing["consent"]) == ([], [], None, [])  # fmt: skip
    assert nothing["members"] == ["P1-a"] and nothing["open_alerts"] == ["A-1"]
    debt = for_operator(view, {"debt"})
    assert [s["event_id"] for s in debt["signals"]] == ["e1"] and debt["involvements"] == []
    assert for_operator(view, {"teams"})["coordinator"] == {"team": "wijkteam-noord"}
