"""Alert lifecycle: raise once, update on new evidence, auto-resolve, cooldown, replay-safe."""

from wijkhub.streams import household, lifecycle, rules

from helpers import arrears, case, closed, shipped_rules

RULES = shipped_rules()
BY_ID = {r.id: r for r in RULES}


def steps(view, *events):
    found = []
    for e in events:
        if household.apply(view, e):
            found += [(c.kind, c.rule.id) for c in
                      lifecycle.step(view, rules.holding(view, RULES), BY_ID)]  # fmt: skip
    return found


def test_raised_once_then_updated_with_new_evidence_not_raised_again():
    view = household.new_view("H-1")
    assert steps(view, arrears("Huur", 0), arrears("Energie", 10)) == [
        ("raised", "VS-ARREARS-2-CREDITORS-90D")
    ]
    assert steps(view, arrears("Water", 20)) == []  # same pair still the first that holds
    assert steps(view, arrears("Huur", 0)) == []  # a replay changes nothing


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
