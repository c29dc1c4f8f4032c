"""Bearer tokens: a JWT verified with `PATRON_JWT_SECRET` (HMAC) or keys from `PATRON_JWKS_URL`.

The gateway faces the internet, so a token is distrusted at every step, cheapest first, and
each refusal is an `AuthError` whose message says why without repeating the token:

1. size (over `MAX_TOKEN_BYTES` refused before parsing) and shape (three base64url
   segments; the header a JSON object, without duplicate names, NaN or Infinity);
2. the algorithm: only the configured ones (`jwt_algorithms.accepted_algorithms`), so never
   `none` and never an HMAC token under a JWKS or the reverse; no `crit` extensions;
3. the key: the secret, or the JWKS key named by `kid`, whose own `alg` (when it has one)
   must be the token's and whose type must fit the algorithm (`key_fits`);
4. the signature, by PyJWT, restricted to that one algorithm;
5. the claims, checked here against one clock so every message is stable: `exp` required,
   `nbf` and `iat` when present (each within the leeway), `iss`/`aud` required and matched
   when configured (an `aud` is refused when none is configured, as RFC 7519 asks), `sub`
   a non-empty string, `roles` a list of strings (unknown roles ignored: they grant
   nothing), `store` a non-empty string when present.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.jwks import JwksCache, JwksUnavailable
from gateway.jwt_algorithms import HMAC_ALGORITHMS, accepted_algorithms, key_fits
from loyalty.access import Role, Viewer, parse_roles

MAX_TOKEN_BYTES = 8192  # far above any real token; refused before any decoding
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class AuthError(Exception):
    """A bearer token that cannot be trusted: the request is refused with 401. The message
    says why and never contains the token (nor any part of it)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller behind a request, and until when the verifier accepts its token."""

    viewer: Viewer
    # UNIX time at which the token stops being accepted (`exp` plus the leeway): a WebSocket
    # connection authenticated by it is closed then. None: anonymous, nothing expires.
    valid_until: float | None = None

    @classmethod
    def anonymous(cls) -> Identity:
        return cls(Viewer.anonymous())


class TokenVerifier:
    def __init__(
        self,
        *,
        algorithms: Sequence[str] = (),
        secret: str | None = None,
        jwks: JwksCache | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (secret is None) == (jwks is None):
            raise ValueError("configure exactly one of a JWT secret and a JWKS")
        self.algorithms = accepted_algorithms(algorithms, secret=secret is not None)
        self._secret = secret.encode() if secret is not None else None
        self._jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._clock = clock
        # A PyJWS that knows only the accepted algorithms: a second fence behind `_algorithm`.
        self._jws = jwt.PyJWS(algorithms=list(self.algorithms))

    async def verify(self, token: str) -> Identity:
        header = _header(token)
        algorithm = self._algorithm(header)
        if "crit" in header:
            raise AuthError("critical header extensions (crit) are not supported")
        key = await self._key(header, algorithm)
        try:
            decoded = self._jws.decode_complete(
                token,
                key,
                algorithms=[algorithm],
                # Public keys under 2048 bits (RSA) are refused; a short HMAC secret is a
                # start-time check in production (settings), a warning otherwise.
                options={"enforce_minimum_key_length": self._jwks is not None},
            )
        except jwt.InvalidSignatureError as exc:
            raise AuthError("invalid signature") from exc
        except jwt.InvalidKeyError as exc:
            raise AuthError("the signing key is too weak or unusable") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("malformed token") from exc
        return self._identity(_json_object(decoded["payload"], "payload"))

    def _algorithm(self, header: Mapping[str, Any]) -> str:
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise AuthError("malformed token: the header has no alg")
        if alg.lower() == "none":
            raise AuthError("unsigned tokens (alg none) are not accepted")
        if alg not in self.algorithms:
            accepted = ", ".join(self.algorithms)
            raise AuthError(f"the token's algorithm is not accepted (accepted: {accepted})")
        return alg

    async def _key(self, header: Mapping[str, Any], algorithm: str) -> Any:
        if self._secret is not None:
            return self._secret
        assert self._jwks is not None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("the token names no signing key (kid)")
        try:
            found = await self._jwks.get(kid)
        except JwksUnavailable as exc:
            raise AuthError("signing keys unavailable: the JWKS could not be fetched") from exc
        if found is None:
            raise AuthError("unknown signing key (kid)")
        if found.algorithm is not None and found.algorithm != algorithm:
            raise AuthError("the signing key is for another algorithm")
        if not key_fits(algorithm, found.key):
            raise AuthError("the signing key's type does not fit the token's algorithm")
        return found.key

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        now = self._clock()
        exp = _numeric_date(claims, "exp")
        if exp is None:
            raise AuthError("token has no exp")
        if exp + self.leeway <= now:
            raise AuthError("token expired")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and nbf - self.leeway > now:
            raise AuthError("token not yet valid (nbf)")
        iat = _numeric_date(claims, "iat")
        if iat is not None and iat - self.leeway > now:
            raise AuthError("token issued in the future (iat)")
        self._check_issuer(claims)
        self._check_audience(claims)
        return Identity(_viewer(claims), valid_until=exp + self.leeway)

    def _check_issuer(self, claims: Mapping[str, Any]) -> None:
        if self.issuer is None:
            return
        if "iss" not in claims:
            raise AuthError("token has no iss")
        if claims["iss"] != self.issuer:
            raise AuthError("wrong issuer (iss)")

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        if "aud" not in claims:
            if self.audience is not None:
                raise AuthError("token has no aud")
            return
        if self.audience is None:
            raise AuthError("the token is for an audience (aud) this gateway is not")
        aud = claims["aud"]
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.audience not in audiences:
            raise AuthError("wrong audience (aud)")


def _header(token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthError(f"token too large (over {MAX_TOKEN_BYTES} bytes)")
    segments = token.split(".")
    # Unpadded base64url: never a length of 4n+1, the one shape the alphabet cannot decode.
    # The signature may be empty: an unsigned token is then refused by its alg, saying so.
    shaped = len(segments) == 3 and all(_SEGMENT.fullmatch(s) and len(s) % 4 != 1 for s in segments)
    if not shaped or not segments[0] or not segments[1]:
        raise AuthError("malformed token: not three base64url segments")
    raw = base64.urlsafe_b64decode(segments[0] + "=" * (-len(segments[0]) % 4))
    return _json_object(raw, "header")


def _json_object(raw: bytes, part: str) -> dict[str, Any]:
    try:
        value = json.loads(raw, object_pairs_hook=_unique_names, parse_constant=_no_constant)
    except _DuplicateName as exc:
        raise AuthError(f"malformed token: the {part} repeats a name") from exc
    except (ValueError, RecursionError) as exc:
        raise AuthError(f"malformed token: the {part} is not JSON") from exc
    if not isinstance(value, dict):
        raise AuthError(f"malformed token: the {part} is not a JSON object")
    return value


class _DuplicateName(ValueError):
    pass


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """RFC 7519 section 4: a JWT with a repeated claim name is refused, not read either way."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _DuplicateName
    return found


def _no_constant(name: str) -> Any:
    """`NaN` and `Infinity` are not JSON (an `exp` of Infinity would never expire)."""
    raise ValueError(name)


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    try:
        number = float(value) if isinstance(value, int | float) else math.nan
    except OverflowError:  # an integer beyond any float
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise AuthError(f"{name} must be a number of seconds (NumericDate)")
    return number


def _viewer(claims: Mapping[str, Any]) -> Viewer:
    if "sub" not in claims:
        raise AuthError("token has no sub")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.strip():
        raise AuthError("sub must be a non-empty string")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("roles must be a list of strings")
    store = claims.get("store")
    if store is not None and (not isinstance(store, str) or not store):
        raise AuthError("store must be a non-empty string")
    return Viewer(sub=sub, roles=parse_roles(roles), store=store)


def issue_token(
    secret: str,
    sub: str,
    roles: Sequence[Role | str],
    *,
    ttl: int = 3600,
    store: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
    algorithm: str = "HS256",
) -> str:
    """An HMAC-signed token (`patron token`, the demo and the tests)."""
    if algorithm not in HMAC_ALGORITHMS:
        raise ValueError(f"a secret signs only {', '.join(HMAC_ALGORITHMS)}, not {algorithm}")
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
    return jwt.encode(claims, secret, algorithm=algorithm)
