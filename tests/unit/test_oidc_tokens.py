"""The inbox trusts no token the provider's keys do not verify and whose claims do not fit.

Tokens are signed here with keys made for the test; the provider's discovery document
and key set are given to :class:`Provider` as it would have fetched them. The real
provider (Keycloak) signs the tokens of the browser tests in tests/integration.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from wijkhub.connectors.inbox.oidc import BACKCHANNEL_EVENT, Provider, ProviderError

ISSUER, CLIENT = "https://login.gemeente.example/realms/wijkhub", "wijkhub-inbox"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, other key


def provider() -> Provider:
    p = Provider(ISSUER, CLIENT, "secret", "https://inbox.example/oidc/callback")
    p._metadata = {"issuer": ISSUER, "jwks_uri": "https://unused.example/jwks"}
    p._keys = KeySet([RSAKey.import_key(KEY.as_dict(private=False))])
    return p


def token(claims: dict[str, Any], key: Any = KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key)


def id_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "u-1", "iat": now, "exp": now + 300,
              "nonce": "n-1", "preferred_username": "anna",
              "groups": ["/wijkteam-centrum"]}  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def identity(tokens: dict[str, Any], nonce: str | None = "n-1"):
    return asyncio.run(provider()._identity(tokens, nonce))


def test_a_valid_id_token_gives_account_and_group_names():
    found = identity({"id_token": token(id_claims()), "access_token": "x"})
    assert (found.account, found.groups) == ("anna", ["wijkteam-centrum"])


@pytest.mark.parametrize(
    ("claims", "key", "alg", "why"),
    [
        (lambda: id_claims(nonce="n-other"), KEY, "RS256", "nonce"),
        (lambda: id_claims(nonce=None), KEY, "RS256", "nonce"),
        (lambda: id_claims(aud="another-client"), KEY, "RS256", "aud"),
        (lambda: id_claims(iss="https://evil.example/realms/wijkhub"), KEY, "RS256", "iss"),
        (lambda: id_claims(exp=int(time.time()) - 3600), KEY, "RS256", "exp"),
        (lambda: id_claims(azp="another-client"), KEY, "RS256", "azp"),
        (id_claims, STRANGER, "RS256", "signature"),
        # a shared-secret (HMAC) signature: refused by algorithm, whatever the key
        (
            lambda: id_claims(),
            OctKey.generate_key(256, parameters={"kid": "k1"}),
            "HS256",
            "signature",
        ),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(claims, key, alg, why):
    # claims made when the test runs, not when it is collected: "exp" is five minutes on
    with pytest.raises(ProviderError, match=why):
        identity({"id_token": token(claims(), key, alg)})


def test_no_id_token_no_identity():
    with pytest.raises(ProviderError, match="no ID token"):
        identity({"access_token": "x"})


def test_a_refreshed_id_token_needs_no_nonce():
    found = identity({"id_token": token(id_claims(nonce=None))}, nonce=None)
    assert found.claims["sub"] == "u-1"


def logout_claims(**changes: Any) -> dict[str, Any]:
    claims = {"iss": ISSUER, "aud": CLIENT, "iat": int(time.time()), "jti": "j-1",
              "sid": "s-1", "events": {BACKCHANNEL_EVENT: {}}}  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_back_channel_logout_token_names_the_session_to_end():
    claims = asyncio.run(provider().logout_claims(token(logout_claims())))
    assert claims["sid"] == "s-1"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        (lambda: logout_claims(nonce="n"), "nonce"),
        (lambda: logout_claims(events={"other": {}}), "back-channel logout event"),
        (lambda: logout_claims(events=None), "events"),
        (lambda: logout_claims(sid=None), "neither sid nor sub"),
        (lambda: logout_claims(aud="another-client"), "aud"),
        (lambda: logout_claims(iat=int(time.time()) - 3600), "older than ten minutes"),
    ],
)
def test_a_logout_token_that_fails_a_check_is_refused(claims, why):
    with pytest.raises(ProviderError, match=why):  # claims made when the test runs
        asyncio.run(provider().logout_claims(token(claims())))
