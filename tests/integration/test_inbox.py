"""The team inbox in a real headless Chromium, against the real broker and worker.

A member logs in, sees the alert the worker raised from events produced to
Kafka, opens it, takes it on, acknowledges and resolves it; the state change
arrives on the alerts topic. A member of another team can neither see nor
open it, also not by its URL. Every opening is on the audit topic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from wijkhub.schemas.registry import AUDIT_ENTRY, Catalog
from wijkhub.streams import ddas
from wijkhub.streams.topics import AUDIT

from builders import TEAM_A, TEAM_B, household, inbox_password, series, wait_for_alerts

SCREENSHOTS = Path(".wijkhub/screenshots")
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_source() -> str:
    """axe-core as `make install` put it in the cache (by the hash of tests/a11y/package.json,
    as the Makefile computes it); never a copy in the repository."""
    manifest = Path(__file__).parents[1] / "a11y" / "package.json"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    script = cache / "wijkhub" / f"axe-{digest}" / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        pytest.fail(f"axe-core is not installed at {script}: run `make install`")
    return script.read_text()


def assert_accessible(driver) -> None:
    """axe-core on the page as it is now: zero WCAG 2.1 A and AA violations."""
    driver.execute_script(axe_source())
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.map(n => n.target)])))"
        ".catch(e => done([['axe failed', String(e), []]]));",
        WCAG_21_AA,
    )
    assert found == [], (driver.current_url, found)


def chromium() -> webdriver.Chrome:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("Debian's chromium and chromium-driver are needed: `.ci/run` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.fixture
def browser():
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver, base: str, account: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/inloggen")
    driver.find_element(By.ID, "account").send_keys(account)
    driver.find_element(By.ID, "password").send_keys(inbox_password(account))
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(ec.url_contains("/meldingen"))


def list_until(driver, base: str, alert_id: str, timeout: float = 30.0) -> None:
    """Reload the list until the alert shows up (the inbox follows the alerts topic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        driver.get(f"{base}/meldingen")
        if driver.find_elements(By.CSS_SELECTOR, f'a[href="/meldingen/{alert_id}"]'):
            return
        time.sleep(0.5)
    raise AssertionError(f"alert {alert_id} not in the inbox list after {timeout}s")


def press(driver, label: str) -> None:
    """Press a button and wait for the page the inbox answers with (applied, or pending)."""
    submit(driver, f'//button[normalize-space()="{label}"]', By.XPATH)


def submit(driver, locator: str, by: str = By.CSS_SELECTOR) -> None:
    """Click and wait until the answer page has loaded. A marker on the old document is gone
    then. (Chrome's staleness check, and reading an element while the document is replaced,
    can fail with "Node ... does not belong to the document": the test relies on neither.)"""
    driver.execute_script("window.wijkhubBefore = true;")
    driver.find_element(by, locator).click()
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return window.wijkhubBefore !== true;")
    )
    WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".done")))


def shown(driver, css: str, text: str, timeout: float = 30.0) -> str:
    """The element's text once it holds ``text``: the inbox may answer before the worker
    applied the action ("wordt verwerkt"), so the page is refreshed until then."""
    deadline = time.monotonic() + timeout
    while True:
        found = driver.find_element(By.CSS_SELECTOR, css).text
        if text in found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
        driver.refresh()


def audit_entries(hub) -> list[dict]:
    catalog = Catalog()
    return [catalog.decode(r.value, AUDIT_ENTRY) for r in hub.records(AUDIT)]


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
    opened = [e for e in audit_entries(hub) if e["actor"] == "anna" and e["channel"] == "inbox"]
    assert opened and all(e["resource"] == ref and e["allowed"] for e in opened)
    text = hub.worker.metrics_text()
    acknowledged = series(text, "wijkhub_time_to_acknowledge_seconds_count")
    # the only acknowledgement in the session (as the resolve below is the only resolve)
    assert [v for labels, v in acknowledged if labels["team"] == TEAM_A] == [1.0]
    sent = series(inbox.metrics_text(), "wijkhub_inbox_actions_total")
    assert ({"action": "resolve", "outcome": "help_accepted"}, 1.0) in sent
    applied = series(text, "wijkhub_alert_actions_total")
    assert ({"action": "resolve", "outcome": "help_accepted", "result": "applied"}, 1.0) in applied


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
    assert_accessible(browser)  # the involved party's page
    opened = [e for e in audit_entries(hub) if e["actor"] == "bram" and e["allowed"]]
    # one view, audited as the involved party's
    assert ["betrokken partij" in e["reason"] for e in opened if e["resource"] == ref] == [True]


def post_login(base: str, account: str, password: str) -> int:
    form = urllib.parse.urlencode({"account": account, "password": password}).encode()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    try:
        with opener.open(f"{base}/inloggen", data=form, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


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


def record_attempt(driver, kind: str, day_part: str, reached: bool) -> None:
    """Fill in the contact-attempt form with the keyboard only, and send it with Enter."""
    form = driver.find_element(By.CSS_SELECTOR, "form.attempt")
    form.find_element(By.ID, "soort").send_keys(kind)
    form.find_element(By.ID, "dagdeel").send_keys(day_part)
    form.find_element(By.ID, "bereikt-ja" if reached else "bereikt-nee").send_keys(Keys.SPACE)
    driver.execute_script("window.wijkhubBefore = true;")
    form.find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return window.wijkhubBefore !== true;")
    )


def test_attempts_and_end_result_reach_the_ddas_export_and_the_rules_report(
    hub, inbox, browser, plant
):
    """The responsible team records two attempts (not reached, reached) and resolves with a
    DDAS end result, by keyboard; every inbox page passes axe-core (WCAG 2.1 AA); the DDAS
    export of the period validates and holds both attempts and the end result; the rules
    report shows the outcome under its rule. The involved-team and login pages are checked
    by axe-core in the tests below."""
    hub.ingest("population", [plant.person("1038VB", "39")])  # wijkteam-centrum
    signals = [plant.arrears("1038VB", "39", "Water", "2025-10-03"),
               plant.arrears("1038VB", "39", "Energie", "2025-11-07")]  # fmt: skip
    hub.ingest("vroegsignalering", signals)
    ref = household("1038VB", "39")
    [raised] = wait_for_alerts(hub, {ref}, 1)
    aid = raised["alert_id"]

    log_in(browser, inbox.base_url, "anna")
    list_until(browser, inbox.base_url, aid)
    assert_accessible(browser)
    browser.get(f"{inbox.base_url}/meldingen/{aid}")
    assert_accessible(browser)
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
