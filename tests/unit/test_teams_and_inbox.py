"""Teams file, passwords, inbox actions and what an alert page may show."""

import datetime as dt

import pytest

from wijkhub.connectors import teams
from wijkhub.connectors.inbox import actions, present, web
from wijkhub.streams import ddas, household, lifecycle, rules

from builders import IDS, arrears, case, consent, shipped_rules

HASH = teams.hash_password("een lang wachtwoord")
RULES = {r.id: r for r in shipped_rules()}


def test_passwords_are_stored_as_salted_scrypt_hashes():
    assert HASH.startswith("scrypt$16384$8$1$") and "lang" not in HASH
    assert teams.hash_password("een lang wachtwoord") != HASH  # salted
    assert teams.verify_password("een lang wachtwoord", HASH)
    assert not teams.verify_password("een ander wachtwoord", HASH)
    assert not teams.verify_password("een lang wachtwoord", "plain")


def test_a_teams_file_authenticates_members_of_their_own_team():
    doc = f"""
teams:
  wijkteam-noord: {{name: Wijkteam Noord, email: noord@example.nl}}
accounts:
  j.jansen: {{team: wijkteam-noord, password: "{HASH}"}}
"""
    loaded = teams.parse(doc)
    assert loaded.authenticate("j.jansen", "een lang wachtwoord") == teams.Member(
        "j.jansen", "wijkteam-noord"
    )
    assert loaded.authenticate("j.jansen", "fout") is None
    assert loaded.authenticate("onbekend", "een lang wachtwoord") is None


def test_a_bad_teams_file_lists_every_problem():
    doc = """
teams:
  wijkteam-noord: {email: geen-adres, webhook: ftp://x}
accounts:
  j.jansen: {team: wijkteam-oost, password: hunter2}
"""
    with pytest.raises(teams.TeamsFileError) as err:
        teams.parse(doc, "teams.yaml")
    text = str(err.value)
    for problem in ("is not an address", "webhook must be an https:// URL", "unknown team",
                    "must be a scrypt hash"):  # fmt: skip
        assert problem in text
    webhook = "teams:\n  t1: {webhook: 'https://x.example/h'}\n"
    with pytest.raises(teams.TeamsFileError, match="no secret"):
        teams.parse(webhook)
    assert teams.parse(webhook, webhook_secrets="t1=" + "s" * 32).webhook_secrets["t1"]


def alert(**changes):
    return {"alert_id": "A-1", "household_ref": "H-1", "revision": 3, "state": "open",
            "family": "duplicate_help", "claimed_by": None, "contact_made_at": None,
            "team": "wijkteam-noord", "correlation_id": "c", **changes}  # fmt: skip


def offered(a: dict) -> list[str]:
    return lifecycle.allowed(a, a["family"])


def test_the_actions_offered_follow_the_alert_state_and_family():
    assert offered(alert()) == ["claim", "acknowledge", "contact_made", "resolve"]
    assert offered(alert(state="acknowledged", claimed_by="x")) == ["contact_made", "resolve"]
    assert offered(alert(family="early_detection")) == [
        "claim", "acknowledge", "contact_attempt", "warm_handover", "resolve"]  # fmt: skip
    assert offered(alert(family="early_detection", warm_handover=True)) == [
        "claim", "acknowledge", "contact_attempt", "resolve"]  # fmt: skip
    assert offered(alert(contact_made_at=1)) == ["claim", "acknowledge", "resolve"]
    assert offered(alert(state="resolved")) == []


def test_a_resubmitted_form_is_the_same_action():
    first = actions.action_record(alert(), "resolve", "j.jansen", "help_refused")
    again = actions.action_record(alert(), "resolve", "j.jansen", "help_refused")
    assert first["action_id"] == again["action_id"] and first["team"] == "wijkteam-noord"
    later = actions.action_record(alert(revision=4), "resolve", "j.jansen", "help_refused")
    assert later["action_id"] != first["action_id"]
    with pytest.raises(ValueError, match="uitkomst"):
        actions.action_record(alert(), "resolve", "j.jansen", "opgelost")


ATTEMPT = {"action": "contact_attempt", "soort": "Telefoon", "datum": "2026-01-05",
           "dagdeel": "Ochtend", "bereikt": "nee"}  # fmt: skip
TOMORROW = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()


def problems(form: dict, action: str, **changes) -> dict[str, str]:
    with pytest.raises(actions.FormError) as raised:
        actions.details(form, action, alert(**changes))
    assert isinstance(raised.value, ValueError) and str(raised.value)
    return raised.value.problems


def test_a_contact_attempt_is_sent_as_its_details():
    assert actions.details(ATTEMPT, "contact_attempt", alert()) == {
        **lifecycle.NO_DETAILS, "contact_kind": "Telefoon", "contact_on": "2026-01-05",
        "day_part": "Ochtend", "reached": False}  # fmt: skip


@pytest.mark.parametrize(
    ("changed", "found"),
    [
        ({"datum": ""}, {"datum": "Vul de datum van de poging in (jjjj-mm-dd)."}),
        ({"datum": "5 januari"}, {"datum": "Vul de datum van de poging in (jjjj-mm-dd)."}),
        ({"datum": TOMORROW}, {"datum": "De datum van de poging ligt in de toekomst."}),
        ({"soort": "Duif"}, {"soort": "Kies de soort contact."}),
        ({"dagdeel": "Nacht"}, {"dagdeel": "Kies het dagdeel."}),
        ({"bereikt": "misschien"}, {"bereikt": "Geef aan of u het huishouden hebt bereikt."}),
    ],
)
def test_each_problem_of_a_contact_attempt_names_its_field(changed, found):
    assert problems({**ATTEMPT, **changed}, "contact_attempt") == found


def test_every_problem_of_a_form_is_named_at_once_in_the_order_of_the_form():
    assert list(problems({"action": "contact_attempt"}, "contact_attempt")) == [
        "soort", "datum", "dagdeel", "bereikt"]  # fmt: skip
    ddas_case = {"family": "early_detection", "facts": [{"type": ddas.ARREARS_FACT}]}
    assert problems({"action": "resolve"}, "resolve", **ddas_case) == {
        "outcome": "Kies een uitkomst om de melding af te sluiten.",
        "eindresultaat": "Kies het eindresultaat (DDAS) om deze vroegsignalering af te sluiten.",
    }
    assert problems({"outcome": "help_accepted", "eindresultaat": "Weg"}, "resolve") == {
        "eindresultaat": "Kies een eindresultaat uit de lijst."}  # fmt: skip
    assert actions.details({"outcome": "help_accepted"}, "resolve", alert()) == lifecycle.NO_DETAILS


def test_a_problem_repeats_nothing_the_member_entered():
    entered = {"soort": "J. Jansen", "datum": "1017VA 18", "dagdeel": "123456782", "bereikt": "x"}
    found = problems({**ATTEMPT, **entered}, "contact_attempt")
    assert set(found) == set(entered)
    assert not [v for v in entered.values() for m in found.values() if v in m]


def test_the_error_summary_links_each_problem_to_its_field():
    html = (
        web.templates()
        .get_template("error_summary.html")
        .render(errors={"datum": "Vul de datum in.", "": "Deze actie kan niet (meer)."})
    )
    assert 'role="alert"' in html and "Er is een probleem" in html
    assert '<li><a href="#datum">Vul de datum in.</a></li>' in html
    assert "<li>Deze actie kan niet (meer).</li>" in html  # the form as a whole: no link


def published(*events):
    view = household.new_view("H-1")
    for e in events:
        household.apply(view, e)
    return household.to_record(view)


def test_the_timeline_shows_only_what_the_rule_may_read_and_youth_debt_needs_consent():
    record = published(arrears("Huur", 10, person="P-1"), case("Team A", "c1", case_type="jeugd"))
    youth_rule = RULES["VS-YOUTH-HELP-AFTER-DEBT-180D"]
    debt_rule = RULES["VS-ARREARS-2-CREDITORS-90D"]
    assert [t for _, t in present.timeline(record, debt_rule)] == [
        "Betalingsachterstand gemeld (schuldeiser: Huur)"
    ]  # the debt rule: no youth case
    without = [t for _, t in present.timeline(record, youth_rule)]
    assert without == ["Hulp (jeugd) bij Team A, contact: team@example"]  # debt: no consent
    allowed = consent(True, dt.date(2026, 1, 5), purpose="jeugd-schuldsignaal", domain="debt")
    given = published(arrears("Huur", 10, person="P-1"), case("Team A", "c1", case_type="jeugd"),
                      allowed)  # fmt: skip
    assert len(present.timeline(given, youth_rule)) == 2
    assert present.timeline(record, None) == []  # unknown rule: unknown basis, nothing shown


def test_visible_to_keeps_the_rules_own_domains():
    view = household.from_record(published(arrears("Huur", 1), case("Team A", "c1")))
    seen = rules.visible_to(RULES["DH-TWO-TEAMS-OPEN-CASES"], view)
    assert seen["signals"] == [] and len(seen["involvements"]) == 1


def test_the_inbox_measures_open_alerts_and_the_oldest_unacknowledged_one():
    from wijkhub.connectors.inbox.store import AlertStore
    from wijkhub.metrics import Metrics

    now = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)

    def stored(aid, state, severity, hours_ago, revision=1):
        published = now - dt.timedelta(hours=hours_ago)
        return alert(alert_id=aid, state=state, severity=severity, revision=revision,
                     raised_at=published, published_at=published)  # fmt: skip

    store = AlertStore()
    for a in (stored("A-1", "open", "critical", 50), stored("A-2", "open", "critical", 3),
              stored("A-3", "acknowledged", "critical", 80), stored("A-4", "resolved", "high", 1),
              stored("A-1", "open", "critical", 1, revision=0)):  # fmt: skip
        store.apply_alert(a)  # the older revision of A-1 does not replace the newer one
    metrics = Metrics()
    store.measure(metrics, now)
    text = metrics.render().decode()
    assert ('wijkhub_open_alerts{alert_severity="critical",state="open",'
            'team="wijkteam-noord"} 2.0') in text  # fmt: skip
    assert 'state="resolved"' not in text
    age = metrics.unacknowledged_age.labels("wijkteam-noord", "critical")._value.get()
    assert age == 50 * 3600


def test_duplicate_help_goes_to_the_responsible_team_and_every_involved_team():
    doc = """
teams:
  wijkteam-centrum: {name: Wijkteam Centrum}
  wijkteam-noord: {name: Wijkteam Noord, aliases: [WT Noord]}
"""
    loaded = teams.parse(doc)
    shared = alert(team="wijkteam-centrum", involved=[
        {"holder": "Wijkteam Centrum", "kind": "schuldhulp", "contact": ""},
        {"holder": "WT Noord", "kind": "schuldhulp", "contact": "06-1"},
        {"holder": "Stadsbank", "kind": "schuldhulp", "contact": "020-1"}])  # fmt: skip
    assert loaded.recipients(shared) == ["wijkteam-centrum", "wijkteam-noord"]
    assert loaded.recipients(alert(team="wijkteam-noord")) == ["wijkteam-noord"]


def test_a_duplicate_help_alert_names_each_party_once_and_early_detection_none():
    by_id = RULES
    view = household.new_view("H-1")
    for e in (case("Team A", "c1"), case("Team B", "c2")):
        household.apply(view, e)
    [change] = lifecycle.step(view, rules.holding(view, shipped_rules(), IDS), by_id,
                              lambda r, _aid: "wijkteam-noord", 0)  # fmt: skip
    record = rules.alert_record(change.alert_id, change.alert, change.rule, "H-1", "0363", "c",
                                "raised")  # fmt: skip
    assert [(p["holder"], p["contact"]) for p in record["involved"]] == [
        ("Team A", "team@example"), ("Team B", "team@example")]  # fmt: skip
    view = household.new_view("H-2")
    for e in (arrears("Huur", 0), arrears("Energie", 10)):
        household.apply(view, e)
    [change] = lifecycle.step(view, rules.holding(view, shipped_rules(), IDS), by_id,
                              lambda r, _aid: "wijkteam-noord", 0)  # fmt: skip
    record = rules.alert_record(change.alert_id, change.alert, change.rule, "H-2", "0363", "c",
                                "raised")  # fmt: skip
    assert record["involved"] == []
