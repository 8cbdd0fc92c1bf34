"""The inbox as an OpenID Connect client of the municipality's identity provider.

Authorization code flow with PKCE (S256) through authlib's client; every token the
provider sends is verified with joserfc (authlib's JOSE library) against the
provider's published keys (JWKS, fetched again once when a token names a key id not
yet known: the provider rotated its keys). No token is parsed or trusted by hand:

- the ID token: signature, ``iss`` (the configured issuer, which discovery must
  confirm), ``aud`` (our client id; ``azp`` too when present), ``exp``/``iat``,
  ``sub``, and the ``nonce`` of this sign-in attempt (the ``state`` is checked by the
  caller against the attempt kept on the server);
- a refreshed ID token: the same, without a nonce, for the same ``sub``;
- a back-channel logout token (OpenID Connect Back-Channel Logout 1.0): signature,
  ``iss``, ``aud``, ``iat``, the back-channel ``events`` member, ``sid`` or ``sub``, and
  no ``nonce``.

Only asymmetric signatures are accepted: a token "signed" with HS256 under the public
key as a secret is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import httpx2 as httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LEEWAY_SECONDS = 60
TIMEOUT_SECONDS = 10.0


class ProviderError(RuntimeError):
    """The provider could not be reached, refused, or sent a token that fails a check."""


@dataclass(frozen=True)
class SignIn:
    """What the browser is sent to the provider with, and what the callback must match."""

    url: str
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class Identity:
    """A verified ID token's claims and the provider's tokens (kept in the session only)."""

    claims: dict[str, Any]
    tokens: dict[str, Any]

    @property
    def account(self) -> str:
        return str(self.claims.get("preferred_username") or self.claims["sub"])

    @property
    def groups(self) -> list[str]:
        groups = self.claims.get("groups") or []
        return [str(g).rsplit("/", 1)[-1] for g in groups]  # full paths or plain names


class Provider:
    """One provider (issuer) and the inbox's client there."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.issuer, self.client_id = issuer.rstrip("/"), client_id
        self._secret, self.redirect_uri = client_secret, redirect_uri
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._secret,
            redirect_uri=self.redirect_uri,
            scope="openid profile",
            code_challenge_method="S256",
            timeout=TIMEOUT_SECONDS,
        )

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, once; its issuer must be the configured one exactly."""
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                    answer = await http.get(url)
                    answer.raise_for_status()
                    found = cast(dict[str, Any], answer.json())
            except (httpx.HTTPError, ValueError) as exc:
                raise ProviderError(f"discovery at {url} failed: {exc}") from None
            if found.get("issuer") != self.issuer:
                raise ProviderError(f"discovery names issuer {found.get('issuer')!r}, not ours")
            self._metadata = found
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            try:
                async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                    answer = await http.get(meta["jwks_uri"])
                    answer.raise_for_status()
                    self._keys = KeySet.import_key_set(answer.json())
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                raise ProviderError(f"the provider's keys (JWKS) are unreadable: {exc}") from None
        return self._keys

    async def _verified(self, token: str) -> dict[str, Any]:
        """The claims of a JWT whose signature one of the provider's keys verifies."""
        try:
            try:
                decoded = jwt.decode(token, await self._key_set(), algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # keys rotated: fetch them once more
                decoded = jwt.decode(token, await self._key_set(True), algorithms=ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise ProviderError(f"token signature not valid: {exc}") from None
        return dict(decoded.claims)

    def _check(self, claims: dict[str, Any], **options: dict[str, Any]) -> None:
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            iat={"essential": True},
            **options,  # type: ignore[arg-type]  # joserfc's ClaimsOption is a TypedDict
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise ProviderError(f"token claims not valid: {exc}") from None
        if "azp" in claims and claims["azp"] != self.client_id:
            raise ProviderError("token claims not valid: azp is another client")

    async def begin(self) -> SignIn:
        """A new authorization request: the URL, and the state, nonce and PKCE verifier."""
        meta = await self.metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        return SignIn(str(url), state, nonce, verifier)

    async def finish(self, code: str, sign_in: SignIn) -> Identity:
        """Exchange the code (with the PKCE verifier) and verify the ID token."""
        meta = await self.metadata()
        try:
            async with self._client() as client:
                tokens = await client.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=sign_in.verifier
                )
        except (OAuthError, httpx.HTTPError) as exc:
            raise ProviderError(f"the code was not accepted: {exc}") from None
        return await self._identity(dict(tokens), nonce=sign_in.nonce)

    async def refresh(self, identity: Identity) -> Identity:
        """New tokens for the same subject, with the groups as the provider has them now."""
        meta = await self.metadata()
        try:
            async with self._client() as client:
                tokens = await client.refresh_token(
                    meta["token_endpoint"], refresh_token=identity.tokens["refresh_token"]
                )
        except (OAuthError, httpx.HTTPError, KeyError) as exc:
            raise ProviderError(f"refresh refused: {exc}") from None
        fresh = await self._identity(dict(tokens), nonce=None)
        if fresh.claims["sub"] != identity.claims["sub"]:
            raise ProviderError("refresh answered for another subject")
        return fresh

    async def _identity(self, tokens: dict[str, Any], nonce: str | None) -> Identity:
        if "id_token" not in tokens:
            raise ProviderError("the provider sent no ID token")
        claims = await self._verified(tokens["id_token"])
        options: dict[str, dict[str, Any]] = {"sub": {"essential": True},
                                              "exp": {"essential": True}}  # fmt: skip
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        self._check(claims, **options)
        return Identity(claims, tokens)

    async def logout_claims(self, logout_token: str) -> dict[str, Any]:
        """The verified claims of a back-channel logout token (``sid`` and/or ``sub``)."""
        claims = await self._verified(logout_token)
        self._check(claims, events={"essential": True})
        if BACKCHANNEL_EVENT not in (claims.get("events") or {}):
            raise ProviderError("logout token without the back-channel logout event")
        if "nonce" in claims:
            raise ProviderError("logout token must not carry a nonce")
        if not claims.get("sid") and not claims.get("sub"):
            raise ProviderError("logout token names neither sid nor sub")
        if claims["iat"] < time.time() - 600:
            raise ProviderError("logout token is older than ten minutes")
        return claims

    async def end_session_url(self, identity: Identity, after: str) -> str | None:
        """Where to send the browser to end the provider's session too (RP-initiated
        logout), coming back to ``after``; None when the provider offers none."""
        meta = await self.metadata()
        endpoint = meta.get("end_session_endpoint")
        if not endpoint:
            return None
        params = {"id_token_hint": identity.tokens.get("id_token", ""),
                  "post_logout_redirect_uri": after, "client_id": self.client_id}  # fmt: skip
        return str(httpx.URL(endpoint, params=params))
