"""Making tokens, genuine and forged, for the authentication tests: HMAC tokens, tokens
signed with generated RSA/EC/Ed25519 keys, raw segments PyJWT would refuse to produce, and
JWKs to publish the public keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.conftest import TEST_JWT_SECRET

DROP = object()  # a claim value meaning "leave the claim out"


def claims(now: float, **changes: Any) -> dict[str, Any]:
    """A member's claims, valid for five minutes from `now`, with `changes` (DROP removes)."""
    base: dict[str, Any] = {"sub": "cust-1", "roles": ["member"], "iat": now, "exp": now + 300}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    """A JSON value as a token segment."""
    return b64(json.dumps(value).encode())


def hs(
    body: dict[str, Any], secret: str = TEST_JWT_SECRET, alg: str = "HS256", **header: Any
) -> str:
    return jwt.encode(body, secret, algorithm=alg, headers=header or None)


def hmac_signed(header: str, payload: str, key: bytes = TEST_JWT_SECRET.encode()) -> str:
    """A token HMAC-SHA256-signed over exactly these segments (PyJWT would refuse to make
    some: a PEM as the secret, claims that are not an object)."""
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def signed(key: Any, body: dict[str, Any], kid: str | None = "k1", alg: str = "RS256") -> str:
    """A token signed with a private key, naming `kid` in its header."""
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def jwk(key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    """The JWK of `key` (public, or private when given a private key) for a JWKS."""
    found: Any
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        found = RSAAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        found = ECAlgorithm.to_jwk(key, as_dict=True)
    else:
        found = OKPAlgorithm.to_jwk(key, as_dict=True)
    entry: dict[str, Any] = {**found, "kid": kid, "use": "sig"}
    if alg is not None:
        entry["alg"] = alg
    return entry


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
