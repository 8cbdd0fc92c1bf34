"""DDAS reporting: the value lists come from the exchange model's JSON schema, and a
delivery built from alerts validates against it (or is refused with the reasons)."""

import datetime as dt

from wijkhub.streams import ddas, household, lifecycle, outcomes, rules

from builders import IDS, arrears, shipped_rules

RULES = shipped_rules()
BY_ID = {r.id: r for r in RULES}


def test_the_value_lists_are_the_schemas_own():
    assert ddas.CONTACT_KINDS == ("Mail", "Brief", "SMS/Whatsapp", "Telefoon", "Huisbezoek",
                                  "Kaartje", "Overige", "Administratief")  # fmt: skip
    assert ddas.DAY_PARTS == ("Ochtend", "Middag", "Avond")
    assert len(ddas.END_RESULTS) == 15 and "Vervolghulp en/of verwijzing financieel" in (
        ddas.END_RESULTS)  # fmt: skip


def resolved_alert() -> dict:
    """A two-creditor alert with two attempts, a warm hand-over and an end result, as the
    household stage publishes it (the Alert record, decoded)."""
    view = household.new_view("H-1")
    for e in (arrears("Huur", 0), arrears("Energie", 10)):
        household.apply(view, e)
    [raised] = lifecycle.step(view, rules.holding(view, RULES, IDS), BY_ID,
                              lambda r, _a: "wijkteam-noord", 1_000)  # fmt: skip
    at = dt.datetime(2026, 2, 11, 9, tzinfo=dt.UTC)

    def act(n: int, kind: str, **detail):
        record = {"action_id": f"AA-{n}", "alert_id": raised.alert_id, "household_ref": "H-1",
                  "action": kind, "outcome": None, **lifecycle.NO_DETAILS, **detail,
                  "actor": "j.jansen", "team": "wijkteam-noord",
                  "at": at + dt.timedelta(days=n), "correlation_id": "c"}  # fmt: skip
        return lifecycle.act(view, record, BY_ID)

    act(0, "contact_attempt", contact_kind="Telefoon", contact_on="2026-02-11",
        day_part="Ochtend", reached=False)  # fmt: skip
    act(1, "contact_attempt", contact_kind="Huisbezoek", contact_on="2026-02-12",
        day_part="Middag", reached=True)  # fmt: skip
    act(2, "warm_handover")
    done = act(3, "resolve", outcome="help_accepted",
               end_result="Vervolghulp en/of verwijzing financieel")  # fmt: skip
    return rules.alert_record(done.alert_id, done.alert, done.rule, "H-1", "0363", "c",
                              done.kind)  # fmt: skip


def test_a_delivery_holds_the_signals_attempts_and_end_result_and_validates():
    alert = resolved_alert()
    day = alert["raised_at"].date()
    doc = ddas.document([alert], day, day, "0363", "wijkhub", "Gemeente 0363",
                        dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC), rules.creditor_of)  # fmt: skip
    assert ddas.problems(doc) == []
    [delivery] = doc["leveringen"]
    assert [
        (s["signaalpartner"]["type"], s["warmeOverdracht"], s["client"])
        for s in delivery["vroegsignalen"]
    ] == [("Huur", True, {}), ("Energie", True, {})]
    assert all("status" not in s for s in delivery["vroegsignalen"])  # picked up
    [case] = delivery["vroegsignaalzaken"]
    assert case["contactpogingen"] == [
        {"soort": "Telefoon", "bereikt": False, "datum": "2026-02-11", "dagdeel": "Ochtend"},
        {"soort": "Huisbezoek", "bereikt": True, "datum": "2026-02-12", "dagdeel": "Middag"},
    ]
    assert (case["resultaat"], case["datum_opgepakt"]) == (
        "Vervolghulp en/of verwijzing financieel", "2026-02-11")  # fmt: skip
    assert [v["ID"] for v in case["vroegsignalen"]] == [s["ID"] for s in delivery["vroegsignalen"]]
    outside = ddas.document([alert], day + dt.timedelta(days=1), day + dt.timedelta(days=9),
                            "0363", "wijkhub", "Gemeente 0363",
                            dt.datetime(2026, 3, 1, tzinfo=dt.UTC))  # fmt: skip
    assert outside["leveringen"][0]["vroegsignaalzaken"] == [] and ddas.problems(outside) == []


def test_an_invalid_delivery_is_refused_with_every_reason():
    alert = resolved_alert()
    day = alert["raised_at"].date()
    doc = ddas.document([alert], day, day, "0363", "wijkhub", "Gemeente 0363",
                        dt.datetime(2026, 3, 1, tzinfo=dt.UTC))  # fmt: skip
    case = doc["leveringen"][0]["vroegsignaalzaken"][0]
    case["contactpogingen"][0]["dagdeel"] = "Nacht"
    case["resultaat"] = "Opgelost"
    del doc["codeGegevensleverancier"]
    assert ddas.problems(doc) == [
        "$.leveringen[0].vroegsignaalzaken[0].contactpogingen[0].dagdeel: 'Nacht' is not one "
        "of ['Ochtend', 'Middag', 'Avond']",
        "$.leveringen[0].vroegsignaalzaken[0].resultaat: 'Opgelost' is not one of "
        f"{list(ddas.END_RESULTS)}",
        "$: 'codeGegevensleverancier' is a required property",
    ]


def test_rules_report_counts_outcomes_per_rule_and_the_share_not_needed():
    alert = resolved_alert()
    day = alert["raised_at"].date()
    other = {**alert, "alert_id": "A-2", "resolution": "wrong_link"}
    still_open = {**alert, "alert_id": "A-3", "state": "open", "resolution": None}
    withdrawn = {**alert, "alert_id": "A-4", "resolution": "withdrawn: the facts moved"}
    [row] = outcomes.report([alert, other, still_open, withdrawn], day, day)
    assert (row["rule"], row["alerts"], row["open"], row["not_needed_share"]) == (
        "VS-ARREARS-2-CREDITORS-90D", 3, 1, 0.5)  # fmt: skip
    assert {k: v for k, v in row["outcomes"].items() if v} == {"help_accepted": 1, "wrong_link": 1}
    assert outcomes.report([alert], day + dt.timedelta(days=1), day + dt.timedelta(days=2)) == []
