"""The rules of rules.yaml, each firing on its pattern and quiet on a near miss."""

import datetime as dt

import pytest
import yaml

from wijkhub.streams import household, rules, ruleset

from builders import IDS, arrears, benefit, case, consent, linked, provision, shipped_rules

RULES = shipped_rules()


def fired(*events, rule_set=RULES):
    view = household.new_view("H-1")
    for e in events:
        household.apply(view, e)
    return sorted(d.rule.id for d in rules.evaluate(view, rule_set, IDS))


def test_three_consecutive_months_with_one_creditor():
    # 2026-01-01, 2026-02-01, 2026-03-01 (days 0, 31, 59), amounts rising: not repeats
    months = [arrears("Huur", 0, amount=100), arrears("Huur", 31, amount=200),
              arrears("Huur", 59, amount=300)]  # fmt: skip
    assert fired(*months) == ["VS-ARREARS-3-MONTHS-ONE-CREDITOR"]
    gap = [arrears("Huur", 0, amount=100), arrears("Huur", 31, amount=200),
           arrears("Huur", 90, amount=300)]  # January, February, April  # fmt: skip
    assert fired(*gap) == []


def test_benefit_ended_or_sanctioned_then_arrears_within_60_days():
    assert fired(benefit("sanction", 0), arrears("Energie", 45)) == [
        "VS-INCOME-LOSS-THEN-ARREARS-60D"
    ]
    assert fired(benefit("ended", 0), arrears("Energie", 61)) == []  # too late
    assert fired(arrears("Energie", 0), benefit("ended", 10)) == []  # arrears came first
    assert fired(benefit("granted", 0), arrears("Energie", 5)) == []  # not a loss of income


def test_a_crisis_signal_fires_alone_with_the_highest_severity():
    view = household.new_view("H-1")
    household.apply(view, arrears("Water", 3, crisis=True))
    [draft] = rules.evaluate(view, RULES, IDS)
    assert draft.rule.id == "VS-CRISIS-SIGNAL" and draft.rule.severity == "critical"
    assert fired(arrears("Water", 3)) == []


def test_two_crisis_signals_are_two_alerts_and_a_replay_adds_none():
    first, second = arrears("Water", 3, crisis=True), arrears("Huur", 5, crisis=True)
    view = household.new_view("H-1")
    for e in (first, second):
        household.apply(view, e)
    drafts = rules.evaluate(view, RULES, IDS)
    crisis = [d for d in drafts if d.rule.id == "VS-CRISIS-SIGNAL"]
    assert len(crisis) == 2 and len({d.alert_id for d in crisis}) == 2
    for d in drafts:
        view["open_alerts"][d.alert_id] = d.rule.id
    household.apply(view, first)
    assert rules.evaluate(view, RULES, IDS) == []


@pytest.mark.parametrize("rule_id", ["VS-ARREARS-2-CREDITORS-90D", "VS-CRISIS-SIGNAL"])
def test_a_municipal_minimum_amount_is_configuration(rule_id):
    doc = yaml.safe_load(ruleset.RULES_FILE.read_text())
    for rule in doc["rules"]:
        if "min_amount_cents" in rule["condition"]:
            rule["condition"]["min_amount_cents"] = 50_000
    strict = ruleset.parse(yaml.safe_dump(doc), "gemeente.yaml").rules
    scenarios = {
        "VS-ARREARS-2-CREDITORS-90D": [arrears("Huur", 0, amount=60_000),
                                       arrears("Energie", 9, amount=4_000)],
        "VS-CRISIS-SIGNAL": [arrears("Water", 3, amount=4_000, crisis=True)],
    }  # fmt: skip
    events = scenarios[rule_id]
    assert rule_id in fired(*events)
    assert rule_id not in fired(*events, rule_set=strict)


def test_help_in_three_domains_without_a_regisseur():
    three = [case("Schuldhulp Noord", "c1"), provision("AGB1", "p1"),
             case("Jeugdteam", "c2", case_type="jeugd")]  # fmt: skip
    assert "DH-3-DOMAINS-NO-REGISSEUR" in fired(*three)
    on = three[0]["event"]["payload"][1]["opened_on"]
    assigned = {"team": "Wijkteam Centrum", "on": on, "contact": "020-1"}
    regisseur = linked("nl.wijkhub.teams.CoordinatorAssigned", assigned, person="P-1",
                       domain="teams")  # fmt: skip
    assert "DH-3-DOMAINS-NO-REGISSEUR" not in fired(*three, regisseur)
    assert "DH-3-DOMAINS-NO-REGISSEUR" not in fired(*three[:2])


def test_two_teams_with_open_cases_of_different_kinds():

    assert "DH-TWO-TEAMS-OPEN-CASES" in fired(
        case("Wijkteam Noord", "c1", case_type="breed"), case("Jeugdteam", "c2", case_type="jeugd")
    )
    assert "DH-TWO-TEAMS-OPEN-CASES" not in fired(
        case("Wijkteam Noord", "c1", case_type="breed"), case("Wijkteam Noord", "c2",
                                                              case_type="jeugd")
    )  # fmt: skip


def test_debt_data_counts_for_youth_help_only_with_consent_on_record():
    debt = arrears("Huur", 0, person="P-1")  # 2026-01-01, about P-1
    youth = provision("AGB9", "j1", domain="youth")  # started 2026-02-01
    rule = "VS-YOUTH-HELP-AFTER-DEBT-180D"
    assert rule not in fired(debt, youth)  # no consent: the debt signal is not visible
    given = consent(True, dt.date(2026, 1, 15), purpose="jeugd-schuldsignaal", domain="debt")
    assert rule in fired(debt, youth, given)
    withdrawn = consent(False, dt.date(2026, 3, 1), purpose="jeugd-schuldsignaal", domain="debt")
    assert rule not in fired(debt, youth, given, withdrawn)
    other_purpose = consent(True, dt.date(2026, 1, 15), purpose="wmo-regie", domain="debt")
    assert rule not in fired(debt, youth, other_purpose)
    old_debt = arrears("Huur", -200, person="P-1")  # more than 180 days before the youth help
    assert rule not in fired(old_debt, youth, given)


def test_wmo_coordination_reads_youth_help_only_with_consent():
    # zorg (care), jeugd (youth), a schuldhulp case (teams)
    three = [provision("AGB1", "p1"), provision("AGB9", "j1", domain="youth"),
             case("Wijkteam", "c1")]  # fmt: skip
    assert "DH-3-DOMAINS-NO-REGISSEUR" not in fired(*three)
    given = consent(True, dt.date(2026, 1, 1), purpose="wmo-regie", domain="youth")
    assert "DH-3-DOMAINS-NO-REGISSEUR" in fired(*three, given)


def test_three_domains_counts_kinds_of_help_not_sources():
    """As documented: iJw youth care and a wijkteam jeugd case are one kind (jeugd)."""
    given = consent(True, dt.date(2026, 1, 1), purpose="wmo-regie", domain="youth")
    two_kinds = [case("Jeugdteam", "c1", case_type="jeugd"),
                 provision("AGB9", "j1", domain="youth"),
                 provision("AGB1", "p1"), given]  # fmt: skip
    assert "DH-3-DOMAINS-NO-REGISSEUR" not in fired(*two_kinds)  # jeugd + zorg
    three_kinds = [*two_kinds, case("Schuldhulp Noord", "c2")]  # + schuldhulp
    assert "DH-3-DOMAINS-NO-REGISSEUR" in fired(*three_kinds)


def test_two_teams_means_two_different_teams_and_two_kinds_of_help():
    """As documented: one kind at two teams is the same-help rule, not this one."""
    same_kind = fired(case("Wijkteam Noord", "c1"), case("Wijkteam Zuid", "c2"))
    assert "DH-TWO-TEAMS-OPEN-CASES" not in same_kind
    assert "DH-TWO-HOLDERS-SAME-HELP" in same_kind


def test_every_rule_description_states_its_condition():
    """Each description names its numbers (window, counts) as the condition uses them."""
    doc = yaml.safe_load(ruleset.RULES_FILE.read_text())
    for rule in doc["rules"]:
        text = rule["description"]
        for value in rule["condition"].values():
            if isinstance(value, int) and value > 1 and not str(value).endswith("00"):
                assert str(value) in text or {2: "wee", 3: "rie"}.get(value, "?") in text, rule
        if rule["window_days"] < 365:
            assert str(rule["window_days"]) in text, rule["id"]
