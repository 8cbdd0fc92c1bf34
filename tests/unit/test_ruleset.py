"""Rules as data: the shipped file loads; a bad file is refused with every reason."""

import json
import subprocess
import sys

import pytest
import yaml

from wijkhub.streams import ruleset
from wijkhub.streams.ruleset import RuleFileError

from builders import IDS

SHIPPED = yaml.safe_load(ruleset.RULES_FILE.read_text())


def with_rule(**changes):
    rule = {**SHIPPED["rules"][0], **changes}
    return yaml.safe_dump({"rules": [rule]})


def problems(text):
    with pytest.raises(RuleFileError) as caught:
        ruleset.parse(text, "test.yaml")
    return caught.value.problems


def test_the_shipped_rules_load_with_basis_data_classes_and_windows():
    rules = ruleset.load().rules
    assert [r.id for r in rules][:2] == ["VS-ARREARS-2-CREDITORS-90D",
                                         "VS-ARREARS-3-MONTHS-ONE-CREDITOR"]  # fmt: skip
    assert len(rules) == 8
    first = rules[0]
    assert first.window_days == 90 and first.reads == ("debt",) and "Wgs" in first.legal_basis


def test_every_rule_names_the_basis_for_its_contact_card_by_family():
    """Wgs art. 3 for vroegsignalering (debt), Wmo 2015 / Jeugdwet for coordination."""
    rules = ruleset.load().rules
    assert all(r.contact_basis.strip() for r in rules)
    for rule in rules:
        if rule.family == "duplicate_help":
            assert "Wmo 2015" in rule.contact_basis and "Jeugdwet" in rule.contact_basis, rule.id
        elif "debt" in rule.reads:
            assert "Wgs" in rule.contact_basis and "art. 3" in rule.contact_basis, rule.id
    raw = {k: v for k, v in SHIPPED["rules"][0].items() if k != "contact_basis"}
    assert problems(yaml.safe_dump({"rules": [raw]})) == [
        "rule VS-ARREARS-2-CREDITORS-90D: contact_basis is missing"
    ]
    assert "contact_basis must be text" in problems(with_rule(contact_basis=["Wgs"]))[0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"reads": ["debt", "health"]}, "unknown domain(s) ['health']"),
        ({"window_days": 0}, "window_days must be from 1 to 730 days"),
        ({"window_days": "90 days"}, "window_days must be from 1 to 730 days"),
        ({"legal_basis": {"law": "Wgs"}}, "legal_basis needs both law and article"),
        ({"legal_basis": None}, "legal_basis is missing"),
        ({"legal_basis": {"law": "Wgs", "article": "3"}}, "legal_basis needs covers"),
        ({"reads": ["debt", "youth"]}, "reads ['youth'] beyond its legal basis"),
        ({"condition": {"type": "risk_score"}}, "unknown condition 'risk_score'"),
        ({"condition": {"type": "arrears_from_distinct_creditors"}},
         "needs ['min_creditors', 'min_amount_cents']"),
        ({"condition": {"type": "arrears_from_distinct_creditors", "min_creditors": "2"}},
         "min_creditors must be int"),
        ({"family": "scoring"}, "unknown family 'scoring'"),
        ({"severity": "urgent"}, "unknown severity 'urgent'"),
        ({"dedup": "household+kind"}, "dedup 'household+kind' does not fit condition "
         "arrears_from_distinct_creditors; expected one of ('household',)"),
        ({"dedup": "person"}, "dedup 'person' does not fit"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_refused_with_a_clear_reason(change, reason):
    found = problems(with_rule(**change))
    assert any(reason in p for p in found), found


def test_duplicate_ids_and_all_problems_at_once():
    rule = SHIPPED["rules"][0]
    found = problems(yaml.safe_dump({"rules": [rule, {**rule, "window_days": -1}]}))
    assert found == [
        f"rule {rule['id']}: duplicate id",
        f"rule {rule['id']}: window_days must be from 1 to 730 days, got -1",
    ]
    assert problems("rules: []") == ["needs a non-empty list under 'rules'"]
    assert problems("rules: [: bad")[0].startswith("not valid YAML")


def test_a_changed_parameter_changes_what_fires():
    from wijkhub.streams import household, rules

    from builders import arrears, linked  # noqa: F401 - builds views like the link stage

    strict = ruleset.parse(with_rule(condition={"type": "arrears_from_distinct_creditors",
                                                "min_creditors": 3, "min_amount_cents": 0}),
                           "t").rules  # fmt: skip
    view = household.new_view("H-1")
    for event in (arrears("Huur", 0), arrears("Energie", 10)):
        household.apply(view, event)
    fired = rules.evaluate(view, ruleset.load().rules, IDS)
    assert [(d.rule.id, [f["on"] for f in d.facts]) for d in fired] == [
        ("VS-ARREARS-2-CREDITORS-90D", ["2026-01-01", "2026-01-11"])
    ]
    assert rules.evaluate(view, strict, IDS) == []


@pytest.mark.slow  # three CLI subprocesses, each importing the whole package
def test_rules_cli_lists_and_checks(tmp_path):
    listed = subprocess.run([sys.executable, "-m", "wijkhub", "rules", "list", "--json"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [r.id for r in ruleset.load().rules]
    bad = tmp_path / "rules.yaml"
    bad.write_text(with_rule(reads=["health"]))
    checked = subprocess.run([sys.executable, "-m", "wijkhub", "rules", "check", str(bad)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 1 and "unknown domain(s) ['health']" in checked.stderr
    command = [sys.executable, "-m", "wijkhub", "rules", "check", str(ruleset.RULES_FILE)]
    good = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and "8 rules, valid" in good.stdout


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"escalate": {"min_facts": 3, "severity": "medium"}}, "must be higher than high"),
        ({"escalate": {"min_facts": 3, "severity": "urgent"}}, "unknown escalate severity"),
        ({"escalate": {"severity": "critical"}}, "escalate needs min_facts"),
        ({"family": "duplicate_help", "expires_after_days": 1000}, "two years at most"),
    ],
)
def test_escalation_and_expiry_are_checked(change, reason):
    assert any(reason in p for p in problems(with_rule(**change)))


def test_duplicate_help_rules_expire_after_two_years_unless_sooner_and_escalation_is_kept():
    rules = {r.id: r for r in ruleset.load().rules}
    assert rules["DH-TWO-HOLDERS-SAME-HELP"].expires_after_days == 730
    assert rules["VS-ARREARS-2-CREDITORS-90D"].expires_after_days is None
    assert rules["VS-ARREARS-2-CREDITORS-90D"].escalate == (3, "critical")
    sooner = ruleset.parse(with_rule(family="duplicate_help", expires_after_days=365)).rules[0]
    assert sooner.expires_after_days == 365


def three_months(dedup: str):
    [rule] = ruleset.parse(yaml.safe_dump({"rules": [{**SHIPPED["rules"][1], "dedup": dedup}]}),
                           "t").rules  # fmt: skip
    return rule


def test_dedup_decides_how_many_alerts_a_rule_raises_and_their_ids():
    """``dedup`` drives the alert key: per creditor, two alerts; per household, one alert
    with the facts of both creditors' runs."""
    from wijkhub.streams import household, rules

    from builders import arrears

    view = household.new_view("H-1")
    for creditor in ("Huur", "Energie"):
        for day in (0, 31, 62):  # January, February, March
            household.apply(view, arrears(creditor, day))
    per_creditor = rules.holding(view, (three_months("household+creditor"),), IDS)
    assert sorted(d.alert_id for d in per_creditor) == sorted(
        IDS.alert("VS-ARREARS-3-MONTHS-ONE-CREDITOR", f"H-1|{c}") for c in ("Huur", "Energie")
    )
    assert [len(d.facts) for d in per_creditor] == [3, 3]
    [one] = rules.holding(view, (three_months("household"),), IDS)
    assert one.alert_id == IDS.alert("VS-ARREARS-3-MONTHS-ONE-CREDITOR", "H-1")
    assert sorted(f["event_id"] for f in one.facts) == sorted(
        f["event_id"] for d in per_creditor for f in d.facts
    )
