"""Alert lifecycle: raise once, update and escalate on new evidence, team actions,
auto-resolve, expiry, cooldown, replay-safe."""

import datetime as dt

from wijkhub.schemas.registry import ALERT, Catalog
from wijkhub.streams import household, lifecycle, rules

from builders import IDS, arrears, case, closed, shipped_rules

RULES = shipped_rules()
BY_ID = {r.id: r for r in RULES}


def changes(view, *events):
    found = []
    for e in events:
        if household.apply(view, e):
            holding = rules.holding(view, RULES, IDS)
            found += lifecycle.step(view, holding, BY_ID, lambda r, _aid: "wijkteam-noord", 1_000)
    return found


def steps(view, *events):
    return [(c.kind, c.rule.id) for c in changes(view, *events)]


def action(alert_id, kind, outcome=None, team="wijkteam-noord", day=40, action_id=None):
    return {
        "action_id": action_id or f"{alert_id}-{kind}-{day}",
        "alert_id": alert_id,
        "household_ref": "H-1",
        "action": kind,
        "outcome": outcome,
        "actor": "j.jansen",
        "team": team,
        "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day),
        "correlation_id": "c",
    }


def test_raised_once_then_escalated_by_a_third_creditor_and_replay_changes_nothing():
    view = household.new_view("H-1")
    events = [arrears("Huur", 0), arrears("Energie", 10), arrears("Water", 20)]
    [raised] = changes(view, *events[:2])
    assert (raised.kind, raised.alert["severity"], raised.alert["team"]) == (
        "raised", "high", "wijkteam-noord")  # fmt: skip
    [escalated] = changes(view, events[2])
    assert (escalated.kind, escalated.alert_id) == ("escalated", raised.alert_id)
    assert escalated.alert["severity"] == "critical" and escalated.alert["revision"] == 2
    assert len(escalated.alert["facts"]) == 3
    assert steps(view, *events) == []  # a replay: nothing


def test_a_later_creditor_outside_the_window_does_not_change_the_alert():
    view = household.new_view("H-1")
    steps(view, arrears("Huur", 0), arrears("Energie", 10))
    assert steps(view, arrears("Water", 200)) == []


def test_duplicate_help_resolves_itself_when_the_overlap_ends_and_cooldown_holds():
    view = household.new_view("H-1")
    assert steps(view, case("Team A", "c1"), case("Team B", "c2")) == [
        ("raised", "DH-TWO-HOLDERS-SAME-HELP")
    ]
    assert steps(view, closed("Team B", "c2")) == [("resolved", "DH-TWO-HOLDERS-SAME-HELP")]
    assert view["open_alerts"] == {}
    # the same overlap again within the cooldown (30 days): no new alert
    again = case("Team B", "c3")
    assert steps(view, again) == []


def test_early_detection_does_not_auto_resolve():
    view = household.new_view("H-1")
    steps(view, arrears("Huur", 0), arrears("Energie", 10))
    assert steps(view, case("Team A", "c1")) == []
    assert len(view["open_alerts"]) == 1


def test_claim_acknowledge_and_resolve_with_an_outcome_each_publish_a_change():
    view = household.new_view("H-1")
    [raised] = changes(view, arrears("Huur", 0), arrears("Energie", 10))
    aid = raised.alert_id
    claimed = lifecycle.act(view, action(aid, "claim"), BY_ID)
    assert (claimed.kind, claimed.alert["claimed_by"], claimed.alert["state"]) == (
        "claimed", "j.jansen", "open")  # fmt: skip
    acked = lifecycle.act(view, action(aid, "acknowledge", day=41), BY_ID)
    assert acked.kind == "acknowledged" and acked.acknowledged_now
    day_41 = dt.datetime(2026, 2, 11, tzinfo=dt.UTC)  # the action's own time, in ms
    assert (acked.alert["acknowledged_at"], acked.alert["revision"]) == (
        int(day_41.timestamp() * 1000), 3)  # fmt: skip
    again = lifecycle.act(view, action(aid, "acknowledge", day=42), BY_ID)
    assert again == lifecycle.Refused("not-open", "the alert is already acknowledged")
    done = lifecycle.act(view, action(aid, "resolve", "help_accepted", day=43), BY_ID)
    assert (done.kind, done.alert["state"], done.alert["resolution"]) == (
        "resolved", "resolved", "help_accepted")  # fmt: skip
    assert view["open_alerts"] == {}
    late = lifecycle.act(view, action(aid, "claim", day=44), BY_ID)
    assert isinstance(late, lifecycle.Refused) and late.code == "already-resolved"


def test_a_redelivered_action_is_applied_once():
    view = household.new_view("H-1")
    [raised] = changes(view, arrears("Huur", 0), arrears("Energie", 10))
    first = action(raised.alert_id, "claim")
    assert lifecycle.act(view, first, BY_ID).kind == "claimed"
    assert lifecycle.act(view, first, BY_ID) is None


def test_actions_are_refused_for_another_team_a_bad_outcome_or_contact_on_early_detection():
    view = household.new_view("H-1")
    [raised] = changes(view, arrears("Huur", 0), arrears("Energie", 10))
    aid = raised.alert_id
    refusals = [
        lifecycle.act(view, action(aid, "claim", team="wijkteam-zuid"), BY_ID),
        lifecycle.act(view, action(aid, "resolve", "opgelost"), BY_ID),
        lifecycle.act(view, action(aid, "contact_made"), BY_ID),
        lifecycle.act(view, action("A-unknown", "claim"), BY_ID),
        lifecycle.act(view, action(aid, "expire"), BY_ID),
    ]
    expected = ["other-team", "bad-outcome", "not-duplicate-help", "unknown-alert", "not-expired"]
    assert [r.code for r in refusals] == expected
    assert view["open_alerts"][aid]["revision"] == 1  # nothing changed


def test_contact_made_on_duplicate_help_acknowledges_it():
    view = household.new_view("H-1")
    [raised] = changes(view, case("Team A", "c1"), case("Team B", "c2"))
    made = lifecycle.act(view, action(raised.alert_id, "contact_made"), BY_ID)
    assert made.kind == "contact_made" and made.acknowledged_now
    assert made.alert["state"] == "acknowledged" and made.alert["contact_made_at"]


def test_duplicate_help_expires_two_years_after_it_was_raised():
    view = household.new_view("H-1")
    [raised] = changes(view, case("Team A", "c1"), case("Team B", "c2"))
    expires = raised.rule.expires_on(raised.alert["on"])
    assert expires == dt.date.fromisoformat(raised.alert["on"]) + dt.timedelta(days=730)
    record = rules.alert_record(raised.alert_id, raised.alert, raised.rule, "H-1", "0363", "c",
                                "raised")  # fmt: skip
    assert record["expires_at"].date() == expires
    day_before = dt.datetime.combine(expires, dt.time(), dt.UTC) - dt.timedelta(days=1)
    assert steps(view, arrears("Huur", 0, when=day_before)) == []
    # an unrelated event two years later, in event time: the alert ends, resolved "expired"
    [ended] = changes(view, arrears("Huur", 1, when=day_before + dt.timedelta(days=1)))
    assert (ended.kind, ended.alert["resolution"]) == ("expired", "expired")
    assert view["open_alerts"] == {}


def test_every_change_encodes_as_the_published_alert_schema():
    view = household.new_view("H-1")
    [raised] = changes(view, case("Team A", "c1"), case("Team B", "c2"))
    made = lifecycle.act(view, action(raised.alert_id, "contact_made"), BY_ID)
    catalog = Catalog()
    for change in (raised, made):
        record = rules.alert_record(change.alert_id, change.alert, change.rule, "H-1", "0363",
                                    "c", change.kind)  # fmt: skip
        decoded = catalog.decode(catalog.encode(ALERT, record), ALERT)
        assert (decoded["change"], decoded["revision"]) == (change.kind, change.alert["revision"])
    assert decoded["contact_made_at"] is not None and decoded["state"] == "acknowledged"


def test_the_household_stage_accepts_exactly_the_actions_the_inbox_offers():
    """One state machine: in every state an alert can reach by team actions, an action
    is applied if and only if :func:`lifecycle.allowed` offers it."""
    import copy
    import itertools

    for (events, family), path in itertools.product(
        [([arrears("Huur", 0), arrears("Energie", 10)], "early_detection"),
         ([case("Team A", "c1"), case("Team B", "c2")], "duplicate_help")],
        itertools.product(lifecycle.TEAM_ACTIONS, repeat=2),
    ):  # fmt: skip
        view = household.new_view("H-1")
        [raised] = changes(view, *events)
        aid = raised.alert_id
        for n, kind in enumerate([*path, *lifecycle.TEAM_ACTIONS]):
            entry = view["open_alerts"].get(aid) or {"state": "resolved"}
            offered = lifecycle.allowed(entry, family)
            probe = copy.deepcopy(view)
            done = lifecycle.act(probe, action(aid, kind, "help_accepted", day=40 + n), BY_ID)
            assert isinstance(done, lifecycle.Change) == (kind in offered), (path, kind, done)
            if n < len(path):
                lifecycle.act(view, action(aid, kind, "help_accepted", day=40 + n), BY_ID)


def test_a_second_claim_is_refused_like_the_inbox_refuses_to_offer_it():
    view = household.new_view("H-1")
    [raised] = changes(view, arrears("Huur", 0), arrears("Energie", 10))
    assert lifecycle.act(view, action(raised.alert_id, "claim"), BY_ID).kind == "claimed"
    again = lifecycle.act(view, action(raised.alert_id, "claim", action_id="other"), BY_ID)
    assert again.code == "already-claimed"
