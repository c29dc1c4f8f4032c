"""Bearer tokens through the app (`httpx.ASGITransport`): every forged or malformed token is a
401 with a Bearer challenge and an UNAUTHENTICATED GraphQL error saying why, never echoing
the token; HS256, RS256 and ES256 (a JWKS served with respx) are accepted; the JWKS is
fetched once for a flood of unknown kids and again on a rotation; and a subscription is
closed (4401) when the token that opened it expires."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import string
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from adapters.cache.pubsub import InProcessBroker
from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from loyalty.ports import points_channel
from tests.conftest import TEST_JWT_SECRET, Clock, Harness, SqlCounter, assert_ledger_balances
from tests.graphql.conftest import ENROLL, enroll
from tests.graphql.test_points_changed import POINTS_CHANGED, ZERO, local, next_points, wait_until
from tests.graphql.ws import serving, ws_client
from tests.jwt_forge import DROP, b64, claims, hmac_signed, hs, jwk, new_rsa_key, segment, signed

JWKS_URL = "https://idp.example/.well-known/jwks.json"
ISSUER = "https://idp.example/"
AUDIENCE = "patron-gateway"
ME = "{ me { externalIds { commerceCustomerId } } }"
PROGRAM = "{ program { key } }"


def now() -> float:
    return time.time()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ask(
    h: Harness, headers: dict[str, str] | None = None, query: str = PROGRAM
) -> httpx.Response:
    return await h.client.post("/graphql", json={"query": query}, headers=headers or {})


def assert_refused(response: httpx.Response, reason: str, token: str | None = None) -> None:
    """The exact refusal: 401, the Bearer challenge and the GraphQL error, both saying
    `reason`; no part of the token comes back."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{reason}"'
    )
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "errors": [{"message": reason, "extensions": {"code": "UNAUTHENTICATED"}}]
    }
    if token:
        echoed = str(response.headers) + response.text
        for part in token.split("."):
            assert len(part) < 8 or part not in echoed, "the token was echoed"


@contextlib.asynccontextmanager
async def running(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    """The gateway with these settings, like the `harness` fixture."""
    http = fakes.http_client()
    app = create_app(settings, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
            yield Harness(app, client, fakes, clock, SqlCounter())
        await assert_ledger_balances(app.state.gateway.engine)
    await http.aclose()


# --- keys ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    rsa: rsa.RSAPrivateKey
    rotated: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey

    @property
    def rsa_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(new_rsa_key(), new_rsa_key(), ec.generate_private_key(ec.SECP256R1()))


# --- HS256: the forged and malformed tokens ------------------------------------------------
Forge = Callable[[Keys], str]


def _none_with_signature(keys: Keys) -> str:
    genuine = hs(claims(now()))
    return segment({"alg": "none", "typ": "JWT"}) + genuine[genuine.index(".") :]


def _tampered(keys: Keys) -> str:
    header, _, signature = hs(claims(now())).split(".")
    return f"{header}.{segment(claims(now(), roles=['admin']))}.{signature}"


FORGED: list[tuple[str, Forge, str]] = [
    ("alg-none-unsigned", lambda k: f"{segment({'alg': 'none'})}.{segment(claims(now()))}.", "unsigned tokens (alg none) are not accepted"),
    ("alg-none-with-a-signature", _none_with_signature, "unsigned tokens (alg none) are not accepted"),
    ("hs256-wrong-secret", lambda k: hs(claims(now()), "another-secret-0123456789abcdef!"), "invalid signature"),
    ("payload-tampered", _tampered, "invalid signature"),
    ("rs256-under-hs-config", lambda k: signed(k.rsa, claims(now())), "the token's algorithm is not accepted (accepted: HS256)"),
    ("hs512-not-configured", lambda k: hs(claims(now()), TEST_JWT_SECRET * 2, "HS512"), "the token's algorithm is not accepted (accepted: HS256)"),
    ("expired", lambda k: hs(claims(now(), exp=now() - 60)), "token expired"),
    ("nbf-in-the-future", lambda k: hs(claims(now(), nbf=now() + 120)), "token not yet valid (nbf)"),
    ("iat-in-the-future", lambda k: hs(claims(now(), iat=now() + 120)), "token issued in the future (iat)"),
    ("missing-exp", lambda k: hs(claims(now(), exp=DROP)), "token has no exp"),
    ("exp-not-a-number", lambda k: hs(claims(now(), exp="tomorrow")), "exp must be a number of seconds (NumericDate)"),
    ("exp-beyond-any-float", lambda k: hs(claims(now(), exp=10**400)), "exp must be a number of seconds (NumericDate)"),
    ("missing-sub", lambda k: hs(claims(now(), sub=DROP)), "token has no sub"),
    ("sub-not-a-string", lambda k: hs(claims(now(), sub=12345)), "sub must be a non-empty string"),
    ("sub-empty", lambda k: hs(claims(now(), sub="")), "sub must be a non-empty string"),
    ("roles-not-a-list", lambda k: hs(claims(now(), roles="admin")), "roles must be a list of strings"),
    ("store-not-a-string", lambda k: hs(claims(now(), store=7)), "store must be a non-empty string"),
    ("aud-when-none-configured", lambda k: hs(claims(now(), aud="another-api")), "the token is for an audience (aud) this gateway is not"),
    ("crit-header", lambda k: hs(claims(now()), crit=["exp"]), "critical header extensions (crit) are not supported"),
    ("malformed-not-a-jwt", lambda k: "not-a-jwt", "malformed token: not three base64url segments"),
    ("malformed-base64", lambda k: "abcde.e30.c2ln", "malformed token: not three base64url segments"),
    ("malformed-header-json", lambda k: f"{b64(b'{alg: HS256}')}.e30.c2ln", "malformed token: the header is not JSON"),
    ("malformed-header-array", lambda k: f"{segment(['HS256'])}.e30.c2ln", "malformed token: the header is not a JSON object"),
    ("malformed-payload-json", lambda k: hmac_signed(segment({"alg": "HS256"}), b64(b"sub=admin")), "malformed token: the payload is not JSON"),
    ("oversize", lambda k: hs(claims(now(), pad="x" * 9000)), "token too large (over 8192 bytes)"),
]  # fmt: skip


@pytest.mark.parametrize(("forge", "reason"), [c[1:] for c in FORGED], ids=[c[0] for c in FORGED])
async def test_a_forged_or_malformed_token_is_refused(
    harness: Harness, keys: Keys, forge: Forge, reason: str
) -> None:
    token = forge(keys)
    assert_refused(await ask(harness, bearer(token)), reason, token)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi", "JWT abc.def.ghi", "abc.def.ghi"],
)  # fmt: skip
async def test_an_authorization_that_is_not_a_bearer_token_is_refused(
    harness: Harness, authorization: str
) -> None:
    response = await ask(harness, {"Authorization": authorization})
    assert_refused(response, "the Authorization header must be 'Bearer <token>'")


async def test_a_blank_authorization_is_anonymous(harness: Harness) -> None:
    """Clients send `Authorization: ""` when logged out: public data, nothing personal."""
    for headers in ({"Authorization": ""}, {"Authorization": "  "}, {}):
        response = await ask(harness, headers)
        assert response.json() == {"data": {"program": {"key": "club-harry"}}}
        me = await ask(harness, headers, ME)
        assert me.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_a_refused_get_query_is_a_401_too(harness: Harness) -> None:
    token = hs(claims(now(), exp=now() - 60))
    response = await harness.client.get(
        "/graphql", params={"query": PROGRAM}, headers=bearer(token)
    )
    assert_refused(response, "token expired", token)


async def test_a_refused_mutation_changes_nothing(harness: Harness) -> None:
    expired = hs(claims(now(), sub="svc", roles=["service"], exp=now() - 60))
    response = await harness.client.post(
        "/graphql",
        json={"query": ENROLL, "variables": {"input": {"commerceCustomerId": "cust-1"}}},
        headers=bearer(expired),
    )
    assert_refused(response, "token expired", expired)
    staff = hs(claims(now(), sub="admin-1", roles=["admin"]))
    found = await ask(harness, bearer(staff), "{ members { totalCount } }")
    assert found.json() == {"data": {"members": {"totalCount": 0}}}


async def test_an_hs256_member_token_is_accepted(harness: Harness) -> None:
    await enroll(harness, "cust-1")
    token = hs(claims(now(), sub="cust-1", roles=["member"]))
    response = await ask(harness, {"Authorization": f"bearer {token}"}, ME)  # any case
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"externalIds": {"commerceCustomerId": "cust-1"}}}}


async def test_an_unknown_role_grants_nothing(harness: Harness) -> None:
    token = hs(claims(now(), sub="boss", roles=["superuser", "root"]))
    response = await ask(harness, bearer(token), "{ members { totalCount } }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"] == {"code": "NOT_ALLOWED"}


# --- issuer and audience, when configured ---------------------------------------------------
@pytest.fixture
async def strict(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    configured = settings.model_copy(update={"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE})
    async with running(configured, fakes, clock) as h:
        yield h


AUDIENCED: list[tuple[str, dict[str, Any], str]] = [
    ("wrong-iss", {"iss": "https://evil.example/", "aud": AUDIENCE}, "wrong issuer (iss)"),
    ("missing-iss", {"iss": DROP, "aud": AUDIENCE}, "token has no iss"),
    ("wrong-aud", {"iss": ISSUER, "aud": "another-api"}, "wrong audience (aud)"),
    ("missing-aud", {"iss": ISSUER, "aud": DROP}, "token has no aud"),
]


@pytest.mark.parametrize(
    ("changes", "reason"), [c[1:] for c in AUDIENCED], ids=[c[0] for c in AUDIENCED]
)
async def test_issuer_and_audience_are_required_and_matched_when_configured(
    strict: Harness, changes: dict[str, Any], reason: str
) -> None:
    token = hs(claims(now(), **changes))
    assert_refused(await ask(strict, bearer(token)), reason, token)


async def test_the_configured_issuer_and_audience_are_accepted(strict: Harness) -> None:
    token = hs(claims(now(), iss=ISSUER, aud=[AUDIENCE, "another-api"]))
    assert (await ask(strict, bearer(token))).json() == {"data": {"program": {"key": "club-harry"}}}


# --- a JWKS served with respx -------------------------------------------------------------
@dataclass
class Idp:
    h: Harness
    route: respx.Route

    def publish(self, *entries: dict[str, Any]) -> None:
        self.route.mock(return_value=httpx.Response(200, json={"keys": list(entries)}))

    @property
    def fetches(self) -> int:
        return self.route.call_count


@contextlib.asynccontextmanager
async def behind_a_jwks(
    settings: Settings, fakes: Fakes, clock: Clock, keys: Keys, refresh_interval: float
) -> AsyncIterator[Idp]:
    configured = settings.model_copy(
        update={
            "jwt_secret": None,
            "jwks_url": JWKS_URL,
            "jwt_algorithms": ("RS256", "ES256"),
            "jwks_refresh_interval": refresh_interval,
            # The floods of refused tokens below measure JWKS fetches; the rate limit would
            # answer 429 after 60 of them (tests/graphql/test_rate_limit.py).
            "rate_limit_anonymous": 0,
        }
    )
    with respx.mock(assert_all_called=False) as mock:
        idp = Idp(None, mock.get(JWKS_URL))  # type: ignore[arg-type]
        idp.publish(jwk(keys.rsa.public_key(), "k1"), jwk(keys.ec.public_key(), "ec1", "ES256"))
        async with running(configured, fakes, clock) as h:
            idp.h = h
            yield idp


@pytest.fixture
async def idp(settings: Settings, fakes: Fakes, clock: Clock, keys: Keys) -> AsyncIterator[Idp]:
    async with behind_a_jwks(settings, fakes, clock, keys, refresh_interval=30.0) as found:
        yield found


async def test_an_rs256_token_from_the_jwks_is_accepted(idp: Idp, keys: Keys) -> None:
    service = signed(keys.rsa, claims(now(), sub="svc", roles=["service"]))
    body = await idp.h.gql(ENROLL, {"input": {"commerceCustomerId": "cust-1"}}, service)
    assert body["data"]["enrollMember"]["userErrors"] == []
    member = signed(keys.rsa, claims(now(), sub="cust-1"))
    response = await ask(idp.h, bearer(member), ME)
    assert response.json() == {"data": {"me": {"externalIds": {"commerceCustomerId": "cust-1"}}}}
    assert idp.fetches == 1


async def test_an_es256_token_from_the_jwks_is_accepted(idp: Idp, keys: Keys) -> None:
    token = signed(keys.ec, claims(now()), "ec1", "ES256")
    assert (await ask(idp.h, bearer(token))).json() == {"data": {"program": {"key": "club-harry"}}}


async def test_hs256_signed_with_the_rsa_public_key_is_refused(idp: Idp, keys: Keys) -> None:
    """The algorithm-confusion attack: the public key's PEM used as an HMAC secret."""
    forged = hmac_signed(
        segment({"alg": "HS256", "kid": "k1"}), segment(claims(now())), keys.rsa_pem
    )
    reason = "the token's algorithm is not accepted (accepted: RS256, ES256)"
    assert_refused(await ask(idp.h, bearer(forged)), reason, forged)
    assert idp.fetches == 0


async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(
    idp: Idp, keys: Keys
) -> None:
    token = signed(keys.rotated, claims(now()), "k1")
    assert_refused(await ask(idp.h, bearer(token)), "invalid signature", token)


async def test_a_flood_of_unknown_kids_costs_one_fetch(idp: Idp, keys: Keys) -> None:
    warm = signed(keys.rsa, claims(now()))
    assert (await ask(idp.h, bearer(warm))).status_code == 200
    rng = random.Random(6)
    for _ in range(100):
        kid = "".join(rng.choices(string.ascii_letters, k=12))
        token = signed(keys.rsa, claims(now()), kid)
        assert_refused(await ask(idp.h, bearer(token)), "unknown signing key (kid)", token)
    assert idp.fetches == 1


async def test_a_rotated_key_is_fetched_once_when_the_interval_allows(
    settings: Settings, fakes: Fakes, clock: Clock, keys: Keys
) -> None:
    async with behind_a_jwks(settings, fakes, clock, keys, refresh_interval=1.0) as idp:
        assert (await ask(idp.h, bearer(signed(keys.rsa, claims(now()))))).status_code == 200
        idp.publish(jwk(keys.rsa.public_key(), "k1"), jwk(keys.rotated.public_key(), "k2"))
        rotated = signed(keys.rotated, claims(now()), "k2")
        assert_refused(await ask(idp.h, bearer(rotated)), "unknown signing key (kid)", rotated)
        assert idp.fetches == 1  # the last fetch was under a second ago
        await asyncio.sleep(1.0)
        for _ in range(3):
            response = await ask(idp.h, bearer(rotated))
            assert response.json() == {"data": {"program": {"key": "club-harry"}}}
        assert idp.fetches == 2


async def test_a_jwks_that_is_down_is_a_401_that_says_so(idp: Idp, keys: Keys) -> None:
    idp.route.mock(side_effect=httpx.ConnectError("connection refused"))
    token = signed(keys.rsa, claims(now()))
    reason = "signing keys unavailable: the JWKS could not be fetched"
    assert_refused(await ask(idp.h, bearer(token)), reason, token)
    assert idp.fetches == 1


async def test_an_hs256_token_is_refused_under_a_jwks(idp: Idp) -> None:
    token = hs(claims(now()))
    reason = "the token's algorithm is not accepted (accepted: RS256, ES256)"
    assert_refused(await ask(idp.h, bearer(token)), reason, token)


# --- subscriptions end with their token ---------------------------------------------------
@pytest.fixture
async def no_leeway(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Harness]:
    async with running(settings.model_copy(update={"jwt_leeway": 0.0}), fakes, clock) as h:
        yield h


def short_lived(sub: str, seconds: float = 1.5) -> str:
    """A member token that expires `seconds` from now (a fractional exp, so exactly)."""
    return hs(claims(now(), sub=sub, exp=now() + seconds))


def subscribers(h: Harness, member_id: str) -> int:
    broker = h.gateway.services.broker
    assert isinstance(broker, InProcessBroker)
    return broker.subscriber_count(points_channel(local(member_id)))


async def test_a_subscription_is_closed_when_its_header_token_expires(no_leeway: Harness) -> None:
    h = no_leeway
    member_id = await enroll(h, "cust-1")
    async with serving(h.app) as url:
        token = short_lived("cust-1")
        async with ws_client(url, token) as client:
            assert await client.init() == {"type": "connection_ack"}
            await client.subscribe("1", POINTS_CHANGED, {"id": member_id})
            assert next_points(await client.receive()) == ZERO
            with pytest.raises(ConnectionClosed) as closed:
                await client.receive(within=5.0)
        assert time.time() >= jwt.decode(token, options={"verify_signature": False})["exp"]
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "Token expired")
        await wait_until(lambda: subscribers(h, member_id) == 0)


async def test_a_subscription_is_closed_when_its_connection_init_token_expires(
    no_leeway: Harness,
) -> None:
    h = no_leeway
    member_id = await enroll(h, "cust-1")
    async with serving(h.app) as url, ws_client(url) as client:
        init = {"Authorization": f"Bearer {short_lived('cust-1')}"}
        assert await client.init(init) == {"type": "connection_ack"}
        await client.subscribe("1", POINTS_CHANGED, {"id": member_id})
        assert next_points(await client.receive()) == ZERO
        assert subscribers(h, member_id) == 1
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive(within=5.0)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "Token expired")
    await wait_until(lambda: subscribers(h, member_id) == 0)


async def test_the_legacy_graphql_ws_protocol_is_closed_at_expiry_too(no_leeway: Harness) -> None:
    h = no_leeway
    member_id = await enroll(h, "cust-1")
    async with (
        serving(h.app) as url,
        connect(url, subprotocols=[Subprotocol("graphql-ws")]) as ws,
    ):
        init = {"Authorization": f"Bearer {short_lived('cust-1')}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        payload = {"query": POINTS_CHANGED, "variables": {"id": member_id}}
        await ws.send(json.dumps({"type": "start", "id": "1", "payload": payload}))
        assert json.loads(await ws.recv()) == {
            "type": "data",
            "id": "1",
            "payload": {"data": {"pointsChanged": ZERO}},
        }
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5.0)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "Token expired")
    await wait_until(lambda: subscribers(h, member_id) == 0)


async def test_a_connection_whose_token_outlives_the_test_stays_open(no_leeway: Harness) -> None:
    h = no_leeway
    member_id = await enroll(h, "cust-1")
    async with serving(h.app) as url, ws_client(url, short_lived("cust-1", 3600)) as client:
        assert await client.init() == {"type": "connection_ack"}
        await client.subscribe("1", POINTS_CHANGED, {"id": member_id})
        assert next_points(await client.receive()) == ZERO
        assert await client.silent(0.3)
        assert subscribers(h, member_id) == 1
