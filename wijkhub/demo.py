"""``wijkhub demo``: the whole hub on one machine, with a synthetic municipality.

Real broker (started here unless KAFKA_BOOTSTRAP_SERVERS is set), real topics,
a real Faust worker and the team inbox in their own processes, the intake
connector, and the alerts read back from Kafka as they arrive. Staff sign in at a
real local Keycloak (``wijkhub idp``, started here unless WIJKHUB_OIDC_ISSUER is set
or WIJKHUB_INBOX_AUTH=local): each demo team's member signs in on the provider's
login form, as a browser would, and counts what the inbox shows. Ends with a
one-line summary, and how to sign in yourself.
"""

from __future__ import annotations

import html
import http.cookiejar
import re
import secrets
import time
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

import typer

from wijkhub.admin import prepare
from wijkhub.broker import DEMO_PASSWORD, DEMO_TEAMS, DISTRICT_FIXTURE, free_port, local_broker
from wijkhub.connectors.alerts import iter_alerts, latest_alerts, one_line
from wijkhub.connectors.intake import Intake
from wijkhub.connectors.teams import load as load_teams
from wijkhub.idp import demo_client_secret, demo_users, local_idp
from wijkhub.settings import Settings
from wijkhub.supervise import InboxProcess, WorkerProcess
from wijkhub.synthetic import SOURCE_ORDER, generate


def _with_demo_secrets(settings: Settings) -> Settings:
    """A throw-away key per demo run when none is configured (never do this in production)."""
    changes = {}
    if len(settings.pseudonym_key) < 32:
        changes["pseudonym_key"] = secrets.token_urlsafe(32).encode()
    if len(settings.dead_letter_key) < 32:
        changes["dead_letter_key"] = secrets.token_urlsafe(32).encode()
    if len(settings.id_key) < 32:
        changes["id_key"] = secrets.token_urlsafe(32).encode()
    if not settings.action_keys:
        changes["action_keys"] = "demo=" + secrets.token_urlsafe(32)
    return settings.with_(**changes) if changes else settings


def run_demo(settings: Settings, households: int, keep_running: bool, timeout: float) -> bool:
    """Run the demo; stops what it started (unless --keep-running), also on an error."""
    broker, idp, idp_ours = None, None, False
    if settings.inbox_auth == "oidc" and not settings.oidc_issuer:
        idp = local_idp(settings.data_dir, settings.idp_port, settings.idp_java_home)
        idp_ours = not idp.running()  # one already running (`wijkhub idp start`) stays up
        typer.echo("starting the local Keycloak (first run fetches it from Maven Central)…")
        began = time.monotonic()
        issuer = idp.start()
        typer.echo(f"identity provider {issuer} up in {time.monotonic() - began:.0f} s")
        settings = settings.with_(oidc_issuer=issuer, oidc_client_secret=demo_client_secret())
    if settings.bootstrap_servers is None:
        broker = local_broker(settings)
        typer.echo(
            "starting the local Kafka broker (first run fetches the jars from Maven Central)…"
        )
        broker.start(port=settings.kafka_port)
        settings = broker.client_settings(settings)  # TLS, SCRAM: each service its principal
    run_id = time.strftime("%Y%m%d%H%M%S")
    settings = _with_demo_secrets(settings).with_(
        topic_prefix=f"{settings.topic_prefix}demo-{run_id}.",
        app_id=f"{settings.app_id}-demo-{run_id}",
        web_port=free_port() if settings.web_port == 6066 else settings.web_port,
        # Own state per run: a RocksDB directory is locked by the worker that opened it.
        data_dir=settings.data_dir.resolve() / "demo" / run_id,
        district_table=settings.district_table or str(DISTRICT_FIXTURE),
        teams_file=settings.teams_file or str(DEMO_TEAMS),
    )
    inbox_port = free_port() if settings.inbox_port == 6072 else settings.inbox_port
    base_url = f"http://{settings.inbox_host}:{inbox_port}"
    settings = settings.with_(inbox_port=inbox_port, inbox_base_url=base_url,
                              inbox_metrics_port=free_port())  # fmt: skip
    if idp is not None:
        idp.admin().register_inbox([base_url], backchannel=idp_ours)
    worker = WorkerProcess(settings, settings.data_dir / "worker.log")
    inbox = InboxProcess(settings, settings.data_dir / "inbox.log")
    ok = False
    try:
        ok = _run(settings, worker, households, timeout) and _check_inbox(settings, inbox)
        _how_to_sign_in(settings, inbox.base_url)
    finally:
        if keep_running and ok:
            pids = " ".join(str(p.proc.pid) for p in (worker, inbox) if p.proc)
            typer.echo(f"--keep-running: team inbox at {inbox.base_url}/")
            typer.echo(f"worker, inbox, broker and provider stay up; stop them with: kill {pids}; "
                       "wijkhub broker stop; wijkhub idp stop")  # fmt: skip
        else:
            inbox.stop()
            worker.stop()
            if broker is not None:
                broker.stop()
            if idp is not None and idp_ours:
                idp.stop()
    return ok


def _how_to_sign_in(settings: Settings, base_url: str) -> None:
    if settings.inbox_auth == "local":
        typer.echo(f"sign in at {base_url}/ with an account of {DEMO_TEAMS.name} "
                   f"(password {DEMO_PASSWORD!r}; development mode)")  # fmt: skip
        return
    users = ", ".join(f"{u} ({'/'.join(g)})" for u, g in demo_users().items())
    typer.echo(f"sign in at {base_url}/ on the provider's page ({settings.oidc_issuer}) as "
               f"one of {users}; password {DEMO_PASSWORD!r} (demo only)")  # fmt: skip


def _form(page: str, css_id: str) -> str:
    """The action URL of the form with this id (the inbox's or the provider's page)."""
    found = re.search(rf'<form[^>]*id="{css_id}"[^>]*action="([^"]+)"', page) or re.search(
        rf'<form[^>]*action="([^"]+)"[^>]*id="{css_id}"', page
    )
    if not found:
        raise RuntimeError(f"no form {css_id} on the sign-in page")
    return html.unescape(found.group(1))


def _sign_in(opener: Any, base_url: str, account: str, oidc: bool) -> str:
    """Sign in as a browser does (the CSRF token, then the provider's login form); the page
    the inbox shows after it."""
    with opener.open(f"{base_url}/inloggen", timeout=10) as page:
        text = page.read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', text)
    fields = {"csrf": csrf.group(1) if csrf else ""}
    if not oidc:
        fields |= {"account": account, "password": DEMO_PASSWORD}
    form = urllib.parse.urlencode(fields).encode()
    with opener.open(f"{base_url}/inloggen", data=form, timeout=30) as page:
        text = page.read().decode()  # oidc: the provider's login page
    if oidc:
        login = urllib.parse.urlencode({"username": account, "password": DEMO_PASSWORD})
        with opener.open(_form(text, "kc-form-login"), data=login.encode(), timeout=30) as page:
            text = page.read().decode()
    return text


class _LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """Send Secure cookies to 127.0.0.1 over plain HTTP, as browsers do (a loopback address is
    a secure context): Keycloak marks its sign-in cookies Secure."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        host = urllib.parse.urlsplit(request.get_full_url()).hostname
        return host in ("127.0.0.1", "localhost") or super().return_ok_secure(cookie, request)


def _inbox_count(base_url: str, account: str, oidc: bool) -> int:
    """Sign in as a demo member and count the alerts on their team's list."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar(_LoopbackIsSecure()))
    )
    page = _sign_in(opener, base_url, account, oidc)
    return len(set(re.findall(r'href="/meldingen/(A-[0-9a-f]+)"', page)))


def _check_inbox(settings: Settings, inbox: InboxProcess) -> bool:
    """Every open alert is on exactly one team's inbox list (the members see their own)."""
    inbox.start()
    teams = load_teams(settings.teams_file)
    oidc = settings.inbox_auth == "oidc"
    if oidc:  # one member of each team in the demo realm
        members = {u: g[0] for u, g in demo_users().items() if len(g) == 1 and g[0] in teams.teams}
    else:
        members = {account: team for account, (team, _) in teams.passwords.items()}
    open_per_team = Counter(a["team"] for a in latest_alerts(settings) if a["state"] == "open")
    seen = {team: _inbox_count(inbox.base_url, account, oidc)
            for account, team in sorted(members.items())}  # fmt: skip
    typer.echo("inbox: " + ", ".join(f"{t} {n}" for t, n in sorted(seen.items())))
    ok = all(seen.get(team, 0) == n for team, n in open_per_team.items())
    if not ok:
        typer.echo(f"inbox MISMATCH: open alerts per team {dict(open_per_team)}")
    return ok


def _run(settings: Settings, worker: WorkerProcess, households: int, timeout: float) -> bool:
    began = time.monotonic()
    say = typer.echo
    say(f"broker {settings.bootstrap_servers}; topics prefixed {settings.topic_prefix!r}")
    created = prepare(settings)
    say(f"{sum(r.created for r in created)} topics created; every service's ACLs applied")
    worker.start()
    say(f"worker up; metrics at {worker.base_url}/metrics ; JSON log in {worker.log_path}")

    town = generate(households)
    intake_counts: Counter = Counter()
    for source in SOURCE_ORDER:
        intake = Intake(settings, source)
        try:
            report = intake.ingest(b"\n".join(town.lines(source)), f"synthetic-{source}")
        finally:
            intake.close()
        intake_counts["events"] += report.events
        intake_counts["dead_lettered"] += report.dead_lettered
        say(
            f"  {source:17} {report.events:5} events, {report.dead_lettered} dead letters "
            f"{dict(report.reasons) or ''}"
        )
    expected = sum(town.expected.values())
    say(f"{households} households ingested; {expected} planted patterns should raise alerts:")

    deadline = time.monotonic() + timeout
    for seen, alert in enumerate(iter_alerts(settings, follow=True, until=deadline), 1):
        say("  ALERT " + one_line(alert))
        if seen >= expected:
            break
    time.sleep(2.0)  # grace: an alert that should not exist would show up now
    final = Counter(a["family"] for a in latest_alerts(settings))
    seconds = time.monotonic() - began
    ok = dict(final) == {k: v for k, v in town.expected.items() if v}
    families = ", ".join(f"{k} {v}" for k, v in sorted(final.items()))
    say(
        f"summary: {sum(final.values())} alerts ({families}); expected {dict(town.expected)}; "
        f"{intake_counts['events']} events, {intake_counts['dead_lettered']} dead letters; "
        f"{seconds:.1f} s; {'OK' if ok else 'MISMATCH'}"
    )
    return ok
