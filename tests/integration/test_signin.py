"""Staff sign in at a real Keycloak (OIDC), in a real Chromium, against the real broker and worker.

Each test makes its own users at the provider (admin REST API, random passwords), so
no test depends on another's sign-ins. Issue 15's "done when", one test each: a member
signs in on the provider's page, sees exactly their team's alerts and acts on one; the
fg sees the audit trail and no household; a beheerder sees no household; a signed-out
cookie is refused; an idle session is gone; a user removed from their group loses
access at the next request after the recheck interval; the provider's back-channel
logout ends the session.
"""

from __future__ import annotations

import http.client
import secrets
import time
import uuid
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from wijkhub.connectors.alerts import latest_alerts

from builders import TEAM_A, audit_entries, household, list_until, press, shown, wait_for_alerts


@pytest.fixture
def staff(idp):
    """Make a user at the provider in the given groups: (username, password)."""

    def make(prefix: str, *groups: str) -> tuple[str, str]:
        name, password = f"{prefix}-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16)
        idp.admin().create_user(name, password, list(groups))
        return name, password

    return make


def sign_in(driver, base: str, idp, user: tuple[str, str]) -> None:
    """From the inbox's sign-in page to the provider's, type the credentials there, and
    wait until the browser is back on the inbox past its callback."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.get(f"{base}/inloggen")
    driver.find_element(By.ID, "inloggen").click()
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "username")))
    assert driver.current_url.startswith(idp.issuer)  # the provider's own page
    driver.find_element(By.ID, "username").send_keys(user[0])
    driver.find_element(By.ID, "password").send_keys(user[1])
    driver.find_element(By.ID, "kc-login").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.current_url.startswith(base) and "/oidc/callback" not in d.current_url
    )


def get(base: str, path: str, cookie: str) -> tuple[int, str]:
    """(status, Location) of one GET with only this session cookie, redirects not followed."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": f"wijkhub_sessie={cookie}"})
        answer = conn.getresponse()
        answer.read()
        return answer.status, answer.getheader("Location") or ""
    finally:
        conn.close()


def refused_everywhere(driver, base: str, paths: tuple[str, ...]) -> None:
    """Each page answers "Geen toegang", and no page shows anything of a household."""
    for path in paths:
        driver.get(f"{base}{path}")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Geen toegang", path
        assert "Tijdlijn" not in driver.page_source and "household" not in driver.page_source


def listed(driver) -> set[str]:
    return {
        a.get_attribute("href").rsplit("/", 1)[-1]
        for a in driver.find_elements(By.CSS_SELECTOR, "table a[href^='/meldingen/']")
    }


def test_a_member_signs_in_at_the_provider_sees_exactly_their_teams_alerts_and_acts(
    hub, oidc_inbox, idp, browser, plant, staff
):
    p = plant.person("1037TB", "38")  # CBS wijk WK036300: wijkteam-centrum
    hub.ingest("population", [p])
    signals = [plant.arrears("1037TB", "38", "Huur", "2026-05-01"),
               plant.arrears("1037TB", "38", "Water", "2026-05-20")]  # fmt: skip
    hub.ingest("vroegsignalering", signals)
    [raised] = wait_for_alerts(hub, {household("1037TB", "38")}, 1)
    assert raised["team"] == TEAM_A
    aid = raised["alert_id"]
    member = staff("anna", TEAM_A)

    sign_in(browser, oidc_inbox.base_url, idp, member)
    assert urlsplit(browser.current_url).path == "/meldingen"
    list_until(browser, oidc_inbox.base_url, aid)
    # exactly the team's active alerts: those the alerts topic routes to team A
    expected = {a["alert_id"] for a in latest_alerts(hub.settings)
                if a["team"] == TEAM_A and a["state"] != "resolved"}  # fmt: skip
    assert listed(browser) == expected
    assert "medewerker" in browser.find_element(By.TAG_NAME, "header").text

    browser.find_element(By.CSS_SELECTOR, f'a[href="/meldingen/{aid}"]').click()
    press(browser, "Oppakken")
    assert member[0] in shown(browser, ".facts", member[0])
    claimed = [a for a in hub.alerts({household("1037TB", "38")}) if a["alert_id"] == aid]
    assert claimed[-1]["claimed_by"] == member[0]
    audit = [e for e in audit_entries(hub) if e["actor"] == member[0]]
    assert ("session.start", True) in [(e["action"], e["allowed"]) for e in audit]
    assert any(e["action"] == "household.read" and e["allowed"] for e in audit)


def test_the_fg_sees_the_audit_trail_and_the_register_and_no_household(
    hub, oidc_inbox, idp, browser, staff
):
    fg = staff("fg", "fg")
    sign_in(browser, oidc_inbox.base_url, idp, fg)
    assert urlsplit(browser.current_url).path == "/audit"
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Audittrail" in page and "session.start" in page and fg[0] in page
    browser.get(f"{oidc_inbox.base_url}/register")
    assert "Processing register" in browser.find_element(By.TAG_NAME, "main").text
    refused_everywhere(browser, oidc_inbox.base_url, ("/meldingen", "/beheer"))
    refused = [(e["action"], e["resource"]) for e in audit_entries(hub)
               if e["actor"] == fg[0] and not e["allowed"]]  # fmt: skip
    assert refused == [("page.open", "alerts"), ("page.open", "beheer")]


def test_a_beheerder_sees_teams_routing_and_rules_and_no_household(
    hub, oidc_inbox, idp, browser, staff
):
    admin = staff("beheer", "beheerders")
    sign_in(browser, oidc_inbox.base_url, idp, admin)
    assert urlsplit(browser.current_url).path == "/beheer"
    page = browser.find_element(By.TAG_NAME, "main").text
    assert TEAM_A in page and "VS-" in page and "vangnet" in page
    aid = next(iter(a["alert_id"] for a in latest_alerts(hub.settings)), "A-0")
    refused_everywhere(
        browser, oidc_inbox.base_url, ("/meldingen", f"/meldingen/{aid}", "/audit", "/register")
    )


def test_after_sign_out_the_old_cookie_is_refused_and_the_provider_asks_again(
    oidc_inbox, idp, browser, staff
):
    member = staff("bas", TEAM_A)
    sign_in(browser, oidc_inbox.base_url, idp, member)
    cookie = browser.get_cookie("wijkhub_sessie")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert get(oidc_inbox.base_url, "/meldingen", cookie["value"])[0] == 200  # replayable now
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    WebDriverWait(browser, 30).until(ec.url_contains("/inloggen"))
    assert get(oidc_inbox.base_url, "/meldingen", cookie["value"]) == (
        303, "/inloggen?verlopen=1")  # fmt: skip
    # the provider's session ended too: signing in asks for the password again
    browser.get(f"{oidc_inbox.base_url}/inloggen")
    browser.find_element(By.ID, "inloggen").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "password")))


def test_after_the_idle_timeout_the_session_is_gone(
    oidc_inbox, oidc_inbox_process, idp, browser, staff
):
    short = oidc_inbox_process("oidc-inbox-idle", inbox_idle_seconds=4.0)
    idp.admin().register_inbox([oidc_inbox.base_url, short.base_url])
    short.start()
    try:
        member = staff("cas", TEAM_A)
        sign_in(browser, short.base_url, idp, member)
        cookie = browser.get_cookie("wijkhub_sessie")["value"]
        for _ in range(3):  # each request restarts the idle clock
            time.sleep(2)
            assert get(short.base_url, "/meldingen", cookie)[0] == 200
        time.sleep(5)
        assert get(short.base_url, "/meldingen", cookie) == (303, "/inloggen?verlopen=1")
        browser.get(f"{short.base_url}/meldingen")
        assert "verlopen" in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    finally:
        short.stop()


def test_a_user_removed_from_their_group_loses_access_at_the_next_request_after_the_recheck(
    hub, oidc_inbox, idp, browser, staff
):
    member = staff("dirk", TEAM_A)
    sign_in(browser, oidc_inbox.base_url, idp, member)
    cookie = browser.get_cookie("wijkhub_sessie")["value"]
    time.sleep(2.5)  # past WIJKHUB_OIDC_RECHECK_SECONDS: this request refreshes and passes
    assert get(oidc_inbox.base_url, "/meldingen", cookie)[0] == 200
    idp.admin().remove_from_group(member[0], TEAM_A)
    time.sleep(2.5)
    assert get(oidc_inbox.base_url, "/meldingen", cookie) == (303, "/inloggen?ingetrokken=1")
    assert get(oidc_inbox.base_url, "/meldingen", cookie) == (303, "/inloggen?verlopen=1")
    ended = [e["reason"] for e in audit_entries(hub)
             if e["actor"] == member[0] and e["action"] == "session.end"]  # fmt: skip
    assert len(ended) == 1 and "in no team's group" in ended[0]


def test_the_providers_back_channel_logout_ends_the_session(oidc_inbox, idp, browser, staff):
    member = staff("eva", TEAM_A)
    sign_in(browser, oidc_inbox.base_url, idp, member)
    cookie = browser.get_cookie("wijkhub_sessie")["value"]
    assert get(oidc_inbox.base_url, "/meldingen", cookie)[0] == 200
    idp.admin().log_out_user(member[0])  # Keycloak posts a logout token to the inbox
    deadline = time.monotonic() + 15
    while get(oidc_inbox.base_url, "/meldingen", cookie)[0] == 200:
        assert time.monotonic() < deadline, "the back-channel logout did not end the session"
        time.sleep(0.5)
    assert get(oidc_inbox.base_url, "/meldingen", cookie) == (303, "/inloggen?verlopen=1")
