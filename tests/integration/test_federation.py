"""Patron as a subgraph behind a real gateway from npm.

`patron serve --demo` runs with `PATRON_FEDERATION=true` on a real port (SQLite, the fakes
in process, the demo members Ava, Ben and Chloé). `tests/federation/gateway.mjs` serves two
Node subgraphs (`@apollo/subgraph`): appointments, whose `Member` is keyed by
`externalIds { commerceCustomerId }` and adds `Member.appointments`, and reviews, whose
authors are `Member`s by `id`. It composes them with Patron's live `_service { sdl }`
(`@apollo/composition`) and serves the supergraph with `@apollo/gateway` on
`@apollo/server`, forwarding the client's `Authorization` to every subgraph. The queries
below cross the subgraphs both ways, through both keys, and check that Patron's rules hold
behind the router.

Needs Node 20+ and `npm ci` in tests/federation; skipped otherwise, unless
`PATRON_TEST_REQUIRE_FEDERATION=1` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from gateway.auth import issue_token

REPO_ROOT = Path(__file__).resolve().parents[2]
FEDERATION_DIR = REPO_ROOT / "tests" / "federation"
REQUIRED = os.environ.get("PATRON_TEST_REQUIRE_FEDERATION") == "1"
SECRET = "federation-test-secret-0123456789abcdef"
START_TIMEOUT = 60.0

# Composing with a subgraph that knows only the key field of ExternalIds: Patron's other
# ExternalIds fields are resolved by Patron alone, which is what is wanted. Any other hint
# (or a change of these) fails the tests.
EXPECTED_HINTS = [
    {
        "code": "INCONSISTENT_OBJECT_VALUE_TYPE_FIELD",
        "message": f'Field "ExternalIds.{field}" of non-entity object type "ExternalIds" is '
        'defined in some but not all subgraphs that define "ExternalIds": '
        f'"ExternalIds.{field}" is defined in subgraph "patron" but not in subgraph '
        '"appointments".',
    }
    for field in ("cdpUserId", "email")
]

APPOINTMENTS = [
    {
        "id": "apt-1",
        "store": "TOR-BLOOR",
        "service": "Suit fitting",
        "startsAt": "2026-12-01T10:00:00-05:00",
        "commerceCustomerId": "demo-ava",
    },
    {
        "id": "apt-2",
        "store": "TOR-BLOOR",
        "service": "Shirt measuring",
        "startsAt": "2026-12-01T11:00:00-05:00",
        "commerceCustomerId": "demo-ben",
    },
    {
        "id": "apt-3",
        "store": "MTL-PEEL",
        "service": "Wardrobe review",
        "startsAt": "2026-12-02T15:30:00-05:00",
        "commerceCustomerId": "guest-7",  # booked on the storefront, not a member
    },
]
NOT_ALLOWED = "a member may read only itself and its household"


def _node_or_skip() -> None:
    reason = None
    if shutil.which("node") is None or shutil.which("npm") is None:
        reason = "node and npm are not installed (Node 20+ is needed for the federation test)"
    elif not (FEDERATION_DIR / "node_modules" / "@apollo" / "gateway").is_dir():
        reason = "the Node packages are not installed: cd tests/federation && npm ci"
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"PATRON_TEST_REQUIRE_FEDERATION=1 but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _read_line(stream: IO[str], timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return stream.readline()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tok(sub: str, role: str) -> str:
    return issue_token(SECRET, sub, [role], ttl=3600)


@dataclass
class Supergraph:
    gateway: str
    patron: str
    hints: list[dict[str, str]]
    ids: dict[str, str]  # member global ids by commerce customer id

    def query(
        self, query: str, token: str | None = None, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload = {"query": query, "variables": variables or {}}
        response = httpx.post(self.gateway, json=payload, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _start_patron(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env |= {
        "PYTHONPATH": str(REPO_ROOT),
        "PATRON_FEDERATION": "true",
        "PATRON_JWT_SECRET": SECRET,
        "PATRON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'patron.db'}",
    }
    log = (tmp / "patron.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"patron exited {process.returncode}:\n{(tmp / 'patron.log').read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, f"{base}/graphql"
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    _stop(process)
    pytest.fail(f"patron not ready in {START_TIMEOUT}s:\n{(tmp / 'patron.log').read_text()}")


def _member_ids(patron: str) -> dict[str, str]:
    response = httpx.post(
        patron,
        json={
            "query": "{ members(first: 10) { edges { node { id externalIds { commerceCustomerId } } } } }"
        },
        headers={"Authorization": f"Bearer {tok('admin-1', 'admin')}"},
        timeout=30,
    )
    edges = response.json()["data"]["members"]["edges"]
    return {e["node"]["externalIds"]["commerceCustomerId"]: e["node"]["id"] for e in edges}


@pytest.fixture(scope="module")
def supergraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supergraph]:
    _node_or_skip()
    tmp = tmp_path_factory.mktemp("federation")
    patron, patron_url = _start_patron(tmp)
    node: subprocess.Popen[str] | None = None
    try:
        ids = _member_ids(patron_url)
        assert sorted(ids) == ["demo-ava", "demo-ben", "demo-chloe"]
        fixtures = {
            "appointments": APPOINTMENTS,
            "reviews": [
                {"id": "rev-1", "product": "HR-CASH-COAT-48", "rating": 5, "title": "Warm and sharp", "authorId": ids["demo-ava"]},
                {"id": "rev-2", "product": "HR-OXF-SHIRT-WHT", "rating": 4, "title": "Crisp", "authorId": ids["demo-chloe"]},
            ],
        }  # fmt: skip
        (tmp / "fixtures.json").write_text(json.dumps(fixtures), encoding="utf-8")
        node = subprocess.Popen(
            ["node", "gateway.mjs", patron_url, str(tmp / "fixtures.json")],
            cwd=FEDERATION_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(tmp / "node.log").open("w"),
            text=True,
        )
        assert node.stdout is not None
        line = _read_line(node.stdout, START_TIMEOUT)
        if not line:
            pytest.fail(f"the gateway did not start:\n{(tmp / 'node.log').read_text()}")
        ready = json.loads(line)
        assert ready["errors"] == [], ready
        yield Supergraph(ready["gateway"], patron_url, ready["hints"], ids)
    finally:
        if node is not None:
            _stop(node)
        _stop(patron)


# --- composition ----------------------------------------------------------------------------
def test_the_live_subgraph_composes_with_no_error_and_only_the_expected_hints(
    supergraph: Supergraph,
) -> None:
    assert supergraph.hints == EXPECTED_HINTS


def test_the_committed_federated_schema_composes() -> None:
    """What CI runs first (`make compose`), on the committed file."""
    _node_or_skip()
    done = subprocess.run(
        ["node", "compose.mjs", str(REPO_ROOT / "schema.federation.graphql")],
        cwd=FEDERATION_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {"errors": [], "hints": EXPECTED_HINTS}


def test_compose_exits_1_and_names_the_error_when_composition_fails(tmp_path: Path) -> None:
    """Without its commerce key, Patron's Member.externalIds clashes with the appointments
    subgraph's: what `make compose` in CI stops on."""
    _node_or_skip()
    sdl = (REPO_ROOT / "schema.federation.graphql").read_text(encoding="utf-8")
    broken = sdl.replace(' @key(fields: "externalIds { commerceCustomerId }")', "")
    assert broken != sdl
    (tmp_path / "broken.graphql").write_text(broken, encoding="utf-8")
    done = subprocess.run(
        ["node", "compose.mjs", str(tmp_path / "broken.graphql")],
        cwd=FEDERATION_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["errors"] == [
        {
            "code": "INVALID_FIELD_SHARING",
            "message": f'Non-shareable field "{field}" is resolved from multiple subgraphs: it is '
            'resolved from subgraphs "appointments" and "patron" and defined as non-shareable '
            'in subgraph "patron"',
        }
        for field in ("Member.externalIds", "ExternalIds.commerceCustomerId")
    ]


# --- queries through the gateway ------------------------------------------------------------
def test_a_members_points_and_tier_joined_with_its_appointments(supergraph: Supergraph) -> None:
    """Patron's `me`, then the appointments subgraph by the commerce customer id key."""
    body = supergraph.query(
        "{ me { externalIds { commerceCustomerId } points { available pending } "
        "tier { current { name } } appointments { id store service startsAt } } }",
        tok("demo-ava", "member"),
    )
    assert body == {
        "data": {
            "me": {
                "externalIds": {"commerceCustomerId": "demo-ava"},
                "points": {"available": 7728, "pending": 800},
                "tier": {"current": {"name": "Gold"}},
                "appointments": [
                    {
                        "id": "apt-1",
                        "store": "TOR-BLOOR",
                        "service": "Suit fitting",
                        "startsAt": "2026-12-01T10:00:00-05:00",
                    }
                ],
            }
        }
    }


def test_appointments_resolve_their_members_in_patron_by_commerce_customer_id(
    supergraph: Supergraph,
) -> None:
    """The appointments subgraph first, then Patron's `_entities` with the commerce key."""
    body = supergraph.query(
        "{ appointments { id member { id externalIds { commerceCustomerId } "
        "points { available } tier { current { name } } } } }",
        tok("assoc-0042", "associate"),
    )
    ids = supergraph.ids
    assert body == {
        "errors": [
            {
                "message": "member not found",
                "path": ["appointments", 2, "member"],
                "extensions": {"code": "NOT_FOUND", "serviceName": "patron"},
            }
        ],
        "data": {
            "appointments": [
                {"id": "apt-1", "member": {"id": ids["demo-ava"], "externalIds": {"commerceCustomerId": "demo-ava"}, "points": {"available": 7728}, "tier": {"current": {"name": "Gold"}}}},
                {"id": "apt-2", "member": {"id": ids["demo-ben"], "externalIds": {"commerceCustomerId": "demo-ben"}, "points": {"available": 310}, "tier": {"current": {"name": "Member"}}}},
                {"id": "apt-3", "member": None},
            ]
        },
    }  # fmt: skip


def test_review_authors_resolve_by_id_then_join_their_appointments(
    supergraph: Supergraph,
) -> None:
    """reviews -> Patron by `id` (for the commerce id) -> appointments by the commerce key."""
    body = supergraph.query(
        "{ reviews { id rating author { externalIds { commerceCustomerId } "
        "points { available pending } tier { current { name } } appointments { id } } } }",
        tok("pos-tor-bloor", "service"),
    )
    assert body == {
        "data": {
            "reviews": [
                {"id": "rev-1", "rating": 5, "author": {"externalIds": {"commerceCustomerId": "demo-ava"}, "points": {"available": 7728, "pending": 800}, "tier": {"current": {"name": "Gold"}}, "appointments": [{"id": "apt-1"}]}},
                {"id": "rev-2", "rating": 4, "author": {"externalIds": {"commerceCustomerId": "demo-chloe"}, "points": {"available": 2750, "pending": 650}, "tier": {"current": {"name": "Silver"}}, "appointments": []}},
            ]
        }
    }  # fmt: skip


def test_a_member_reads_no_other_member_through_the_gateway(supergraph: Supergraph) -> None:
    """Both keys: Ben's appointment and Chloé's review give Ava their own data, not Patron's."""
    ava = tok("demo-ava", "member")
    appointments = supergraph.query(
        "{ appointments { id store member { externalIds { commerceCustomerId } points { available } } } }",
        ava,
    )
    assert appointments == {
        "errors": [
            {"message": NOT_ALLOWED, "path": ["appointments", 1, "member"], "extensions": {"code": "NOT_ALLOWED", "serviceName": "patron"}},
            {"message": NOT_ALLOWED, "path": ["appointments", 2, "member"], "extensions": {"code": "NOT_ALLOWED", "serviceName": "patron"}},
        ],
        "data": {
            "appointments": [
                {"id": "apt-1", "store": "TOR-BLOOR", "member": {"externalIds": {"commerceCustomerId": "demo-ava"}, "points": {"available": 7728}}},
                {"id": "apt-2", "store": "TOR-BLOOR", "member": None},
                {"id": "apt-3", "store": "MTL-PEEL", "member": None},
            ]
        },
    }  # fmt: skip
    reviews = supergraph.query(
        "{ reviews { id author { points { available } tier { current { name } } } } }", ava
    )
    assert reviews == {
        "errors": [
            {"message": NOT_ALLOWED, "path": ["reviews", 1, "author"], "extensions": {"code": "NOT_ALLOWED", "serviceName": "patron"}},
        ],
        "data": {
            "reviews": [
                {"id": "rev-1", "author": {"points": {"available": 7728}, "tier": {"current": {"name": "Gold"}}}},
                {"id": "rev-2", "author": None},
            ]
        },
    }  # fmt: skip


def test_an_anonymous_caller_gets_the_other_subgraphs_data_and_no_member(
    supergraph: Supergraph,
) -> None:
    body = supergraph.query("{ reviews { id rating author { points { available } } } }")
    assert body == {
        "errors": [
            {"message": "a bearer token is required", "path": ["reviews", i, "author"], "extensions": {"code": "UNAUTHENTICATED", "serviceName": "patron"}}
            for i in (0, 1)
        ],
        "data": {"reviews": [{"id": "rev-1", "rating": 5, "author": None}, {"id": "rev-2", "rating": 4, "author": None}]},
    }  # fmt: skip
    me = supergraph.query("{ me { points { available } } }")
    assert me == {
        "errors": [
            {"message": "a bearer token is required", "path": ["me"], "extensions": {"code": "UNAUTHENTICATED", "serviceName": "patron"}}
        ],
        "data": {"me": None},
    }  # fmt: skip


def test_the_gateway_answers_what_patron_answers_directly(supergraph: Supergraph) -> None:
    """The router adds nothing to and takes nothing from Patron's own answer."""
    query = (
        "query($id: ID!) { member(id: $id) { id externalIds { commerceCustomerId email } "
        "points { available pending lifetimeEarned } tier { current { key name } } } }"
    )
    variables = {"id": supergraph.ids["demo-chloe"]}
    token = tok("assoc-0042", "associate")
    direct = httpx.post(
        supergraph.patron,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert direct["data"]["member"]["externalIds"]["email"] == "chloe.martin@example.com"
    assert "errors" not in direct
    assert supergraph.query(query, token, variables) == direct
