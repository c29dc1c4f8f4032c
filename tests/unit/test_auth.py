"""The token verifier alone: every forged or malformed token it must refuse (one test each,
with the exact reason), the happy paths for HMAC and for keys from a JWKS served with respx,
and the JWKS cache's fetch discipline, counted on a clock the tests move by hand."""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError

from gateway.auth import MAX_TOKEN_BYTES, AuthError, Identity, TokenVerifier, issue_token
from gateway.jwks import JwksCache, cache_lifetime, parse_jwks
from gateway.jwt_algorithms import accepted_algorithms
from gateway.settings import Settings
from loyalty.access import Role, Viewer
from tests import jwt_forge as forge
from tests.conftest import TEST_JWT_SECRET
from tests.jwt_forge import DROP, b64, hmac_signed, hs, jwk, new_rsa_key, segment, signed

NOW = 1_800_000_000.0  # the wall clock of every test here (UNIX seconds)
SECRET = TEST_JWT_SECRET  # 32 bytes: long enough for HS256
JWKS_URL = "https://idp.example/.well-known/jwks.json"
ISSUER = "https://idp.example/"
AUDIENCE = "patron-gateway"
DUPLICATE_ALG = b64(b'{"alg":"none","alg":"HS256"}')


# --- building tokens ----------------------------------------------------------------------
def claims(**changes: Any) -> dict[str, Any]:
    """A member's claims, valid for five minutes at NOW, with `changes` (DROP removes)."""
    return forge.claims(NOW, **changes)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture(scope="module")
def rotated_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


MEMBER = Identity(Viewer(sub="cust-1", roles=frozenset({Role.MEMBER})), valid_until=NOW + 330)


# --- verifiers ------------------------------------------------------------------------------
def hs_verifier(**options: Any) -> TokenVerifier:
    return TokenVerifier(secret=SECRET, clock=lambda: NOW, **options)


async def refused(verifier: TokenVerifier, token: str) -> str:
    """The reason the verifier gives for refusing `token` (failing if it accepts it)."""
    with pytest.raises(AuthError) as refusal:
        await verifier.verify(token)
    return str(refusal.value)


@dataclass
class Idp:
    """An identity provider's JWKS endpoint (respx), and the gateway's monotonic clock."""

    route: respx.Route
    http: httpx.AsyncClient
    monotonic: float = 0.0

    def publish(self, *keys: dict[str, Any], cache_control: str | None = None) -> None:
        headers = {"Cache-Control": cache_control} if cache_control else {}
        self.route.mock(
            return_value=httpx.Response(200, json={"keys": list(keys)}, headers=headers)
        )

    def fail(self, error: Exception | httpx.Response) -> None:
        if isinstance(error, httpx.Response):
            self.route.mock(return_value=error)
        else:
            self.route.mock(side_effect=error)

    @property
    def fetches(self) -> int:
        return self.route.call_count

    def verifier(self, **options: Any) -> TokenVerifier:
        cache = JwksCache(
            JWKS_URL,
            self.http,
            timeout=3.0,
            refresh_interval=30.0,
            max_age=3600.0,
            clock=lambda: self.monotonic,
        )
        return TokenVerifier(jwks=cache, clock=lambda: NOW, **options)


@pytest.fixture
async def idp(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Idp]:
    with respx.mock(assert_all_called=False) as mock:
        async with httpx.AsyncClient() as http:
            idp = Idp(mock.get(JWKS_URL), http)
            idp.publish(jwk(rsa_key.public_key(), "k1"))
            yield idp


# --- happy paths ---------------------------------------------------------------------------
async def test_an_hs256_token_is_accepted() -> None:
    assert await hs_verifier().verify(hs(claims())) == MEMBER


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_a_configured_stronger_hmac_is_accepted(alg: str) -> None:
    secret = SECRET * 2  # 64 bytes
    verifier = TokenVerifier(secret=secret, algorithms=["HS256", alg], clock=lambda: NOW)
    assert await verifier.verify(hs(claims(), secret, alg)) == MEMBER


async def test_roles_store_and_a_fractional_exp_are_read() -> None:
    body = claims(roles=["associate", "member", "cashier"], store="TOR-1", exp=NOW + 0.5)
    assert await hs_verifier(leeway=0).verify(hs(body)) == Identity(
        Viewer(sub="cust-1", roles=frozenset({Role.ASSOCIATE, Role.MEMBER}), store="TOR-1"),
        valid_until=NOW + 0.5,
    )


async def test_no_roles_claim_is_no_role() -> None:
    identity = await hs_verifier().verify(hs(claims(roles=DROP)))
    assert identity.viewer == Viewer(sub="cust-1", roles=frozenset())


async def test_issue_token_makes_what_the_verifier_accepts() -> None:
    token = issue_token(SECRET, "assoc-1", [Role.ASSOCIATE], store="TOR-1", ttl=60)
    identity = await TokenVerifier(secret=SECRET).verify(token)
    assert identity.viewer == Viewer(
        sub="assoc-1", roles=frozenset({Role.ASSOCIATE}), store="TOR-1"
    )
    with pytest.raises(ValueError, match="a secret signs only HS256, HS384, HS512, not RS256"):
        issue_token(SECRET, "x", [], algorithm="RS256")


async def test_an_rs256_token_from_the_jwks_is_accepted(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = idp.verifier()
    assert await verifier.verify(signed(rsa_key, claims())) == MEMBER
    assert await verifier.verify(signed(rsa_key, claims(sub="cust-2"))) == Identity(
        Viewer(sub="cust-2", roles=frozenset({Role.MEMBER})), valid_until=NOW + 330
    )
    assert idp.fetches == 1  # cached


async def test_the_jwks_is_fetched_with_an_explicit_timeout(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    await idp.verifier().verify(signed(rsa_key, claims()))
    request = idp.route.calls.last.request
    assert request.extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}


async def test_an_es256_token_is_accepted_when_configured(
    idp: Idp, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    idp.publish(jwk(ec_key.public_key(), "ec1", "ES256"))
    verifier = idp.verifier(algorithms=["RS256", "ES256"])
    assert await verifier.verify(signed(ec_key, claims(), "ec1", "ES256")) == MEMBER


async def test_an_eddsa_token_is_accepted_when_configured(
    idp: Idp, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    idp.publish(jwk(ed_key.public_key(), "ed1"))
    verifier = idp.verifier(algorithms=["EdDSA"])
    assert await verifier.verify(signed(ed_key, claims(), "ed1", "EdDSA")) == MEMBER


async def test_an_audience_list_that_holds_ours_is_accepted() -> None:
    verifier = hs_verifier(issuer=ISSUER, audience=AUDIENCE)
    body = claims(iss=ISSUER, aud=["another-api", AUDIENCE])
    assert await verifier.verify(hs(body)) == MEMBER


# --- forged: algorithms and keys -------------------------------------------------------
@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_unsigned_is_refused(alg: str) -> None:
    token = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims())}."
    assert await refused(hs_verifier(), token) == "unsigned tokens (alg none) are not accepted"


async def test_alg_none_with_a_signature_is_refused() -> None:
    genuine = hs(claims())
    forged = segment({"alg": "none"}) + genuine[genuine.index(".") :]
    assert await refused(hs_verifier(), forged) == "unsigned tokens (alg none) are not accepted"


async def test_hs256_with_the_wrong_secret_is_refused() -> None:
    token = hs(claims(), "another-secret-0123456789abcdef!")
    assert await refused(hs_verifier(), token) == "invalid signature"


async def test_a_payload_tampered_after_signing_is_refused() -> None:
    header, _, signature = hs(claims()).split(".")
    tampered = f"{header}.{segment(claims(roles=['admin']))}.{signature}"
    assert await refused(hs_verifier(), tampered) == "invalid signature"


async def test_an_empty_signature_is_refused() -> None:
    header, payload, _ = hs(claims()).split(".")
    assert await refused(hs_verifier(), f"{header}.{payload}.") == "invalid signature"


async def test_hs256_signed_with_the_rsa_public_key_is_refused_under_a_jwks(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = hmac_signed(segment({"alg": "HS256", "kid": "k1"}), segment(claims()), pem)
    reason = await refused(idp.verifier(), forged)
    assert reason == "the token's algorithm is not accepted (accepted: RS256)"
    assert idp.fetches == 0  # refused before any key is looked up


async def test_rs256_is_refused_under_a_secret(rsa_key: rsa.RSAPrivateKey) -> None:
    token = signed(rsa_key, claims())
    reason = await refused(hs_verifier(), token)
    assert reason == "the token's algorithm is not accepted (accepted: HS256)"


async def test_an_hmac_algorithm_not_configured_is_refused() -> None:
    token = hs(claims(), SECRET * 2, "HS512")
    reason = await refused(hs_verifier(), token)
    assert reason == "the token's algorithm is not accepted (accepted: HS256)"


async def test_a_jwk_with_its_own_alg_verifies_only_that_alg(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    idp.publish(jwk(rsa_key.public_key(), "k1", "RS512"))
    verifier = idp.verifier(algorithms=["RS256", "RS512"])
    reason = await refused(verifier, signed(rsa_key, claims(), "k1", "RS256"))
    assert reason == "the signing key is for another algorithm"
    assert await verifier.verify(signed(rsa_key, claims(), "k1", "RS512")) == MEMBER


async def test_a_key_of_the_wrong_type_is_refused(
    idp: Idp, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    # An EC key published under the kid an RS256 token names (no `alg` on the JWK).
    idp.publish(jwk(ec_key.public_key(), "k1"))
    reason = await refused(idp.verifier(), signed(rsa_key, claims()))
    assert reason == "the signing key's type does not fit the token's algorithm"


async def test_an_ec_key_on_another_curve_is_refused(
    idp: Idp, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    idp.publish(jwk(ec_key.public_key(), "k1"))  # P-256
    reason = await refused(
        idp.verifier(algorithms=["ES384"]), signed(p384, claims(), "k1", "ES384")
    )
    assert reason == "the signing key's type does not fit the token's algorithm"


async def test_a_private_key_published_in_the_jwks_verifies_nothing(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    idp.publish(jwk(rsa_key, "k1"))  # the private JWK (with "d") by mistake
    reason = await refused(idp.verifier(), signed(rsa_key, claims()))
    assert reason == "the signing key's type does not fit the token's algorithm"


async def test_an_rsa_key_under_2048_bits_is_refused(idp: Idp) -> None:
    weak = new_rsa_key(1024)
    idp.publish(jwk(weak.public_key(), "k1"))
    with pytest.warns(jwt.InsecureKeyLengthWarning):  # PyJWT signs with it, and says so
        token = signed(weak, claims())
    reason = await refused(idp.verifier(), token)
    assert reason == "the signing key is too weak or unusable"


async def test_a_token_without_a_kid_is_refused_under_a_jwks(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    reason = await refused(idp.verifier(), signed(rsa_key, claims(), kid=None))
    assert reason == "the token names no signing key (kid)"


async def test_a_crit_header_is_refused() -> None:
    token = hs(claims(), crit=["exp"])
    assert (
        await refused(hs_verifier(), token) == "critical header extensions (crit) are not supported"
    )


# --- forged: time claims ---------------------------------------------------------------
async def test_an_expired_token_is_refused() -> None:
    assert await refused(hs_verifier(), hs(claims(exp=NOW - 31))) == "token expired"


async def test_exp_is_accepted_within_the_leeway_and_not_at_its_end() -> None:
    assert (await hs_verifier().verify(hs(claims(exp=NOW - 29)))).valid_until == NOW + 1
    assert await refused(hs_verifier(), hs(claims(exp=NOW - 30))) == "token expired"
    assert await refused(hs_verifier(leeway=0), hs(claims(exp=NOW))) == "token expired"


async def test_nbf_in_the_future_is_refused() -> None:
    reason = await refused(hs_verifier(), hs(claims(nbf=NOW + 31)))
    assert reason == "token not yet valid (nbf)"
    assert await hs_verifier().verify(hs(claims(nbf=NOW + 30))) == MEMBER


async def test_iat_in_the_future_is_refused() -> None:
    reason = await refused(hs_verifier(), hs(claims(iat=NOW + 31)))
    assert reason == "token issued in the future (iat)"
    assert await hs_verifier().verify(hs(claims(iat=NOW + 30))) == MEMBER


async def test_a_missing_exp_is_refused() -> None:
    assert await refused(hs_verifier(), hs(claims(exp=DROP))) == "token has no exp"


@pytest.mark.parametrize(
    "exp",
    ["2027-01-01", True, None, [NOW], 10**400],
    ids=["string", "bool", "null", "list", "huge"],
)
async def test_an_exp_that_is_not_a_number_is_refused(exp: Any) -> None:
    token = hmac_signed(segment({"alg": "HS256"}), segment(claims(exp=exp)))
    assert await refused(hs_verifier(), token) == "exp must be a number of seconds (NumericDate)"


async def test_an_infinite_exp_is_refused() -> None:
    body = json.dumps(claims()).replace(str(NOW + 300), "Infinity")
    token = hmac_signed(segment({"alg": "HS256"}), b64(body.encode()))
    assert await refused(hs_verifier(), token) == "malformed token: the payload is not JSON"


# --- forged: issuer and audience ----------------------------------------------------------
async def test_a_wrong_issuer_is_refused() -> None:
    token = hs(claims(iss="https://evil.example/"))
    assert await refused(hs_verifier(issuer=ISSUER), token) == "wrong issuer (iss)"


async def test_a_missing_issuer_is_refused_when_configured() -> None:
    assert await refused(hs_verifier(issuer=ISSUER), hs(claims())) == "token has no iss"


async def test_a_wrong_audience_is_refused() -> None:
    token = hs(claims(aud="another-api"))
    assert await refused(hs_verifier(audience=AUDIENCE), token) == "wrong audience (aud)"


async def test_an_audience_not_a_string_or_list_is_refused() -> None:
    token = hs(claims(aud={"name": AUDIENCE}))
    assert await refused(hs_verifier(audience=AUDIENCE), token) == "wrong audience (aud)"


async def test_a_missing_audience_is_refused_when_configured() -> None:
    assert await refused(hs_verifier(audience=AUDIENCE), hs(claims())) == "token has no aud"


async def test_an_audience_is_refused_when_none_is_configured() -> None:
    reason = await refused(hs_verifier(), hs(claims(aud=AUDIENCE)))
    assert reason == "the token is for an audience (aud) this gateway is not"


# --- forged: identity claims ------------------------------------------------------------
async def test_a_missing_sub_is_refused() -> None:
    assert await refused(hs_verifier(), hs(claims(sub=DROP))) == "token has no sub"


@pytest.mark.parametrize("sub", [42, None, "", "   ", ["cust-1"]])
async def test_a_sub_that_is_not_a_non_empty_string_is_refused(sub: Any) -> None:
    assert await refused(hs_verifier(), hs(claims(sub=sub))) == "sub must be a non-empty string"


@pytest.mark.parametrize("roles", ["member", "admin member", {"admin": True}, [1], None])
async def test_roles_not_a_list_of_strings_are_refused(roles: Any) -> None:
    assert (
        await refused(hs_verifier(), hs(claims(roles=roles))) == "roles must be a list of strings"
    )


@pytest.mark.parametrize("store", [7, "", ["TOR-1"]])
async def test_a_store_that_is_not_a_non_empty_string_is_refused(store: Any) -> None:
    assert (
        await refused(hs_verifier(), hs(claims(store=store))) == "store must be a non-empty string"
    )


# --- forged: shape -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed token: not three base64url segments"),
        ("not-a-jwt", "malformed token: not three base64url segments"),
        ("a.b", "malformed token: not three base64url segments"),
        ("a.b.c.d", "malformed token: not three base64url segments"),
        (".e30.c2ln", "malformed token: not three base64url segments"),
        ("e30..c2ln", "malformed token: not three base64url segments"),
        ("e30=.e30.c2ln", "malformed token: not three base64url segments"),  # padding
        ("e3+/.e30.c2ln", "malformed token: not three base64url segments"),  # base64, not url
        ("eyJhbGciOiJIUzI1NiJ9 .e30.c2ln", "malformed token: not three base64url segments"),
        ("abcde.e30.c2ln", "malformed token: not three base64url segments"),  # 4n+1 chars
        ("e30.abcde.c2ln", "malformed token: not three base64url segments"),
        (f"{b64(b'not json')}.e30.c2ln", "malformed token: the header is not JSON"),
        (f"{b64(bytes([0xFF, 0xFE, 0x00]))}.e30.c2ln", "malformed token: the header is not JSON"),
        (f"{segment(['HS256'])}.e30.c2ln", "malformed token: the header is not a JSON object"),
        (f"{segment('HS256')}.e30.c2ln", "malformed token: the header is not a JSON object"),
        (f"{b64(b'[' * 5000)}.e30.c2ln", "malformed token: the header is not JSON"),
        (f"{DUPLICATE_ALG}.e30.c2ln", "malformed token: the header repeats a name"),
        (f"{segment({'typ': 'JWT'})}.e30.c2ln", "malformed token: the header has no alg"),
        (f"{segment({'alg': ['HS256']})}.e30.c2ln", "malformed token: the header has no alg"),
    ],
    ids=[
        "empty", "one-segment", "two-segments", "four-segments", "no-header", "no-payload",
        "padding", "standard-base64", "space", "bad-base64", "bad-base64-payload", "header-not-json",
        "header-not-utf8", "header-array", "header-string", "header-too-deep",
        "header-duplicate-alg", "no-alg", "alg-not-a-string",
    ],
)  # fmt: skip
async def test_a_malformed_token_is_refused(token: str, reason: str) -> None:
    assert await refused(hs_verifier(), token) == reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b64(b"not json"), "malformed token: the payload is not JSON"),
        (segment(["sub", "cust-1"]), "malformed token: the payload is not a JSON object"),
        (b64(b'{"sub":"cust-1","sub":"admin-1"}'), "malformed token: the payload repeats a name"),
    ],
    ids=["not-json", "array", "duplicate-sub"],
)
async def test_signed_claims_that_are_not_a_json_object_are_refused(
    payload: str, reason: str
) -> None:
    token = hmac_signed(segment({"alg": "HS256"}), payload)
    assert await refused(hs_verifier(), token) == reason


async def test_an_oversize_token_is_refused_before_parsing() -> None:
    padding = "x" * MAX_TOKEN_BYTES
    token = hs(claims(pad=padding))
    assert len(token) > MAX_TOKEN_BYTES
    assert await refused(hs_verifier(), token) == "token too large (over 8192 bytes)"
    garbage = "!" * (MAX_TOKEN_BYTES + 1)  # not even a JWT: the size is checked first
    assert await refused(hs_verifier(), garbage) == "token too large (over 8192 bytes)"


async def test_random_input_is_always_an_auth_error() -> None:
    """Whatever arrives, the verifier answers AuthError, never another exception (a 500)."""
    rng = random.Random(6)
    alphabet = string.ascii_letters + string.digits + "-_.=+/ \x00é"
    verifier = hs_verifier()
    genuine = hs(claims())
    for _ in range(400):
        length = rng.randint(0, 120)
        candidates = [
            "".join(rng.choice(alphabet) for _ in range(length)),
            ".".join(b64(rng.randbytes(rng.randint(0, 40))) for _ in range(3)),
            genuine[: rng.randint(0, len(genuine) - 1)],
        ]
        for token in candidates:
            with pytest.raises(AuthError):
                await verifier.verify(token)


# --- the JWKS: rotation, floods, failures, caching ------------------------------------
async def test_an_unknown_kid_fetches_the_rotated_set_once(
    idp: Idp, rsa_key: rsa.RSAPrivateKey, rotated_key: rsa.RSAPrivateKey
) -> None:
    verifier = idp.verifier()
    assert await verifier.verify(signed(rsa_key, claims())) == MEMBER
    idp.monotonic += 30
    idp.publish(jwk(rsa_key.public_key(), "k1"), jwk(rotated_key.public_key(), "k2"))
    assert await verifier.verify(signed(rotated_key, claims(), "k2")) == MEMBER
    assert await verifier.verify(signed(rotated_key, claims(), "k2")) == MEMBER
    assert await verifier.verify(signed(rsa_key, claims(), "k1")) == MEMBER
    assert idp.fetches == 2


async def test_a_rotation_seen_within_the_interval_waits_for_the_next_fetch(
    idp: Idp, rsa_key: rsa.RSAPrivateKey, rotated_key: rsa.RSAPrivateKey
) -> None:
    verifier = idp.verifier()
    await verifier.verify(signed(rsa_key, claims()))
    idp.publish(jwk(rsa_key.public_key(), "k1"), jwk(rotated_key.public_key(), "k2"))
    idp.monotonic += 29.5
    assert (
        await refused(verifier, signed(rotated_key, claims(), "k2")) == "unknown signing key (kid)"
    )
    assert idp.fetches == 1
    idp.monotonic += 0.5
    assert await verifier.verify(signed(rotated_key, claims(), "k2")) == MEMBER
    assert idp.fetches == 2


async def test_a_flood_of_unknown_kids_costs_one_fetch_per_interval(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = idp.verifier()
    await verifier.verify(signed(rsa_key, claims()))
    rng = random.Random(1)

    async def flood(count: int) -> None:
        for _ in range(count):
            kid = "".join(rng.choices(string.ascii_letters, k=16))
            assert await refused(verifier, signed(rsa_key, claims(), kid)) == (
                "unknown signing key (kid)"
            )

    await flood(200)
    assert idp.fetches == 1  # within the interval of the first fetch: none
    idp.monotonic += 30
    await flood(200)
    assert idp.fetches == 2
    idp.monotonic += 29.75  # binary fractions: the sums are exact
    await flood(200)
    assert idp.fetches == 2
    idp.monotonic += 0.25
    await flood(200)
    assert idp.fetches == 3


async def test_concurrent_verifications_share_one_fetch(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = idp.verifier()
    tokens = [signed(rsa_key, claims(sub=f"cust-{n}")) for n in range(50)]
    identities = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert [i.viewer.sub for i in identities] == [f"cust-{n}" for n in range(50)]
    assert idp.fetches == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(503),
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(200, json={"keys": []}),
        httpx.Response(200, json=["not", "a", "set"]),
        httpx.Response(200, json={"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}),
        RuntimeError("a bug below the HTTP client"),
    ],
    ids=[
        "unreachable",
        "timeout",
        "503",
        "not-json",
        "no-keys",
        "not-a-set",
        "only-symmetric",
        "unforeseen",
    ],
)
async def test_a_jwks_that_is_down_refuses_with_a_clear_reason(
    idp: Idp, rsa_key: rsa.RSAPrivateKey, failure: Exception | httpx.Response
) -> None:
    idp.fail(failure)
    verifier = idp.verifier()
    token = signed(rsa_key, claims())
    reason = "signing keys unavailable: the JWKS could not be fetched"
    assert await refused(verifier, token) == reason
    assert await refused(verifier, token) == reason
    assert idp.fetches == 1  # a JWKS that is down is not asked again within the interval
    idp.monotonic += 30
    idp.publish(jwk(rsa_key.public_key(), "k1"))
    assert await verifier.verify(token) == MEMBER
    assert idp.fetches == 2


async def test_a_failed_refresh_keeps_the_keys_held(idp: Idp, rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = idp.verifier()
    await verifier.verify(signed(rsa_key, claims()))
    idp.fail(httpx.ConnectError("refused"))
    idp.monotonic += 3600  # the set has expired: it is fetched again, and that fails
    assert await verifier.verify(signed(rsa_key, claims())) == MEMBER
    assert idp.fetches == 2


async def test_cache_control_max_age_is_honoured(idp: Idp, rsa_key: rsa.RSAPrivateKey) -> None:
    idp.publish(jwk(rsa_key.public_key(), "k1"), cache_control="public, max-age=120")
    verifier = idp.verifier()
    await verifier.verify(signed(rsa_key, claims()))
    idp.monotonic += 119.5
    await verifier.verify(signed(rsa_key, claims()))
    assert idp.fetches == 1
    idp.monotonic += 0.5
    await verifier.verify(signed(rsa_key, claims()))
    assert idp.fetches == 2


@pytest.mark.parametrize(
    ("cache_control", "lifetime"),
    [
        (None, 3600.0),
        ("public, max-age=120", 120.0),
        ("max-age=999999", 3600.0),
        ("max-age=0", 30.0),
        ("max-age=5, must-revalidate", 30.0),
        ("no-store", 30.0),
        ("no-cache, max-age=600", 30.0),
        ('max-age="600"', 600.0),
        ("max-age=-1", 3600.0),
        ("max-age=½", 3600.0),
        ("private", 3600.0),
    ],
)
def test_the_cache_lifetime_is_max_age_bounded(cache_control: str | None, lifetime: float) -> None:
    assert cache_lifetime(cache_control, 30.0, 3600.0) == lifetime


async def test_the_max_age_bound_holds_against_a_long_cache_control(
    idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    idp.publish(jwk(rsa_key.public_key(), "k1"), cache_control="max-age=31536000")
    verifier = idp.verifier()
    await verifier.verify(signed(rsa_key, claims()))
    idp.monotonic += 3600
    await verifier.verify(signed(rsa_key, claims()))
    assert idp.fetches == 2


def test_parse_jwks_keeps_only_verification_keys(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    good = jwk(rsa_key.public_key(), "rsa")
    keys = parse_jwks(
        {
            "keys": [
                good,
                {**good, "kid": "rsa", "n": "AQAB"},  # a second entry under one kid: ignored
                jwk(ec_key.public_key(), "ec", "ES256"),
                {**good, "kid": "enc", "use": "enc"},
                {**good, "kid": None},
                {k: v for k, v in good.items() if k != "kid"},
                {**good, "kid": "odd-alg", "alg": 256},
                {**good, "kid": "unknown-alg", "alg": "RSA-OAEP"},
                {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                "not an object",
            ]
        }
    )
    assert sorted(keys) == ["ec", "rsa"]
    assert keys["ec"].algorithm == "ES256" and keys["rsa"].algorithm is None
    assert keys["rsa"].key.public_numbers() == rsa_key.public_key().public_numbers()


# --- configuration ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("configured", "secret", "accepted"),
    [
        ((), True, ("HS256",)),
        ((), False, ("RS256",)),
        (("HS512", "HS256", "HS512"), True, ("HS512", "HS256")),
        (("RS256", "PS256", "ES256", "ES384", "EdDSA"), False, ("RS256", "PS256", "ES256", "ES384", "EdDSA")),
    ],
)  # fmt: skip
def test_accepted_algorithms(
    configured: tuple[str, ...], secret: bool, accepted: tuple[str, ...]
) -> None:
    assert accepted_algorithms(configured, secret=secret) == accepted


@pytest.mark.parametrize(
    ("configured", "secret", "message"),
    [
        (("none",), True, "PATRON_JWT_ALGORITHMS: 'none' (unsigned tokens) is never accepted"),
        (("HS256", "RS256"), True, "PATRON_JWT_ALGORITHMS: RS256 cannot be verified with PATRON_JWT_SECRET (it allows HS256, HS384, HS512; the families never mix)"),
        (("RS256", "HS256"), False, "PATRON_JWT_ALGORITHMS: HS256 cannot be verified with PATRON_JWKS_URL (it allows RS256, RS384, RS512, PS256, ES256, ES384, EdDSA; the families never mix)"),
        (("rs256",), False, "PATRON_JWT_ALGORITHMS: unknown algorithm 'rs256' (known: HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA)"),
    ],
)  # fmt: skip
def test_algorithms_that_cannot_be_configured(
    configured: tuple[str, ...], secret: bool, message: str
) -> None:
    with pytest.raises(ValueError) as error:
        accepted_algorithms(configured, secret=secret)
    assert str(error.value) == message


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("PATRON_"):
            monkeypatch.delenv(key)
    yield


def auth_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.usefixtures("no_env")
def test_settings_read_the_algorithms_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRON_JWKS_URL", JWKS_URL)
    monkeypatch.setenv("PATRON_JWT_ALGORITHMS", "RS256, ES256,")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.jwt_algorithms == ("RS256", "ES256")
    assert settings.jwt_accepted_algorithms == ("RS256", "ES256")
    monkeypatch.delenv("PATRON_JWKS_URL")
    monkeypatch.delenv("PATRON_JWT_ALGORITHMS")
    assert auth_settings(jwt_secret=SECRET).jwt_accepted_algorithms == ("HS256",)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jwt_secret": SECRET, "jwt_algorithms": "HS256,RS256"}, "RS256 cannot be verified with PATRON_JWT_SECRET"),
        ({"jwks_url": JWKS_URL, "jwt_algorithms": "HS256"}, "HS256 cannot be verified with PATRON_JWKS_URL"),
        ({"jwt_algorithms": "HS256"}, "PATRON_JWT_ALGORITHMS needs PATRON_JWT_SECRET or PATRON_JWKS_URL"),
        ({"jwks_url": JWKS_URL, "jwks_max_age": 10}, "PATRON_JWKS_MAX_AGE must be at least PATRON_JWKS_REFRESH_INTERVAL"),
        ({"env": "prod", "card_secret": "c", "jwt_secret": "short-secret"}, "PATRON_JWT_SECRET must be at least 32 bytes when PATRON_ENV=prod"),
        ({"env": "prod", "card_secret": "c", "jwt_secret": SECRET, "jwt_algorithms": "HS512"}, "PATRON_JWT_SECRET must be at least 64 bytes when PATRON_ENV=prod"),
        ({"jwt_secret": SECRET, "jwt_leeway": 301}, "jwt_leeway"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("no_env")
def test_settings_that_stop_the_start(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        auth_settings(**values)
    assert message in str(error.value)
    assert "short-secret" not in str(error.value)


@pytest.mark.usefixtures("no_env")
def test_a_short_secret_is_allowed_in_dev() -> None:
    assert auth_settings(jwt_secret="short-secret").jwt_secret_value == "short-secret"


def test_a_verifier_needs_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="configure exactly one of a JWT secret and a JWKS"):
        TokenVerifier()
    with pytest.raises(ValueError, match="RS256 cannot be verified with PATRON_JWT_SECRET"):
        TokenVerifier(secret=SECRET, algorithms=["RS256"])
