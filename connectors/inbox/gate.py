"""Signing in and out of the inbox, and the check every page passes first (:meth:`Gate.require`).

Two ways in, chosen by ``WIJKHUB_INBOX_AUTH``:
- ``oidc`` (the default, and the only one for a municipality): the browser is sent to
  the identity provider (authorization code with PKCE, :mod:`.oidc`); the callback
  checks the state against the attempt kept on the server, the provider's tokens are
  verified, and the ``groups`` claim gives team and role (:mod:`.roles`). Lockout and
  MFA are the provider's: the inbox keeps no password and so cannot lock anyone out.
- ``local`` (development): the teams file's accounts. Failed passwords are counted per
  account *and* client address, so nobody can lock a colleague out from elsewhere.

Either way the session lives on the server (:mod:`.sessions`); the cookie is SameSite=Lax
(a Strict cookie set at the end of the provider's redirect chain would not be sent on
the next page) and every form, sign-in included, carries a CSRF token bound to the
server's record. Sign-in, sign-out and every refusal go to the audit topic.

Group changes at the provider reach a session at its next request once
``WIJKHUB_OIDC_RECHECK_SECONDS`` have passed since the last check: the inbox then
refreshes the tokens and maps the groups again; a refused refresh (account disabled or
removed, provider session ended) or groups that no longer give the same member end the
session. Back-channel logout from the provider ends it at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from wijkhub.connectors.inbox import roles
from wijkhub.connectors.inbox.oidc import Identity, Provider, ProviderError, SignIn
from wijkhub.connectors.inbox.sessions import Session, SessionStore
from wijkhub.connectors.teams import Member, Teams
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.settings import Settings, SettingsError

log = get_logger("wijkhub.inbox")
COOKIE, ATTEMPT_COOKIE = "wijkhub_sessie", "wijkhub_inloggen"
LOCKOUT_FAILURES, LOCKOUT_SECONDS = 5, 15 * 60
MAX_TRACKED = 10_000

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self' {provider}; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# (request, actor, action, resource, allowed, reason) → on the audit topic, acknowledged
Audit = Callable[[web.Request, str, str, str, bool, str], Awaitable[None]]
Render = Callable[..., str]  # (template, **context) → HTML


def provider_for(settings: Settings) -> Provider | None:
    """The provider of ``settings`` (None in local mode); one line naming what is missing."""
    if settings.inbox_auth == "local":
        return None
    needed = (("WIJKHUB_OIDC_ISSUER", settings.oidc_issuer),
              ("WIJKHUB_OIDC_CLIENT_SECRET", settings.oidc_client_secret))  # fmt: skip
    missing = [name for name, value in needed if not value]
    if missing:
        raise SettingsError(
            f"the inbox signs staff in through OIDC and needs {' and '.join(missing)} "
            "(WIJKHUB_INBOX_AUTH=local only for development)"
        )
    callback = settings.inbox_base_url.rstrip("/") + "/oidc/callback"
    return Provider(
        settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret, callback
    )


class Gate:
    def __init__(
        self, settings: Settings, teams: Teams, metrics: Metrics, audit: Audit, render: Render
    ) -> None:
        self.settings, self.teams, self.metrics = settings, teams, metrics
        self.audit, self.render = audit, render
        self.provider = provider_for(settings)
        self.sessions = SessionStore(
            settings.inbox_idle_seconds, settings.inbox_session_max_seconds
        )
        self.secure = settings.inbox_base_url.startswith("https://")
        self.base = settings.inbox_base_url.rstrip("/")
        self.failures: dict[tuple[str, str], list[float]] = {}
        # the sign-in form posts to us, and we redirect to the provider: CSP form-action
        issuer = urlsplit(settings.oidc_issuer)
        origin = f"{issuer.scheme}://{issuer.netloc}" if self.provider else ""
        self.headers = {k: v.replace(" {provider}", f" {origin}" if origin else "")
                        for k, v in SECURITY_HEADERS.items()}  # fmt: skip

    def page(self, template: str, status: int = 200, **context: Any) -> web.Response:
        return web.Response(text=self.render(template, **context), content_type="text/html",
                            status=status, headers=self.headers)  # fmt: skip

    # -- the check before every page ------------------------------------------------------

    async def require(self, request: web.Request, page: str) -> Session:
        """The session of a member who may open ``page``; otherwise the answer is raised:
        to the sign-in page (no session, or it ended), or 403 (audited) for the wrong role."""
        token = request.cookies.get(COOKIE)
        session = self.sessions.get(token)
        if session is None:
            raise web.HTTPSeeOther("/inloggen?verlopen=1" if token else "/inloggen")
        if self.provider is not None and self._due(session):
            await self._recheck(request, token or "", session)
        if not roles.may_open(session.member, page):
            member = session.member
            await self.audit(request, member.account, "page.open", page, False,
                             f"role {member.role} may not open {page}")  # fmt: skip
            html = self.render("refused.html", member=member, csrf=session.csrf,
                               home=roles.HOME[member.role])  # fmt: skip
            raise web.HTTPForbidden(text=html, content_type="text/html", headers=self.headers)
        return session

    def _due(self, session: Session) -> bool:
        return time.monotonic() - session.checked >= self.settings.oidc_recheck_seconds

    async def _recheck(self, request: web.Request, token: str, session: Session) -> None:
        """Refresh the tokens and map the groups again; end the session if either fails."""
        assert self.provider is not None
        identity = Identity(session.tokens.get("claims", {}), session.tokens)
        try:
            fresh = await self.provider.refresh(identity)
            member = roles.member_from_groups(self.teams, fresh.account, fresh.groups)
            if member != session.member:
                raise roles.Refused(f"now {member.role} of {member.team or 'no team'}")
        except (ProviderError, roles.Refused) as exc:
            self.sessions.end(token)
            await self.audit(request, session.member.account, "session.end", "inbox", True,
                             f"access withdrawn at the provider: {exc}")  # fmt: skip
            log.info("inbox session ended", actor=session.member.account, why="recheck")
            raise web.HTTPSeeOther("/inloggen?ingetrokken=1") from None
        session.tokens = {**fresh.tokens, "claims": fresh.claims}
        session.checked = time.monotonic()

    # -- pages ----------------------------------------------------------------------------

    def _attempt_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(ATTEMPT_COOKIE, token, max_age=600, httponly=True, samesite="Lax",
                            secure=self.secure, path="/")  # fmt: skip

    def _login_page(self, status: int = 200, error: str | None = None, notice: str | None = None,
                    account: str = "") -> web.Response:  # fmt: skip
        token, attempt = self.sessions.begin()
        response = self.page("login.html", status=status, error=error, notice=notice,
                               account=account, csrf=attempt.csrf,
                               local=self.provider is None)  # fmt: skip
        self._attempt_cookie(response, token)
        return response

    async def login_form(self, request: web.Request) -> web.Response:
        q = request.query
        notice = (
            "Uw sessie is verlopen of beëindigd. Log opnieuw in." if "verlopen" in q
            else "Uw toegang is gewijzigd bij de gemeente. Log opnieuw in." if "ingetrokken" in q
            else "U bent uitgelogd." if "uitgelogd" in q else None
        )  # fmt: skip
        return self._login_page(notice=notice)

    async def login(self, request: web.Request) -> web.Response:
        """POST /inloggen: the form's CSRF token must match the attempt; then to the provider
        (oidc) or the password check (local)."""
        form = await request.post()
        cookie = request.cookies.get(ATTEMPT_COOKIE)
        attempt = self.sessions.attempt(cookie)
        if attempt is None or not secrets.compare_digest(str(form.get("csrf", "")), attempt.csrf):
            return self._login_page(403, "Het formulier is verlopen. Probeer het opnieuw.")
        if self.provider is None:
            self.sessions.finish(cookie)
            return await self._local(request, form)
        try:
            sign_in = await self.provider.begin()
        except ProviderError as exc:
            log.warning("identity provider unreachable", reason=str(exc))
            return self._login_page(503, "De inlogdienst van de gemeente is niet bereikbaar.")
        attempt.state, attempt.nonce, attempt.verifier = (sign_in.state, sign_in.nonce,
                                                          sign_in.verifier)  # fmt: skip
        raise web.HTTPSeeOther(sign_in.url)

    async def callback(self, request: web.Request) -> web.Response:
        """GET /oidc/callback: the provider sends the browser back with a code and our state."""
        assert self.provider is not None
        attempt = self.sessions.finish(request.cookies.get(ATTEMPT_COOKIE))  # used once
        state = request.query.get("state", "")
        if attempt is None or not attempt.state or not secrets.compare_digest(state, attempt.state):
            self.metrics.inbox_logins.labels("refused").inc()
            return self._login_page(400, "Deze inlogpoging is verlopen of niet van u. "
                                         "Probeer het opnieuw.")  # fmt: skip
        if "code" not in request.query:
            return self._login_page(401, "Inloggen is afgebroken of geweigerd.")
        try:
            identity = await self.provider.finish(
                request.query["code"],
                SignIn("", attempt.state, attempt.nonce, attempt.verifier),
            )
        except ProviderError as exc:
            log.warning("inbox sign-in refused", reason=str(exc))
            self.metrics.inbox_logins.labels("refused").inc()
            return self._login_page(401, "Inloggen is niet gelukt. Probeer het opnieuw.")
        try:
            member = roles.member_from_groups(self.teams, identity.account, identity.groups)
        except roles.Refused as exc:
            await self.audit(request, identity.account, "session.start", "inbox", False, str(exc))
            self.metrics.inbox_logins.labels("refused").inc()
            return self.page("refused.html", status=403, member=None, csrf="", home=None)
        tokens = {**identity.tokens, "claims": identity.claims}
        return await self._start(request, member, provider_sid=str(identity.claims.get("sid", "")),
                                 subject=str(identity.claims["sub"]), tokens=tokens)  # fmt: skip

    async def _start(self, request: web.Request, member: Member, **provider: Any) -> web.Response:
        token, _ = self.sessions.create(member, **provider)
        await self.audit(request, member.account, "session.start", "inbox", True,
                         f"{self.settings.inbox_auth} sign-in as {member.role}"
                         + (f" of {member.team}" if member.team else ""))  # fmt: skip
        self.metrics.inbox_logins.labels("ok").inc()
        log.info("inbox login", actor=member.account, team=member.team, role=member.role)
        response = web.HTTPSeeOther(roles.HOME[member.role])
        response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=self.secure,
                            path="/")  # fmt: skip  # a browser-session cookie: no max-age
        response.del_cookie(ATTEMPT_COOKIE, path="/")
        raise response

    async def _local(self, request: web.Request, form: Any) -> web.Response:
        """Development mode: a teams-file account and its password."""
        account, password = str(form.get("account", "")).strip(), str(form.get("password", ""))
        key = (account, request.remote or "")
        if self._locked(key):
            self.metrics.inbox_logins.labels("locked").inc()
            return self._login_page(429, "Te veel mislukte pogingen. Probeer het over 15 "
                                         "minuten opnieuw.", account=account)  # fmt: skip
        member = await asyncio.to_thread(self.teams.authenticate, account, password)
        if member is None:
            self.failures.setdefault(key, []).append(time.monotonic())
            self.metrics.inbox_logins.labels("refused").inc()
            log.info("inbox login refused")
            return self._login_page(401, "Onbekende gebruikersnaam of onjuist wachtwoord.",
                                    account=account)  # fmt: skip
        self.failures.pop(key, None)
        return await self._start(request, member)

    def _locked(self, key: tuple[str, str]) -> bool:
        now = time.monotonic()
        if len(self.failures) > MAX_TRACKED:  # bounded, whatever names are tried
            self.failures = {k: ts for k, ts in self.failures.items()
                             if ts and now - ts[-1] < LOCKOUT_SECONDS}  # fmt: skip
        recent = [t for t in self.failures.get(key, []) if now - t < LOCKOUT_SECONDS]
        self.failures[key] = recent
        return len(recent) >= LOCKOUT_FAILURES

    async def logout(self, request: web.Request) -> web.Response:
        """POST /uitloggen (CSRF-checked): the session ends here, then at the provider."""
        token = request.cookies.get(COOKIE)
        session = self.sessions.get(token)
        form = await request.post()
        if session is None:
            raise web.HTTPSeeOther("/inloggen")
        if not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
            raise web.HTTPForbidden(text="Ongeldig formulier; laad de pagina opnieuw.")
        self.sessions.end(token)
        await self.audit(request, session.member.account, "session.end", "inbox", True, "sign-out")
        log.info("inbox logout", actor=session.member.account)
        target: str | None = None
        if self.provider is not None:
            identity = Identity(session.tokens.get("claims", {}), session.tokens)
            with suppress(ProviderError):  # ended here; the provider's times out by itself
                target = await self.provider.end_session_url(identity, f"{self.base}/inloggen")
        response = web.HTTPSeeOther(target or "/inloggen?uitgelogd=1")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def backchannel(self, request: web.Request) -> web.Response:
        """POST /oidc/backchannel-logout: the provider ended a session; so do we."""
        assert self.provider is not None
        form = await request.post()
        try:
            claims = await self.provider.logout_claims(str(form.get("logout_token", "")))
        except ProviderError as exc:
            log.warning("back-channel logout refused", reason=str(exc))
            return web.json_response({"error": "invalid_request"}, status=400,
                                     headers={"Cache-Control": "no-store"})  # fmt: skip
        ended = self.sessions.end_provider_session(
            str(claims.get("sid", "")), str(claims.get("sub", ""))
        )
        for session in ended:
            await self.audit(request, session.member.account, "session.end", "inbox", True,
                             "back-channel logout from the provider")  # fmt: skip
        log.info("back-channel logout", sessions=len(ended))
        return web.Response(status=200, headers={"Cache-Control": "no-store"})
