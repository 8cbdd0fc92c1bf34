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


def action(alert_id, kind, outcome=None, team="wijkteam-noord", day=40, action_id=None, **detail):
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day)
    if kind == "contact_attempt":  # a valid attempt on the day it is recorded, unless told
        detail = {"contact_kind": "Telefoon", "contact_on": at.date().isoformat(),
                  "day_part": "Ochtend", "reached": False, **detail}  # fmt: skip
    return {
        "action_id": action_id or f"{alert_id}-{kind}-{day}",
        "alert_id": alert_id,
        "household_ref": "H-1",
        "action": kind,
        "outcome": outcome,
        **lifecycle.NO_DETAILS,
        **detail,
        "actor": "j.jansen",
        "team": team,
        "at": at,
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


def attempt(aid, day, on, day_part, reached, kind="Telefoon"):
    return action(aid, "contact_attempt", day=day, contact_kind=kind, contact_on=on,
                  day_part=day_part, reached=reached)  # fmt: skip


def two_creditor_alert() -> tuple[dict, str]:
    """A household's view with one open two-creditor alert, and the alert's id."""
    view = household.new_view("H-1")
    [raised] = changes(view, arrears("Huur", 0), arrears("Energie", 10))
    return view, raised.alert_id


def test_contact_attempts_warm_handover_and_end_result_in_ddas_terms():
    view, aid = two_creditor_alert()
    first = lifecycle.act(view, attempt(aid, 41, "2026-02-11", "Ochtend", False), BY_ID)
    assert (first.kind, first.acknowledged_now, first.alert["state"]) == (
        "contact_attempted", True, "acknowledged")  # fmt: skip
    second = lifecycle.act(view, attempt(aid, 42, "2026-02-12", "Middag", True, "Huisbezoek"),
                           BY_ID)  # fmt: skip
    assert [
        (a["kind"], a["on"], a["day_part"], a["reached"]) for a in second.alert["contact_attempts"]
    ] == [
        ("Telefoon", "2026-02-11", "Ochtend", False),
        ("Huisbezoek", "2026-02-12", "Middag", True),
    ]
    handed = lifecycle.act(view, action(aid, "warm_handover", day=43), BY_ID)
    assert (handed.kind, handed.alert["warm_handover"]) == ("handed_over", True)
    again = lifecycle.act(view, action(aid, "warm_handover", day=44), BY_ID)
    assert again.code == "already-handed-over"
    result = "Vervolghulp en/of verwijzing financieel"
    done = lifecycle.act(view, action(aid, "resolve", "help_accepted", day=45, end_result=result),
                         BY_ID)  # fmt: skip
    assert (done.alert["resolution"], done.alert["end_result"]) == ("help_accepted", result)
    record = rules.alert_record(aid, done.alert, done.rule, "H-1", "0363", "c", done.kind)
    decoded = Catalog().decode(Catalog().encode(ALERT, record), ALERT)
    found = [(a["kind"], a["on"], a["reached"], a["actor"]) for a in decoded["contact_attempts"]]
    assert found == [
        ("Telefoon", dt.date(2026, 2, 11), False, "j.jansen"),
        ("Huisbezoek", dt.date(2026, 2, 12), True, "j.jansen")]  # fmt: skip
    assert (decoded["warm_handover"], decoded["end_result"]) == (True, result)


def test_attempts_and_end_results_outside_the_ddas_lists_are_refused():
    view, aid = two_creditor_alert()
    refusals = [
        lifecycle.act(view, action(aid, "contact_attempt", contact_kind="Duif"), BY_ID),
        lifecycle.act(view, action(aid, "contact_attempt", day_part="Nacht"), BY_ID),
        lifecycle.act(view, action(aid, "contact_attempt", reached=None), BY_ID),
        lifecycle.act(view, action(aid, "contact_attempt", contact_on="gisteren"), BY_ID),
        lifecycle.act(view, action(aid, "contact_attempt", contact_on="2026-12-31"), BY_ID),
        lifecycle.act(view, action(aid, "resolve", "help_accepted", end_result="Opgelost"), BY_ID),
    ]
    assert [r.code for r in refusals] == [
        "bad-contact-kind",
        "bad-day-part",
        "bad-reached",
        "bad-contact-date",
        "future-contact",
        "bad-end-result",
    ]
    assert view["open_alerts"][aid]["revision"] == 1


def test_attempts_recorded_in_any_order_or_replayed_give_the_same_alert():
    """Order independence: the attempts are a set, listed by their own date and part of day;
    a replayed action is applied once."""
    import itertools

    base, aid = two_creditor_alert()
    recorded = [attempt(aid, 50, "2026-02-12", "Avond", False),
                attempt(aid, 51, "2026-02-10", "Middag", False, "Mail"),
                attempt(aid, 52, "2026-02-12", "Ochtend", True, "Huisbezoek"),
                action(aid, "warm_handover", day=53)]  # fmt: skip
    finals = set()
    for order in itertools.permutations(recorded):
        import copy

        view = copy.deepcopy(base)
        for a in [*order, order[0], order[-1]]:  # and two redeliveries
            lifecycle.act(view, a, BY_ID)
        entry = view["open_alerts"][aid]
        finals.add(
            repr([(a["on"], a["day_part"], a["kind"]) for a in entry["contact_attempts"]])
            + repr((entry["warm_handover"], entry["state"], entry["revision"]))
        )
    assert finals == {
        "[('2026-02-10', 'Middag', 'Mail'), ('2026-02-12', 'Ochtend', 'Huisbezoek'), "
        "('2026-02-12', 'Avond', 'Telefoon')](True, 'acknowledged', 5)"
    }
