"""Which JWS algorithms a gateway accepts, and which key fits which algorithm.

Two families never mix: a shared secret (`PATRON_JWT_SECRET`) verifies HMAC tokens only, and
a JWKS (`PATRON_JWKS_URL`) verifies public-key tokens only. An HMAC algorithm next to a
public-key one is the classic confusion attack (an HS256 token "signed" with the public key's
PEM as the secret), so a mixed `PATRON_JWT_ALGORITHMS` stops the start rather than being
filtered. `none` is in neither family and cannot be configured.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
DEFAULT_HMAC = ("HS256",)
DEFAULT_PUBLIC_KEY = ("RS256",)

# RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
HMAC_MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}

_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1"}


def accepted_algorithms(configured: Sequence[str], *, secret: bool) -> tuple[str, ...]:
    """The algorithms to accept: `configured`, or the family's default when it is empty.

    Raises ValueError, naming the setting, for an unknown name, `none`, or an algorithm of the
    other family (which includes any mix of the two)."""
    family, default, source = (
        (HMAC_ALGORITHMS, DEFAULT_HMAC, "PATRON_JWT_SECRET")
        if secret
        else (PUBLIC_KEY_ALGORITHMS, DEFAULT_PUBLIC_KEY, "PATRON_JWKS_URL")
    )
    if not configured:
        return default
    for name in configured:
        if name.lower() == "none":
            raise ValueError("PATRON_JWT_ALGORITHMS: 'none' (unsigned tokens) is never accepted")
        if name not in HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS:
            known = ", ".join(HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS)
            raise ValueError(f"PATRON_JWT_ALGORITHMS: unknown algorithm {name!r} (known: {known})")
        if name not in family:
            raise ValueError(
                f"PATRON_JWT_ALGORITHMS: {name} cannot be verified with {source} "
                f"(it allows {', '.join(family)}; the families never mix)"
            )
    return tuple(dict.fromkeys(configured))


def key_fits(algorithm: str, key: object) -> bool:
    """Whether a public key is of the type (and curve) the algorithm needs. A private key or
    a key of another type never fits, so a JWKS entry cannot be bent to another algorithm."""
    if algorithm.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm in _EC_CURVES:
        curve = _EC_CURVES[algorithm]
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == curve
    if algorithm == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False
