"""The team inbox in a real headless Chromium, against the real broker and worker.

A member logs in, sees the alert the worker raised from events produced to
Kafka, opens it, takes it on, acknowledges and resolves it; the state change
arrives on the alerts topic. A member of another team can neither see nor
open it, also not by its URL. Every opening is on the audit topic.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from wijkhub.streams import ddas
from wijkhub.streams.topics import CONTACT_CARDS

from builders import (
    SCREENSHOTS,
    TEAM_A,
    TEAM_B,
    assert_accessible,
    audit_entries,
    household,
    inbox_password,
    list_until,
    press,
    series,
    shown,
    submit,
    wait_for_alerts,
)


def log_in(driver, base: str, account: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/inloggen")
    driver.find_element(By.ID, "account").send_keys(account)
    driver.find_element(By.ID, "password").send_keys(inbox_password(account))
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(ec.url_contains("/meldingen"))


def test_a_member_resolves_an_alert_and_the_change_arrives_on_the_alerts_topic(
    hub, inbox, browser, plant
):
    p = plant.person("1000BX", "101")  # CBS wijk WK036300: wijkteam-centrum
    hub.ingest("population", [p])
    hub.ingest(
        "vroegsignalering",
        [
            plant.arrears("1000BX", "101", "Huur", "2026-03-01"),
            plant.arrears("1000BX", "101", "Energie", "2026-04-02"),
        ],
    )
    ref = household("1000BX", "101")
    [raised] = wait_for_alerts(hub, {ref}, 1)
    assert raised["team"] == TEAM_A
    aid = raised["alert_id"]

    log_in(browser, inbox.base_url, "anna")
    list_until(browser, inbox.base_url, aid)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl"
    browser.find_element(By.CSS_SELECTOR, f'a[href="/meldingen/{aid}"]').click()
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Waarom deze melding" in page and "Wet gemeentelijke schuldhulpverlening" in page
    assert "Betalingsachterstand gemeld, schuldeiser: Huur" in page
    assert "450" not in page  # no amounts: the facts say what happened, not how much
    # every form control has a label a screen reader announces
    for control in browser.find_elements(
        By.CSS_SELECTOR, "main select, main input:not([type=hidden])"
    ):
        control_id = control.get_attribute("id")
        assert browser.find_elements(By.CSS_SELECTOR, f'label[for="{control_id}"]'), control_id

    press(browser, "Oppakken")
    assert "anna" in shown(browser, ".facts", "anna")
    press(browser, "Bevestigen (gezien)")
    assert shown(browser, "#status", "In behandeling").startswith("In behandeling")
    Select(browser.find_element(By.ID, "outcome")).select_by_value("help_accepted")
    Select(browser.find_element(By.ID, "eindresultaat")).select_by_value(
        "(Budget)advies en/of quick fix"
    )
    submit(browser, "form.resolve button")
    assert shown(browser, "#status", "Afgesloten").startswith("Afgesloten")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "inbox-melding-afgesloten.png"))

    changes = [a for a in hub.alerts({ref}) if a["alert_id"] == aid]
    assert [(a["change"], a["state"], a["revision"]) for a in changes] == [
        ("raised", "open", 1), ("claimed", "open", 2), ("acknowledged", "acknowledged", 3),
        ("resolved", "resolved", 4)]  # fmt: skip
    assert changes[-1]["resolution"] == "help_accepted" and changes[-1]["claimed_by"] == "anna"
    audited = [e for e in audit_entries(hub) if e["actor"] == "anna" and e["channel"] == "inbox"]
    opened = [e for e in audited if e["action"] == "household.read"]
    assert opened and all(e["resource"] == ref and e["allowed"] for e in opened)
    assert ("session.start", "inbox", True) in [(e["action"], e["resource"], e["allowed"])
                                                for e in audited]  # fmt: skip
    text = hub.worker.metrics_text()
    acknowledged = series(text, "wijkhub_time_to_acknowledge_seconds_count")
    # the only acknowledgement in the session (as the resolve below is the only resolve)
    assert [v for labels, v in acknowledged if labels["team"] == TEAM_A] == [1.0]
    sent = series(inbox.metrics_text(), "wijkhub_inbox_actions_total")
    assert ({"action": "resolve", "outcome": "help_accepted"}, 1.0) in sent
    applied = series(text, "wijkhub_alert_actions_total")
    assert ({"action": "resolve", "outcome": "help_accepted", "result": "applied"}, 1.0) in applied


def card_views(hub, actor: str) -> list[dict]:
    return [e for e in audit_entries(hub) if e["actor"] == actor
            and e["action"] == "alert.contact-card"]  # fmt: skip


def test_a_member_of_another_team_cannot_see_or_open_the_alert(hub, inbox, browser, plant):
    p = plant.person("1001CX", "102")  # wijkteam-centrum
    hub.ingest("population", [p])
    signals = [plant.arrears("1001CX", "102", "Water", "2026-03-01"),
               plant.arrears("1001CX", "102", "CAK Zorgverzekeringen", "2026-03-20")]  # fmt: skip
    hub.ingest("vroegsignalering", signals)
    [raised] = wait_for_alerts(hub, {household("1001CX", "102")}, 1)
    aid = raised["alert_id"]
    log_in(browser, inbox.base_url, "anna")
    list_until(browser, inbox.base_url, aid)  # the inbox has it: team A sees it

    log_in(browser, inbox.base_url, "bram")  # team B
    assert TEAM_B in browser.find_element(By.TAG_NAME, "header").text
    assert not browser.find_elements(By.CSS_SELECTOR, f'a[href="/meldingen/{aid}"]')
    browser.get(f"{inbox.base_url}/meldingen/{aid}")
    assert "Melding niet gevonden" in browser.find_element(By.TAG_NAME, "h1").text
    assert "Betalingsachterstand" not in browser.page_source
    refused = [e for e in audit_entries(hub) if e["actor"] == "bram"]
    assert [e["allowed"] for e in refused if e["resource"] == aid] == [False]  # one attempt


def test_wrong_password_and_no_session_get_no_data(inbox, browser):
    browser.delete_all_cookies()
    browser.get(f"{inbox.base_url}/meldingen")
    assert browser.current_url.endswith("/inloggen")  # no session: to the login page
    assert_accessible(browser)
    # keyboard only: skip link, user name, password, button, in that order
    order = []
    for _ in range(4):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        order.append(active.get_attribute("id") or active.text)
    assert order == ["Naar de inhoud", "account", "password", "Inloggen"]
    browser.find_element(By.ID, "account").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys("niet-het-wachtwoord")
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    # the answer page, once loaded (a busy machine answers the scrypt check slowly)
    error = (
        WebDriverWait(browser, 15)
        .until(ec.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
        .text
    )
    assert re.search("onjuist wachtwoord", error)
    assert_accessible(browser)  # the sign-in page with its error
    try:
        WebDriverWait(browser, 1).until(ec.url_contains("/meldingen"))
        raise AssertionError("logged in with a wrong password")
    except TimeoutException:
        pass


def test_an_involved_team_sees_who_else_is_involved_but_not_the_household(
    hub, inbox, browser, plant
):
    p = plant.person("1049ZH", "150")  # wijkteam-centrum's district
    hub.ingest("population", [p])
    hub.ingest(
        "teams", [plant.case(p["bsn"], "Wijkteam Centrum"), plant.case(p["bsn"], "Wijkteam Noord")]
    )
    ref = household("1049ZH", "150")
    [raised] = wait_for_alerts(hub, {ref}, 1)
    assert raised["rule_id"] == "DH-TWO-HOLDERS-SAME-HELP" and raised["team"] == TEAM_A
    aid = raised["alert_id"]

    log_in(browser, inbox.base_url, "bram")  # team B: involved, not responsible
    list_until(browser, inbox.base_url, aid)
    row = browser.find_element(By.XPATH, f'//a[@href="/meldingen/{aid}"]/ancestor::tr').text
    assert "Betrokken" in row
    browser.find_element(By.CSS_SELECTOR, f'a[href="/meldingen/{aid}"]').click()
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "De regie ligt bij Wijkteam Centrum" in page
    assert "Betrokken partijen" in page and "06-00000000" in page  # how to reach the others
    assert "Tijdlijn van het huishouden" not in page  # nothing of the household itself
    assert not browser.find_elements(By.CSS_SELECTOR, "form[action$='/actie']")
    assert not browser.find_elements(By.ID, "contactkaart")  # no contact card: no link
    assert "Contactkaart" not in page
    assert_accessible(browser)  # the involved party's page
    # the alert has a card (the BRP address of the person behind it) that bram never sees
    cards = {r.key.decode(): r.value for r in hub.records(CONTACT_CARDS)}
    assert cards.get(aid)
    browser.get(f"{inbox.base_url}/meldingen/{aid}/contactkaart")  # nor by its address
    assert browser.find_element(By.TAG_NAME, "h1").text == "Geen toegang"
    assert "Alleen het team met de regie" in browser.find_element(By.ID, "waarom").text
    assert_accessible(browser)
    assert [(e["resource"], e["allowed"]) for e in card_views(hub, "bram")] == [(aid, False)]
    assert "1049ZH" not in browser.page_source  # nothing of the card on the refusal
    opened = [e for e in audit_entries(hub) if e["actor"] == "bram" and e["allowed"]]
    # one view, audited as the involved party's
    assert ["betrokken partij" in e["reason"] for e in opened if e["resource"] == ref] == [True]


def post_login(base: str, account: str, password: str) -> int:
    """The sign-in form as a browser sends it: first the page (its CSRF token and the
    attempt cookie it is bound to), then the form."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{base}/inloggen", timeout=10) as page:
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
    assert csrf
    fields = {"csrf": csrf.group(1), "account": account, "password": password}
    try:
        with opener.open(f"{base}/inloggen", urllib.parse.urlencode(fields).encode(),
                         timeout=10) as answer:  # fmt: skip
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_sign_in_form_without_its_csrf_token_is_refused(inbox):
    form = urllib.parse.urlencode({"account": "carla", "password": inbox_password("carla")})
    try:
        urllib.request.urlopen(f"{inbox.base_url}/inloggen", form.encode(), timeout=10)
        raise AssertionError("signed in without a CSRF token")
    except urllib.error.HTTPError as error:
        assert error.code == 403


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(inbox):
    assert post_login(inbox.base_url, "carla", inbox_password("carla")) == 200
    assert [post_login(inbox.base_url, "carla", "fout") for _ in range(5)] == [401] * 5
    assert post_login(inbox.base_url, "carla", inbox_password("carla")) == 429
    text = inbox.metrics_text()
    assert ({"result": "locked"}, 1.0) in series(text, "wijkhub_inbox_logins_total")


def wijkhub(hub, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wijkhub", *args], env={**os.environ, **hub.settings.to_env()},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def record_attempt(driver, kind: str, day_part: str, reached: bool, dated: bool = True) -> None:
    """Fill in the contact-attempt form with the keyboard only (the date as it is, today, or
    emptied), and send it with Enter."""
    form = driver.find_element(By.CSS_SELECTOR, "form.attempt")
    form.find_element(By.ID, "soort").send_keys(kind)
    if not dated:
        form.find_element(By.ID, "datum").clear()
    form.find_element(By.ID, "dagdeel").send_keys(day_part)
    form.find_element(By.ID, "bereikt" if reached else "bereikt-nee").send_keys(Keys.SPACE)
    driver.execute_script("window.wijkhubBefore = true;")
    form.find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return window.wijkhubBefore !== true;")
    )


def tab_to(driver, element_id: str, limit: int = 60) -> None:
    """Tab from the top of the page until ``element_id`` has the focus (keyboard only)."""
    driver.find_element(By.TAG_NAME, "body").click()
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.switch_to.active_element.get_attribute("id") == element_id:
            return
    raise AssertionError(f"#{element_id} not reachable with Tab")


# What the creditor delivered with the signals (DDAS client, and telephone and e-mail as the
# Besluit gemeentelijke schuldhulpverlening art. 3 allows): the contact card shows it.
CLIENT = {"initials": "A", "family_name": "Yilmaz", "birth_date": "1979-03-12",
          "street": "Dorpsstraat", "city": "Amsterdam", "telephone": "06-2345 6789",
          "email": "a.yilmaz@voorbeeld.nl"}  # fmt: skip


def early_detection(
    hub, plant, postcode: str, number: str, supplied: dict | None = None,
    resident: dict | None = None,
) -> tuple[str, str]:  # fmt: skip
    """A resident at the address (wijkteam-centrum's, for the postcodes these tests use) with
    two arrears signals (``supplied``: what the creditor delivered with them): the household
    and its DDAS vroegsignalering alert, once raised."""
    hub.ingest("population", [{**plant.person(postcode, number), **(resident or {})}])
    signals = [plant.arrears(postcode, number, "Water", "2025-10-03"),
               plant.arrears(postcode, number, "Energie", "2025-11-07")]  # fmt: skip
    hub.ingest("vroegsignalering", [{**s, **(supplied or {})} for s in signals])
    ref = household(postcode, number)
    [raised] = wait_for_alerts(hub, {ref}, 1)
    return ref, raised["alert_id"]


def test_attempts_and_end_result_reach_the_ddas_export_and_the_rules_report(
    hub, inbox, browser, plant
):
    """The responsible team opens the contact card (by keyboard) and sees the name, address,
    telephone and e-mail the source supplied, every view audited first; it records two
    attempts (not reached, reached) and resolves with a DDAS end result, by keyboard; then
    the card is gone. Every inbox page passes axe-core (WCAG 2.1 AA); the DDAS export of the
    period validates and holds both attempts and the end result; the rules report shows the
    outcome under its rule. The involved-team and login pages are checked by axe-core in
    the tests below."""
    ref, aid = early_detection(hub, plant, "1038VB", "39", CLIENT,
                               {"initials": "A", "family_name": "Yilmaz",
                                "birth_date": "1979-03-12"})  # fmt: skip

    log_in(browser, inbox.base_url, "anna")
    list_until(browser, inbox.base_url, aid)
    assert_accessible(browser)
    browser.get(f"{inbox.base_url}/meldingen/{aid}")
    assert_accessible(browser)
    views_before = len(card_views(hub, "anna"))
    tab_to(browser, "contactkaart")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    WebDriverWait(browser, 15).until(ec.url_contains("/contactkaart"))
    card = shown(browser, "main", "Yilmaz")  # the worker publishes the card with the alert
    for supplied in ("A Yilmaz", "Dorpsstraat 39, 1038VB Amsterdam", "06-2345 6789",
                     "a.yilmaz@voorbeeld.nl", "Wet gemeentelijke schuldhulpverlening (Wgs) "
                     "art. 3"):  # fmt: skip
        assert supplied in card, supplied
    assert browser.find_element(By.TAG_NAME, "h1").text == "Contactkaart"
    assert [dt.text for dt in browser.find_elements(By.CSS_SELECTOR, "section.person dt")] == [
        "Naam", "Adres", "Telefoon", "E-mail", "Bron"]  # fmt: skip
    assert_accessible(browser)  # the card page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "inbox-contactkaart.png"))
    viewed = card_views(hub, "anna")[views_before:]
    # every view is on the audit topic, allowed, for this household (at least this one:
    # shown() reloads the page until the card is there, and each load is a view)
    assert viewed and all(e["allowed"] and e["resource"] == ref and aid in e["reason"]
                          for e in viewed)  # fmt: skip
    browser.get(f"{inbox.base_url}/meldingen/{aid}")
    record_attempt(browser, "Telefoon", "Ochtend", reached=False)
    shown(browser, "main", "Contactpogingen")
    record_attempt(browser, "Huisbezoek", "Middag", reached=True)
    rows = shown(browser, "#contactpogingen", "Huisbezoek")
    assert "Telefoon" in rows and "Huisbezoek" in rows
    assert shown(browser, "#status", "In behandeling").startswith("In behandeling")
    assert_accessible(browser)
    press(browser, "Warme overdracht vastleggen")
    shown(browser, ".facts", "Warme overdracht")
    assert browser.find_element(By.ID, "warme-overdracht").text == "Ja"
    result = "Vervolghulp en/of verwijzing financieel"
    Select(browser.find_element(By.ID, "outcome")).select_by_value("help_accepted")
    Select(browser.find_element(By.ID, "eindresultaat")).select_by_value(result)
    submit(browser, "form.resolve button")
    shown(browser, ".facts", result)
    assert browser.find_element(By.ID, "eindresultaat").text == result
    assert_accessible(browser)
    browser.get(f"{inbox.base_url}/meldingen/{aid}/contactkaart")  # closed: the card is gone
    assert "Yilmaz" not in shown(browser, "main", "geen contactgegevens")
    assert browser.find_elements(By.ID, "geen-kaart")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "inbox-contactpogingen-eindresultaat.png"))
    browser.get(f"{inbox.base_url}/meldingen/A-bestaat-niet")
    assert_accessible(browser)

    changes = [a for a in hub.alerts({ref}) if a["alert_id"] == aid]
    assert [a["change"] for a in changes] == [
        "raised",
        "contact_attempted",
        "contact_attempted",
        "handed_over",
        "resolved",
    ]
    today = dt.datetime.now(dt.UTC).date()
    assert [
        (c["kind"], c["on"], c["day_part"], c["reached"], c["actor"])
        for c in changes[-1]["contact_attempts"]
    ] == [
        ("Telefoon", today, "Ochtend", False, "anna"),
        ("Huisbezoek", today, "Middag", True, "anna"),
    ]

    exported = wijkhub(hub, "export", "ddas", "--from", "2025-11-07", "--to", "2025-11-07")
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert ddas.problems(document) == []
    (SCREENSHOTS / "ddas-export.json").write_text(exported.stdout)
    [delivery] = document["leveringen"]
    mine = [c for c in delivery["vroegsignaalzaken"] if c["contactpogingen"]]
    assert [(c["resultaat"], c["contactpogingen"]) for c in mine] == [(result, [
        {"soort": "Telefoon", "bereikt": False, "datum": today.isoformat(), "dagdeel": "Ochtend"},
        {"soort": "Huisbezoek", "bereikt": True, "datum": today.isoformat(), "dagdeel": "Middag"},
    ])]  # fmt: skip
    signal_ids = [v["ID"] for v in mine[0]["vroegsignalen"]]
    assert [(s["signaalpartner"]["type"], s["warmeOverdracht"]) for s in delivery["vroegsignalen"]
            if s["ID"] in signal_ids] == [("Water", True), ("Energie", True)]  # fmt: skip

    reported = wijkhub(hub, "rules", "report", "--from", "2025-11-07", "--to", "2025-11-07",
                       "--json")  # fmt: skip
    assert reported.returncode == 0, reported.stderr
    [row] = [r for r in json.loads(reported.stdout)["rules"]
             if r["rule"] == "VS-ARREARS-2-CREDITORS-90D"]  # fmt: skip
    assert row["outcomes"]["help_accepted"] >= 1
    text = hub.worker.metrics_text()
    outcomes = series(text, "wijkhub_alert_outcomes_total")
    assert any(labels == {"rule": "VS-ARREARS-2-CREDITORS-90D", "outcome": "help_accepted"}
               for labels, _ in outcomes)  # fmt: skip
    audited = [e for e in audit_entries(hub) if e["reason"].startswith("DDAS export 2025-11-07")]
    assert len(audited) == 1


def post_action(base: str, driver, alert_id: str, **fields: str) -> tuple[int, str]:
    """A form of the alert page sent with the browser's session (cookie and CSRF token), as
    the browser would: the status and the page of the answer."""
    csrf = driver.find_element(By.CSS_SELECTOR, "form input[name=csrf]").get_attribute("value")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    request = urllib.request.Request(
        f"{base}/meldingen/{alert_id}/actie", urllib.parse.urlencode({"csrf": csrf, **fields})
        .encode(), headers={"Cookie": cookies})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_contact_attempt_without_a_date_shows_the_form_again_with_an_error_summary(
    hub, inbox, browser, plant
):
    """NL Design System error summary: the same page, 400, "Fout: " in the title, the summary
    first in the content and focused on load, each problem a link to its field (by keyboard,
    the link moves the focus to the field), the field marked invalid and described by its
    message, the rest of the form as the member filled it in; axe-core finds nothing. An
    action the alert no longer allows gets the same page with its problem. Nothing is sent."""
    ref, aid = early_detection(hub, plant, "1017VA", "18")

    log_in(browser, inbox.base_url, "anna")
    list_until(browser, inbox.base_url, aid)
    browser.get(f"{inbox.base_url}/meldingen/{aid}")
    record_attempt(browser, "Brief", "Avond", reached=False, dated=False)
    assert browser.title == "Fout: Melding — wijkhub"
    summary = browser.find_element(By.CSS_SELECTOR, "main > .error-summary[role=alert]")
    assert browser.switch_to.active_element.get_attribute("id") == "fouten"  # focused on load
    assert summary.find_element(By.TAG_NAME, "h2").text == "Er is een probleem"
    message = "Vul de datum van de poging in (jjjj-mm-dd)."
    links = summary.find_elements(By.CSS_SELECTOR, "li a")
    assert [(a.get_dom_attribute("href"), a.text) for a in links] == [("#datum", message)]
    date = browser.find_element(By.ID, "datum")
    assert date.get_attribute("aria-invalid") == "true"
    assert date.get_attribute("aria-describedby") == "datum-fout"
    assert browser.find_element(By.ID, "datum-fout").get_attribute("textContent") == (
        f"Fout: {message}")  # fmt: skip
    assert date.get_attribute("value") == ""  # as sent
    assert Select(browser.find_element(By.ID, "soort")).first_selected_option.text == "Brief"
    assert Select(browser.find_element(By.ID, "dagdeel")).first_selected_option.text == "Avond"
    assert browser.find_element(By.ID, "bereikt-nee").is_selected()
    # only the field with the problem is marked
    assert [e.get_attribute("id") for e in browser.find_elements(
        By.CSS_SELECTOR, "[aria-invalid=true]")] == ["datum"]  # fmt: skip
    assert_accessible(browser)  # the page with its errors
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "inbox-contactpoging-fout.png"))
    ActionChains(browser).send_keys(Keys.TAB).perform()  # from the summary to its link
    assert browser.switch_to.active_element.get_dom_attribute("href") == "#datum"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "datum"

    status, page = post_action(inbox.base_url, browser, aid, action="contact_attempt",
                               soort="Brief", dagdeel="Avond", bereikt="nee", datum="")  # fmt: skip
    assert status == 400 and "<title>Fout: Melding" in page and 'href="#datum"' in page
    status, page = post_action(inbox.base_url, browser, aid, action="contact_made")
    assert status == 400 and "Deze actie kan niet (meer) op deze melding." in page
    assert [a["change"] for a in hub.alerts({ref}) if a["alert_id"] == aid] == ["raised"]
