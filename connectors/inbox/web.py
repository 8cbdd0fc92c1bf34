"""The team inbox over HTTP (aiohttp): sign in, list, open, act. Dutch, server-rendered HTML.

Access rules, enforced on every request (:meth:`Gate.require`, :mod:`.roles`):
- a page opens only for a live server-side session whose role may open it; a refusal
  is audited and answered 403;
- a member sees only the alerts routed to their own team (and those where their team
  is an involved party or, for a regisseur, the household's regisseur); another
  alert answers 404 (also by direct URL), exactly like an alert that does not exist,
  and the attempt is audited as refused;
- opening an alert shows household data, so it is written to the audit topic and
  acknowledged by Kafka before the page is sent;
- the contact card (who is behind the alert's facts and how to reach them) opens only for
  a member of the alert's responsible team; every view is audited (``alert.contact-card``)
  before the card is sent; an involved team gets 403, audited as refused;
- the beheerder and the fg see no household data: their pages show teams, routing and
  rule versions, or the audit trail and the processing register;
- every form carries a CSRF token bound to the server-side session.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiokafka import AIOKafkaProducer

from wijkhub.audit import Chain
from wijkhub.audit import entry as audit_entry
from wijkhub.connectors.inbox import actions, present, roles
from wijkhub.connectors.inbox.gate import COOKIE, Gate
from wijkhub.connectors.inbox.sessions import Session
from wijkhub.connectors.inbox.store import ACTIVE, AlertStore, follow, recent_audit
from wijkhub.connectors.teams import Member, Teams
from wijkhub.kafka import connect
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.privacy import render as register_markdown
from wijkhub.schemas.registry import ALERT_ACTION, AUDIT_ENTRY, Catalog
from wijkhub.settings import Settings
from wijkhub.streams import ddas, lifecycle, ruleset
from wijkhub.streams.access import INBOX
from wijkhub.streams.authenticity import ActionKeys
from wijkhub.streams.lifecycle import OUTCOMES
from wijkhub.streams.routing import Router
from wijkhub.streams.rules import Rule
from wijkhub.streams.topics import ALERT_ACTIONS, AUDIT, full_name

log = get_logger("wijkhub.inbox")
HERE = Path(__file__).parent
ACTION_WAIT_SECONDS = 10.0
AUDIT_PAGE_ENTRIES = 200
STATE_FILTERS = {
    "actief": ACTIVE,
    "nieuw": ("open",),
    "in-behandeling": ("acknowledged",),
    "afgesloten": ("resolved",),
}

CARD_VIEW = "alert.contact-card"  # the audit action of a contact-card view
STORE = web.AppKey("store", AlertStore)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)


def templates() -> jinja2.Environment:
    """The inbox's pages: escaped, and an unknown name in a page is an error, not blank."""
    found = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    found.globals.update(present=present, labels=actions.LABELS, outcomes=OUTCOMES, ddas=ddas)
    return found


class Inbox:
    """The handlers, with what they share: settings, teams, rules, the read model."""

    def __init__(self, settings: Settings, teams: Teams, metrics: Metrics) -> None:
        self.settings, self.teams, self.metrics = settings, teams, metrics
        # the inbox signs every action it sends (streams/authenticity.py)
        self.action_keys = ActionKeys.parse(settings.action_keys)
        self.ruleset = ruleset.load(settings.rules_file or None)
        self.rules: dict[str, Rule] = {r.id: r for r in self.ruleset.rules}
        self.catalog = Catalog()
        self.audit_chain = Chain("inbox")  # this process's audit hash chain
        self.templates = templates()
        self.gate = Gate(settings, teams, metrics, self.audit, self.render)

    def render(self, template: str, **context: Any) -> str:
        return self.templates.get_template(template).render(**context)

    def page(self, template: str, status: int = 200, **context: Any) -> web.Response:
        return self.gate.page(template, status, **context)

    async def visible(
        self, request: web.Request, member: Member, refusal: str
    ) -> tuple[dict[str, Any], str] | None:
        """The requested alert and the member's role in it; None (audited as refused) when
        the member may not see it: the answer is then the same as for no such alert."""
        alert_id = request.match_info["alert_id"]
        alert = request.app[STORE].alerts.get(alert_id)
        role = roles.alert_role(self.teams, member, alert, self._coordinator(request, alert))
        if alert is None or role is None:
            await self.audit(request, member.account, "household.read", alert_id, False, refusal)
            return None
        return alert, role

    def _coordinator(self, request: web.Request, alert: dict[str, Any] | None) -> str | None:
        """The household's recorded regisseur team (duplicate help only: the regisseur's view)."""
        if alert is None or alert["family"] != "duplicate_help":
            return None
        record = request.app[STORE].view(alert["household_ref"])
        coordinator = (record or {}).get("coordinator")
        return str(coordinator["team"]) if coordinator else None

    # -- pages ----------------------------------------------------------------------------

    async def alerts(self, request: web.Request) -> web.Response:
        session = await self.gate.require(request, "alerts")
        member = session.member
        store = request.app[STORE]
        rule = request.query.get("regel") or None
        state = request.query.get("status", "actief")
        found = store.for_team(
            member.team, rule, STATE_FILTERS.get(state, ACTIVE), self._recipients(request, member)
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
            csrf=session.csrf,
            ready=store.ready.is_set(),
        )

    def _recipients(self, request: web.Request, member: Member) -> Any:
        """Who receives an alert, as the list sees it: a regisseur's team also receives the
        duplicate-help alerts of the households it coordinates."""

        def recipients(alert: dict[str, Any]) -> list[str]:
            found = self.teams.recipients(alert)
            if member.team not in found and roles.alert_role(
                self.teams, member, alert, self._coordinator(request, alert)
            ):
                found.append(member.team)
            return found

        return recipients if member.role == roles.REGISSEUR else self.teams.recipients

    async def alert(self, request: web.Request) -> web.Response:
        session = await self.gate.require(request, "alerts")
        found = await self.visible(request, session.member, "not an alert of this team")
        if found is None:
            return self.page("not_found.html", status=404, member=session.member,
                             csrf=session.csrf)  # fmt: skip
        return await self.alert_page(request, session, *found)

    async def alert_page(
        self, request: web.Request, session: Session, alert: dict[str, Any], role: str,
        problems: actions.FormError | None = None, entered: Mapping[str, Any] | None = None,
    ) -> web.Response:  # fmt: skip
        """The page of an alert the member may see (audited as read first: it shows household
        data); after a form with ``problems``, 400 with those problems (an error summary at
        the top, each field marked) and the form as the member filled it in (``entered``)."""
        member = session.member
        involved = " (betrokken partij)" if role == "involved" else ""
        reason = f"melding {alert['alert_id']}{involved}"
        await self.audit(request, member.account, "household.read", alert["household_ref"],
                         True, reason)  # fmt: skip
        rule = self.rules.get(alert["rule_id"])
        record = request.app[STORE].view(alert["household_ref"])
        self.metrics.inbox_pages.labels("alert").inc()
        return self.page(
            "alert.html",
            status=400 if problems else 200,
            member=member,
            alert=alert,
            rule=rule,
            csrf=session.csrf,
            # An involved party learns who else is involved and how to reach them, no more.
            timeline=present.timeline(record, rule) if role == "responsible" else [],
            coordinator=present.coordinator(record),
            possible=lifecycle.allowed(alert, alert["family"]) if role == "responsible" else [],
            role=role,
            responsible=self.teams.name(alert["team"]),
            done=request.query.get("gedaan"),
            pending=request.query.get("verwerking") == "1",
            ddas_case=ddas.is_case(alert),
            today=dt.datetime.now(dt.UTC).date().isoformat(),
            errors=problems.problems if problems else {},
            entered={k: str(v) for k, v in (entered or {}).items() if k != "csrf"},
        )

    async def card(self, request: web.Request) -> web.Response:
        """The contact card of an open alert, for its responsible team only (issue 17)."""
        session = await self.gate.require(request, "alerts")
        member, csrf = session.member, session.csrf
        found = await self.visible(request, member, "contact card of another team's alert")
        if found is None:
            return self.page("not_found.html", status=404, member=member, csrf=csrf)
        alert, role = found
        alert_id = alert["alert_id"]
        if role != "responsible":
            await self.audit(request, member.account, CARD_VIEW, alert_id, False,
                             "not the responsible team")  # fmt: skip
            why = "Alleen het team met de regie over deze melding ziet de contactkaart."
            return self.page("refused.html", status=403, member=member, csrf=csrf,
                             home=f"/meldingen/{alert_id}", why=why)  # fmt: skip
        card = request.app[STORE].card(alert_id)
        await self.audit(request, member.account, CARD_VIEW, alert["household_ref"], True,
                         f"contactkaart melding {alert_id}")  # fmt: skip
        self.metrics.inbox_pages.labels("card").inc()
        return self.page("card.html", member=member, csrf=csrf, alert=alert, card=card,
                         rule=self.rules.get(alert["rule_id"]),
                         responsible=self.teams.name(alert["team"]))  # fmt: skip

    async def act(self, request: web.Request) -> web.Response:
        session = await self.gate.require(request, "alerts")
        member, csrf = session.member, session.csrf
        form = await request.post()
        if not secrets.compare_digest(str(form.get("csrf", "")), csrf):
            raise web.HTTPForbidden(text="Ongeldig formulier; laad de pagina opnieuw.")
        store, alert_id = request.app[STORE], request.match_info["alert_id"]
        found = await self.visible(request, member, "action on another team's alert")
        if found is None:
            return self.page("not_found.html", status=404, member=member, csrf=csrf)
        alert, role = found
        if role != "responsible":
            await self.audit(request, member.account, "alert.act", alert_id, False,
                             "not the responsible team")  # fmt: skip
            raise web.HTTPForbidden(text="Alleen het team met de regie handelt deze melding af.")
        kind, outcome = str(form.get("action", "")), str(form.get("outcome", "")) or None
        try:  # signed only now: the member is of the alert's team (role checked above)
            if kind not in lifecycle.allowed(alert, alert["family"]):
                raise actions.FormError({"": "Deze actie kan niet (meer) op deze melding."})
            detail = actions.details(form, kind, alert)
            record = self.action_keys.sign(
                actions.action_record(alert, kind, member.account, outcome, detail)
            )
        except actions.FormError as problems:  # the same page again, with what to correct
            return await self.alert_page(request, session, alert, role, problems, form)
        topic = full_name(ALERT_ACTIONS, self.settings.topic_prefix)
        await request.app[PRODUCER].send_and_wait(
            topic, self.catalog.encode(ALERT_ACTION, record), key=alert["household_ref"].encode()
        )
        self.metrics.inbox_actions.labels(kind, outcome if outcome in OUTCOMES else "-").inc()
        log.info("inbox action sent", actor=member.account, action=kind, alert_id=alert_id)
        applied = await store.wait_for(alert_id, alert["revision"], ACTION_WAIT_SECONDS)
        suffix = f"gedaan={kind}" if applied else "verwerking=1"
        raise web.HTTPSeeOther(f"/meldingen/{alert_id}?{suffix}")

    async def beheer(self, request: web.Request) -> web.Response:
        """The functional administrator's page: teams, routing, rule versions; no households."""
        session = await self.gate.require(request, "beheer")
        self.metrics.inbox_pages.labels("beheer").inc()
        router = Router.load(self.settings.routing_file or None)
        return self.page("beheer.html", member=session.member, csrf=session.csrf,
                         teams=self.teams, rules=self.ruleset.rules, router=router)  # fmt: skip

    async def audit_trail(self, request: web.Request) -> web.Response:
        """The privacy officer's page: the newest audit entries (who read what, refusals)."""
        session = await self.gate.require(request, "audit")
        entries = await recent_audit(
            self.settings, AUDIT_PAGE_ENTRIES, request.app[PRODUCER].partitions_for
        )
        await self.audit(request, session.member.account, "audit.read", "audit", True,
                         f"{len(entries)} newest entries")  # fmt: skip
        self.metrics.inbox_pages.labels("audit").inc()
        return self.page("audit.html", member=session.member, csrf=session.csrf,
                         entries=entries)  # fmt: skip

    async def register(self, request: web.Request) -> web.Response:
        """The privacy officer's page: the processing register (AVG art. 30), as configured."""
        session = await self.gate.require(request, "register")
        router = Router.load(self.settings.routing_file or None)
        text = register_markdown(self.ruleset, router, self.settings, configured=True)
        self.metrics.inbox_pages.labels("register").inc()
        return self.page("register.html", member=session.member, csrf=session.csrf, text=text)

    async def audit(
        self, request: web.Request, actor: str, action: str, resource: str, allowed: bool,
        reason: str,
    ) -> None:  # fmt: skip
        """One audit entry, acknowledged by Kafka before the caller answers: a link of this
        process's hash chain (the chain is linked and the record handed to the producer
        without an ``await`` between, so places follow sends)."""
        key, record = self.audit_chain.link(
            audit_entry(actor, action, resource, allowed, reason, "inbox")
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
        session: Session | None = self.gate.sessions.get(request.cookies.get(COOKIE))
        raise web.HTTPSeeOther(roles.HOME[session.member.role] if session else "/inloggen")


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
    app.router.add_get("/inloggen", inbox.gate.login_form)
    app.router.add_post("/inloggen", inbox.gate.login)
    app.router.add_post("/uitloggen", inbox.gate.logout)
    if inbox.gate.provider is not None:
        app.router.add_get("/oidc/callback", inbox.gate.callback)
        app.router.add_post("/oidc/backchannel-logout", inbox.gate.backchannel)
    app.router.add_get("/meldingen", inbox.alerts)
    app.router.add_get("/meldingen/{alert_id}", inbox.alert)
    app.router.add_get("/meldingen/{alert_id}/contactkaart", inbox.card)
    app.router.add_post("/meldingen/{alert_id}/actie", inbox.act)
    app.router.add_get("/beheer", inbox.beheer)
    app.router.add_get("/audit", inbox.audit_trail)
    app.router.add_get("/register", inbox.register)
    app.router.add_get("/health", inbox.health)
    app.router.add_static("/static", HERE / "static")
    return app
