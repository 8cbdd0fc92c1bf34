"""Who may read or write what: bearer tokens per named account, checked in constant time.

One format for every token list in the settings (``name=token,name2=token2``):
ingest tokens per source, operator tokens per person. A token is a secret of
at least 24 characters; the account *name* is what logs and the audit topic
record, never the token.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping

MIN_TOKEN_LENGTH = 24


def parse_tokens(spec: str, what: str, allowed: Collection[str] | None = None) -> dict[str, str]:
    """``name=token,…`` → {name: token}; unknown names and short tokens are refused."""
    tokens: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, token = part.partition("=")
        name = name.strip()
        if allowed is not None and name not in allowed:
            raise ValueError(f"{what} for unknown name {name!r}")
        if len(token.strip()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"{what} for {name} must be at least {MIN_TOKEN_LENGTH} characters")
        tokens[name] = token.strip()
    return tokens


def bearer(authorization: str | None) -> str:
    return (authorization or "").removeprefix("Bearer ").strip()


def token_matches(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def account_for(tokens: Mapping[str, str], authorization: str | None) -> str | None:
    """The account whose token was presented, or None. Every token is compared."""
    given = bearer(authorization)
    found = None
    for name, token in tokens.items():
        if given and token_matches(given, token):
            found = name
    return found
