"""The team inbox over HTTP (aiohttp): log in, list, open, act. Dutch, server-rendered HTML.

Access rules, enforced on every request:
- a member sees only the alerts routed to their own team; another team's
  alert answers 404 (also by direct URL), exactly like an alert that does
  not exist, and the attempt is audited as refused;
- opening an alert shows household data, so it is written to the audit
  topic and acknowledged by Kafka before the page is sent;
- every form carries a CSRF token bound to the session; sessions are signed
  cookies (HttpOnly, SameSite=Strict), valid for one working day;
- repeated wrong passwords lock the account for a while.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiokafka import AIOKafkaProducer
from itsdangerous import BadSignature, URLSafeTimedSerializer

from wijkhub.audit import Chain
from wijkhub.audit import entry as audit_entry
from wijkhub.connectors.inbox import actions, present
from wijkhub.connectors.inbox.store import ACTIVE, AlertStore, follow
from wijkhub.connectors.teams import Member, Teams
from wijkhub.kafka import connect
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.schemas.registry import ALERT_ACTION, AUDIT_ENTRY, Catalog
from wijkhub.settings import Settings, SettingsError
from wijkhub.streams import ddas, lifecycle, ruleset
from wijkhub.streams.access import INBOX
from wijkhub.streams.authenticity import ActionKeys
from wijkhub.streams.lifecycle import OUTCOMES
from wijkhub.streams.rules import Rule
from wijkhub.streams.topics import ALERT_ACTIONS, AUDIT, full_name

log = get_logger("wijkhub.inbox")
HERE = Path(__file__).parent
COOKIE = "wijkhub_sessie"
SESSION_SECONDS = 9 * 3600
LOCKOUT_FAILURES, LOCKOUT_SECONDS = 5, 15 * 60
MAX_TRACKED_ACCOUNTS = 10_000
ACTION_WAIT_SECONDS = 10.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATE_FILTERS = {
    "actief": ACTIVE,
    "nieuw": ("open",),
    "in-behandeling": ("acknowledged",),
    "afgesloten": ("resolved",),
}

STORE = web.AppKey("store", AlertStore)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)


class Inbox:
    """The handlers, with what they share: settings, teams, rules, the read model."""

    def __init__(self, settings: Settings, teams: Teams, metrics: Metrics) -> None:
        if len(settings.inbox_secret) < 32:
            raise SettingsError("WIJKHUB_INBOX_SECRET must be a secret of at least 32 characters")
        self.settings, self.teams, self.metrics = settings, teams, metrics
        # the inbox signs every action it sends (streams/authenticity.py)
        self.action_keys = ActionKeys.parse(settings.action_keys)
        self.rules: dict[str, Rule] = {
            r.id: r for r in ruleset.load(settings.rules_file or None).rules
        }
        self.catalog = Catalog()
        self.audit_chain = Chain("inbox")  # this process's audit hash chain
        self.signer = URLSafeTimedSerializer(settings.inbox_secret, salt="wijkhub-inbox-sessie")
        self.failures: dict[str, list[float]] = {}
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.globals.update(present=present, labels=actions.LABELS, outcomes=OUTCOMES,
                                      ddas=ddas)  # fmt: skip
        self.secure_cookie = settings.inbox_base_url.startswith("https://")

    # -- sessions -------------------------------------------------------------------------

    def member(self, request: web.Request) -> tuple[Member, str] | None:
        """The logged-in member and their CSRF token, from the signed session cookie."""
        try:
            data = self.signer.loads(request.cookies.get(COOKIE, ""), max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        member = Member(data["a"], data["t"])
        if self.teams.passwords.get(member.account, ("",))[0] != member.team:
            return None  # account removed or moved to another team: the session ends now
        return member, data["c"]

    def page(self, template: str, status: int = 200, **context: Any) -> web.Response:
        html = self.templates.get_template(template).render(**context)
        return web.Response(
            text=html, content_type="text/html", status=status, headers=SECURITY_HEADERS
        )

    async def visible(
        self, request: web.Request, member: Member, refusal: str
    ) -> tuple[dict[str, Any], str] | None:
        """The requested alert and the member's role in it; None (audited as refused) when
        the member may not see it: the answer is then the same as for no such alert."""
        alert_id = request.match_info["alert_id"]
        alert = request.app[STORE].alerts.get(alert_id)
        role = self.role(alert, member)
        if alert is None or role is None:
            await self.audit(request, member, alert_id, False, refusal)
            return None
        return alert, role

    def role(self, alert: dict[str, Any] | None, member: Member) -> str | None:
        """'responsible' (the routed team), 'involved' (a party in a duplicate-help alert)
        or None: the member may not see the alert at all."""
        if alert is None:
            return None
        if alert["team"] == member.team:
            return "responsible"
        return "involved" if member.team in self.teams.recipients(alert) else None

    def locked(self, account: str) -> bool:
        now = time.monotonic()
        if len(self.failures) > MAX_TRACKED_ACCOUNTS:  # bounded, whatever names are tried
            self.failures = {a: ts for a, ts in self.failures.items()
                             if ts and now - ts[-1] < LOCKOUT_SECONDS}  # fmt: skip
        recent = [t for t in self.failures.get(account, []) if now - t < LOCKOUT_SECONDS]
        self.failures[account] = recent
        return len(recent) >= LOCKOUT_FAILURES

    # -- pages ----------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        return self.page("login.html", error=None, account="")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        account, password = str(form.get("account", "")).strip(), str(form.get("password", ""))
        if self.locked(account):
            self.metrics.inbox_logins.labels("locked").inc()
            return self.page(
                "login.html",
                status=429,
                account=account,
                error="Te veel mislukte pogingen. Probeer het over 15 minuten opnieuw.",
            )
        member = await asyncio.to_thread(self.teams.authenticate, account, password)
        if member is None:
            self.failures.setdefault(account, []).append(time.monotonic())
            self.metrics.inbox_logins.labels("refused").inc()
            log.info("inbox login refused")
            return self.page(
                "login.html",
                status=401,
                account=account,
                error="Onbekende gebruikersnaam of onjuist wachtwoord.",
            )
        self.failures.pop(account, None)
        self.metrics.inbox_logins.labels("ok").inc()
        log.info("inbox login", actor=member.account, team=member.team)
        token = self.signer.dumps(
            {"a": member.account, "t": member.team, "c": secrets.token_urlsafe(24)}
        )
        response = web.HTTPSeeOther("/meldingen")
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
            path="/",
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/inloggen")
        response.del_cookie(COOKIE, path="/")
        return response

    async def alerts(self, request: web.Request) -> web.Response:
        session = self.member(request)
        if session is None:
            raise web.HTTPSeeOther("/inloggen")
        member, csrf = session
        store = request.app[STORE]
        rule = request.query.get("regel") or None
        state = request.query.get("status", "actief")
        found = store.for_team(
            member.team, rule, STATE_FILTERS.get(state, ACTIVE), self.teams.recipients
        )
        self.metrics.inbox_pages.labels("list").inc()
        return self.page(
            "list.html",
            member=member,
            team_name=self.teams.name(member.team),
            alerts=found,
            rules=self.rules,
            rule=rule,
            state=state,
            states=STATE_FILTERS,
            csrf=csrf,
            ready=store.ready.is_set(),
        )

    async def alert(self, request: web.Request) -> web.Response:
        session = self.member(request)
        if session is None:
            raise web.HTTPSeeOther("/inloggen")
        member, csrf = session
        store, alert_id = request.app[STORE], request.match_info["alert_id"]
        found = await self.visible(request, member, "not an alert of this team")
        if found is None:
            return self.page("not_found.html", status=404, member=member, csrf=csrf)
        alert, role = found
        reason = f"melding {alert_id}" + (" (betrokken partij)" if role == "involved" else "")
        await self.audit(request, member, alert["household_ref"], True, reason)
        rule = self.rules.get(alert["rule_id"])
        record = store.view(alert["household_ref"])
        self.metrics.inbox_pages.labels("alert").inc()
        done = request.query.get("gedaan")
        return self.page(
            "alert.html",
            member=member,
            alert=alert,
            rule=rule,
            csrf=csrf,
            # An involved party learns who else is involved and how to reach them, no more.
            timeline=present.timeline(record, rule) if role == "responsible" else [],
            coordinator=present.coordinator(record),
            possible=lifecycle.allowed(alert, alert["family"]) if role == "responsible" else [],
            role=role,
            responsible=self.teams.name(alert["team"]),
            done=done,
            pending=request.query.get("verwerking") == "1",
            ddas_case=ddas.is_case(alert),
            today=dt.datetime.now(dt.UTC).date().isoformat(),
        )

    async def act(self, request: web.Request) -> web.Response:
        session = self.member(request)
        if session is None:
            raise web.HTTPSeeOther("/inloggen")
        member, csrf = session
        form = await request.post()
        if not secrets.compare_digest(str(form.get("csrf", "")), csrf):
            raise web.HTTPForbidden(text="Ongeldig formulier; laad de pagina opnieuw.")
        store, alert_id = request.app[STORE], request.match_info["alert_id"]
        found = await self.visible(request, member, "action on another team's alert")
        if found is None:
            return self.page("not_found.html", status=404, member=member, csrf=csrf)
        alert, role = found
        if role != "responsible":
            raise web.HTTPForbidden(text="Alleen het team met de regie handelt deze melding af.")
        kind, outcome = str(form.get("action", "")), str(form.get("outcome", "")) or None
        if kind not in lifecycle.allowed(alert, alert["family"]):
            raise web.HTTPBadRequest(text="Deze actie kan niet (meer) op deze melding.")
        try:  # signed only now: the member is of the alert's team (role checked above)
            detail = actions.details(form, kind, alert)
            record = self.action_keys.sign(
                actions.action_record(alert, kind, member.account, outcome, detail)
            )
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        topic = full_name(ALERT_ACTIONS, self.settings.topic_prefix)
        await request.app[PRODUCER].send_and_wait(
            topic, self.catalog.encode(ALERT_ACTION, record), key=alert["household_ref"].encode()
        )
        self.metrics.inbox_actions.labels(kind, outcome if outcome in OUTCOMES else "-").inc()
        log.info("inbox action sent", actor=member.account, action=kind, alert_id=alert_id)
        applied = await store.wait_for(alert_id, alert["revision"], ACTION_WAIT_SECONDS)
        suffix = f"gedaan={kind}" if applied else "verwerking=1"
        raise web.HTTPSeeOther(f"/meldingen/{alert_id}?{suffix}")

    async def audit(
        self, request: web.Request, member: Member, resource: str, allowed: bool, reason: str
    ) -> None:
        key, record = self.audit_chain.link(
            audit_entry(member.account, "household.read", resource, allowed, reason, "inbox")
        )
        topic = full_name(AUDIT, self.settings.topic_prefix)
        await request.app[PRODUCER].send_and_wait(
            topic, self.catalog.encode(AUDIT_ENTRY, record), key=key
        )

    async def metrics_page(self, request: web.Request) -> web.Response:
        request.app[STORE].measure(self.metrics, dt.datetime.now(dt.UTC))
        return web.Response(body=self.metrics.render(), content_type="text/plain")

    async def health(self, request: web.Request) -> web.Response:
        ready = request.app[STORE].ready.is_set()
        return web.json_response(
            {"status": "ok" if ready else "starting"}, status=200 if ready else 503
        )

    async def index(self, request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/meldingen")


def _stopped(task: asyncio.Task[None]) -> None:
    """A background task that ends by itself is a fault: log it loudly; /health stays 503."""
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "inbox background task failed",
            # A coroutine (and a generator) has a __name__; typeshed's protocols for them do not.
            task=task.get_coro().__name__,  # type: ignore[union-attr]  # typeshed lacks __name__
            error=repr(task.exception()),
        )


def build(settings: Settings, teams: Teams, metrics: Metrics | None = None) -> web.Application:
    """The inbox application; on start-up it connects to Kafka and starts reading."""
    inbox = Inbox(settings, teams, metrics or Metrics())
    app = web.Application(client_max_size=64 * 1024)
    app[STORE] = AlertStore()

    async def kafka(app: web.Application) -> Any:
        producer = AIOKafkaProducer(  # the inbox principal: writes alert-actions and audit
            **connect(settings, INBOX).aiokafka(), acks="all", enable_idempotence=True
        )
        await producer.start()
        app[PRODUCER] = producer
        tasks = [
            asyncio.create_task(follow(settings, app[STORE], producer.partitions_for)),
        ]
        for task in tasks:
            task.add_done_callback(_stopped)
        # /metrics on a port of its own: the inbox port faces the teams' browsers
        page = web.Application()
        page[STORE] = app[STORE]
        page.router.add_get("/metrics", inbox.metrics_page)
        runner = web.AppRunner(page, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.inbox_host, settings.inbox_metrics_port).start()
        yield
        await runner.cleanup()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()

    app.cleanup_ctx.append(kafka)
    app.router.add_get("/", inbox.index)
    app.router.add_get("/inloggen", inbox.login_form)
    app.router.add_post("/inloggen", inbox.login)
    app.router.add_post("/uitloggen", inbox.logout)
    app.router.add_get("/meldingen", inbox.alerts)
    app.router.add_get("/meldingen/{alert_id}", inbox.alert)
    app.router.add_post("/meldingen/{alert_id}/actie", inbox.act)
    app.router.add_get("/health", inbox.health)
    app.router.add_static("/static", HERE / "static")
    return app
