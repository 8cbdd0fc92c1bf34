"""Inbox sessions, kept on the server: the browser holds only an opaque, random id.

Why not signed cookies (as before issue 15): a signed cookie stays valid until it
expires, whatever happens on the server, so signing out did not end it and a copied
cookie worked for nine hours. Here the cookie is a 256-bit random id and the store
keeps only its SHA-256 (a memory dump yields no usable cookie). A session ends when:
- its member signs out (:meth:`SessionStore.end`): the same cookie replayed finds nothing;
- it saw no request for ``idle_seconds``, or ``max_seconds`` passed since sign-in;
- the provider says so (back-channel logout, :meth:`SessionStore.end_provider_session`);
- a token refresh shows the account lost its group or was removed (the inbox calls
  :meth:`SessionStore.end`).

Sign-in attempts (the OIDC state, nonce and PKCE verifier, or the local form's CSRF
token) are kept the same way, briefly, bound to a cookie of their own.

The store lives in the inbox process: one inbox serves a municipality's teams; a
restart signs everyone out, which is the safe direction. Clock: monotonic.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wijkhub.connectors.teams import Member

ATTEMPT_SECONDS = 600.0  # a sign-in at the provider must come back within ten minutes
MAX_ATTEMPTS = 10_000  # bounded, whatever a client keeps starting


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    """One signed-in member. ``provider_sid`` and ``subject`` tie it to the provider's
    session (back-channel logout names either); ``tokens`` are the provider's tokens,
    used to recheck the member's groups and to sign out at the provider."""

    member: Member
    csrf: str
    started: float
    seen: float
    provider_sid: str = ""
    subject: str = ""
    tokens: dict[str, Any] = field(default_factory=dict, repr=False)
    checked: float = 0.0


@dataclass
class Attempt:
    """A sign-in under way: what the callback or the form must match."""

    csrf: str
    created: float
    state: str = ""
    nonce: str = ""
    verifier: str = ""


class SessionStore:
    def __init__(
        self,
        idle_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds, self.max_seconds, self.clock = idle_seconds, max_seconds, clock
        self._sessions: dict[str, Session] = {}
        self._attempts: dict[str, Attempt] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    # -- sessions ---------------------------------------------------------------------

    def create(self, member: Member, **provider: Any) -> tuple[str, Session]:
        """A new session for ``member``: (the cookie value, the session)."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        session = Session(member, secrets.token_urlsafe(24), now, now, checked=now, **provider)
        self._sessions[_digest(token)] = session
        self._sweep(now)
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie value, its idle clock restarted; None when there is
        none, it was ended, or it expired (idle or absolute), which also removes it."""
        if not token:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self.clock()
        if self._expired(session, now):
            del self._sessions[key]
            return None
        session.seen = now
        return session

    def end(self, token: str | None) -> Session | None:
        """End the session of a cookie value (sign-out); the ended session, or None."""
        return self._sessions.pop(_digest(token), None) if token else None

    def end_provider_session(self, provider_sid: str = "", subject: str = "") -> list[Session]:
        """End every session of a provider session id (or, without one, of a subject):
        the provider signed the user out (back-channel logout)."""
        if not provider_sid and not subject:
            return []
        ended = [
            key
            for key, s in self._sessions.items()
            if (s.provider_sid == provider_sid if provider_sid else s.subject == subject)
        ]
        return [self._sessions.pop(key) for key in ended]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle_seconds or now - session.started > self.max_seconds

    def _sweep(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]

    # -- sign-in attempts ---------------------------------------------------------------

    def begin(self, **fields: str) -> tuple[str, Attempt]:
        """A new sign-in attempt: (its cookie value, the attempt with a fresh CSRF token)."""
        now = self.clock()
        stale = [k for k, a in self._attempts.items() if now - a.created > ATTEMPT_SECONDS]
        for key in stale:
            del self._attempts[key]
        while len(self._attempts) >= MAX_ATTEMPTS:
            del self._attempts[next(iter(self._attempts))]  # the oldest
        token = secrets.token_urlsafe(32)
        attempt = Attempt(secrets.token_urlsafe(24), now, **fields)
        self._attempts[_digest(token)] = attempt
        return token, attempt

    def attempt(self, token: str | None) -> Attempt | None:
        """The live attempt of a cookie value (still usable: see :meth:`finish`)."""
        if not token:
            return None
        attempt = self._attempts.get(_digest(token))
        if attempt is None or self.clock() - attempt.created > ATTEMPT_SECONDS:
            return None
        return attempt

    def finish(self, token: str | None) -> Attempt | None:
        """Take the attempt out (used once: a replayed callback finds nothing)."""
        attempt = self.attempt(token)
        if token:
            self._attempts.pop(_digest(token), None)
        return attempt
