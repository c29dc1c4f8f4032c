"""Bearer tokens: HS256 with `PATRON_JWT_SECRET`, or RS256 keys from `PATRON_JWKS_URL`.

Only the configured algorithm is accepted (never `none`, never HS/RS confusion); `exp` and
`sub` are required; `iss` and `aud` are checked when configured. A JWKS is fetched through
the shared HTTP client, cached, and fetched again when a token names an unknown `kid`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import jwt

from loyalty.access import Role, Viewer, parse_roles

JWKS_MIN_REFRESH_SECONDS = 30.0


class AuthError(Exception):
    """A bearer token that cannot be trusted: the request is refused with 401."""


class TokenVerifier:
    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if (secret is None) == (jwks_url is None):
            raise ValueError("configure exactly one of a JWT secret and a JWKS URL")
        self.secret = secret
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.http = http
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Viewer:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("malformed token") from exc
        if self.secret is not None:
            key: Any = self.secret
            algorithm = "HS256"
        else:
            key = await self._key(header.get("kid"))
            algorithm = "RS256"
        if header.get("alg") != algorithm:
            raise AuthError(f"only {algorithm} tokens are accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self.audience is not None,
                },
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        roles = claims.get("roles", [])
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list):
            raise AuthError("roles must be a list")
        store = claims.get("store")
        return Viewer(
            sub=str(claims["sub"]),
            roles=parse_roles(str(r) for r in roles),
            store=str(store) if store is not None else None,
        )

    async def _key(self, kid: Any) -> Any:
        if not isinstance(kid, str):
            raise AuthError("token has no kid")
        if kid not in self._keys:
            async with self._lock:
                fresh = time.monotonic() - self._fetched_at < JWKS_MIN_REFRESH_SECONDS
                if kid not in self._keys and not fresh:
                    await self._fetch_keys()
        if kid not in self._keys:
            raise AuthError("unknown signing key")
        return self._keys[kid]

    async def _fetch_keys(self) -> None:
        assert self.jwks_url is not None and self.http is not None
        try:
            response = await self.http.get(self.jwks_url, timeout=5.0)
            response.raise_for_status()
            jwks = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise AuthError("signing keys unavailable") from exc
        self._keys = {k.key_id: k.key for k in jwks.keys if k.key_id}
        self._fetched_at = time.monotonic()


def issue_token(
    secret: str,
    sub: str,
    roles: Sequence[Role | str],
    *,
    ttl: int = 3600,
    store: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token (`patron token`, the demo and the tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": [r.value if isinstance(r, Role) else r for r in roles],
        "iat": now,
        "exp": now + ttl,
    }
    if store is not None:
        claims["store"] = store
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
