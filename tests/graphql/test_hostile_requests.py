"""No request, however malformed or large, is a 500 or shows a traceback: a table of hostile
requests to `/graphql` through the app, in dev (errors unmasked) and in prod. Each answer
must be below 500, a GraphQL response object with errors when it is a refusal, and free of
Python's traces. (What only a real server sees, such as enormous headers, is in
tests/integration/test_graphql_over_http.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.demo import Fakes
from tests.graphql.apps import BASE_URL, sqlite_settings

JSON = {"Content-Type": "application/json"}
CSRF = {"X-Patron-CSRF": "1"}


@dataclass(frozen=True)
class Hostile:
    name: str
    method: str = "POST"
    body: bytes | None = None
    headers: dict[str, str | bytes] = field(default_factory=lambda: dict(JSON))
    url: str = "/graphql"


def body(value: object) -> bytes:
    return orjson.dumps(value)


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE = [
    # JSON
    Hostile("not JSON", body=b"{not json"),
    Hostile("truncated JSON", body=b'{"query": "{ __typename }"'),
    Hostile("empty body", body=b""),
    Hostile("whitespace body", body=b"   \n"),
    Hostile("invalid UTF-8", body=b'{"query": "{ \xff\xfe }"}'),
    Hostile("latin-1 declared", body=b'{"query": "{ __typename }"}', headers={"Content-Type": "application/json; charset=latin-1"}),
    Hostile("a lone surrogate escape", body=b'{"query": "{ \\ud800 }"}'),
    Hostile("a lone surrogate in variables", body=b'{"query": "query($s: String) { __typename }", "variables": {"s": "\\udfff"}}'),
    Hostile("NaN", body=b'{"query": "{ __typename }", "variables": {"n": NaN}}'),
    Hostile("Infinity", body=b'{"query": "{ __typename }", "variables": {"n": 1e999}}'),
    Hostile("a huge integer", body=b'{"query": "query($n: Int!) { members(first: $n) { totalCount } }", "variables": {"n": 123456789012345678901234567890123}}'),
    Hostile("a huge float for an Int", body=body({"query": "query($n: Int!) { members(first: $n) { totalCount } }", "variables": {"n": 1.7e308}})),
    Hostile("a huge integer literal", body=body({"query": "{ members(first: 99999999999999999999999999) { totalCount } }"})),
    Hostile("deep JSON", body=nested_list(100_000)),
    Hostile("deep JSON variables", body=b'{"query": "{ __typename }", "variables": {"v": ' + nested_list(1000) + b"}}"),
    Hostile("deep variables for an input", body=body({"query": "mutation($i: EnrollMemberInput!) { enrollMember(input: $i) { userErrors { code } } }",
                                                      "variables": {"i": {"commerceCustomerId": [[[[[[[[[["x"]]]]]]]]]]}}})),
    Hostile("null bytes in the query", body=body({"query": "{ __typename \u0000 }"})),
    Hostile("null bytes in an operation name", body=body({"query": "{ __typename }", "operationName": "A\u0000B"})),
    Hostile("null bytes in a variable", body=body({"query": "query($s: String!) { memberByCard(code: $s) { id } }", "variables": {"s": "\u0000" * 100}})),
    Hostile("a batch", body=body([{"query": "{ __typename }"}, {"query": "{ __typename }"}])),
    Hostile("an empty batch", body=b"[]"),
    Hostile("a string body", body=b'"{ __typename }"'),
    # wrong types
    Hostile("query an object", body=body({"query": {"a": 1}})),
    Hostile("query a number", body=body({"query": 1e308})),
    Hostile("variables a list", body=body({"query": "{ __typename }", "variables": [1, 2]})),
    Hostile("operationName a list", body=body({"query": "{ __typename }", "operationName": ["A"]})),
    Hostile("extensions a string", body=body({"query": "{ __typename }", "extensions": "x"})),
    Hostile("persistedQuery garbage", body=body({"extensions": {"persistedQuery": {"version": "x", "sha256Hash": 5}}})),
    # GraphQL documents
    Hostile("empty query", body=body({"query": ""})),
    Hostile("deeply nested selections", body=body({"query": "{" + " a {" * 3000 + "}" * 3001})),
    Hostile("deeply nested list literal", body=body({"query": "{ members(search: " + "[" * 3000 + "]" * 3000 + ") { totalCount } }"})),
    Hostile("many aliases", body=body({"query": "{" + " ".join(f"a{i}: __typename" for i in range(5000)) + "}"})),
    Hostile("many unknown fields", body=body({"query": "{" + " ".join(f"f{i}" for i in range(5000)) + "}"})),
    Hostile("a fragment cycle", body=body({"query": "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"})),
    Hostile("a 1 MB string literal", body=body({"query": '{ memberByCard(code: "' + "x" * 1_000_000 + '") { id } }'})),
    Hostile("unknown directive", body=body({"query": "{ __typename @nope(x: 1) }"})),
    Hostile("two anonymous operations", body=body({"query": "{ __typename } { __typename }"})),
    Hostile("an unknown operation name", body=body({"query": "query A { __typename }", "operationName": "Z"})),
    Hostile("only a fragment", body=body({"query": "fragment F on Query { __typename }"})),
    Hostile("a subscription", body=body({"query": 'subscription { pointsChanged(memberId: "x") { available } }'})),
    Hostile("a bad global id", body=body({"query": '{ node(id: "%%%not base64") { id } }'}), headers={**JSON, "Authorization": "Bearer x.y.z"}),
    # methods, content types, URLs
    Hostile("PUT", method="PUT", body=body({"query": "{ __typename }"})),
    Hostile("DELETE", method="DELETE"),
    Hostile("PATCH", method="PATCH", body=b"{}"),
    Hostile("HEAD", method="HEAD", headers={}),
    Hostile("OPTIONS", method="OPTIONS", headers={}),
    Hostile("TRACE", method="TRACE", headers={}),
    Hostile("no content type", body=body({"query": "{ __typename }"}), headers={}),
    Hostile("no content type with the CSRF header", body=body({"query": "{ __typename }"}), headers=CSRF),
    Hostile("text/plain", body=body({"query": "{ __typename }"}), headers={"Content-Type": "text/plain", **CSRF}),
    Hostile("multipart upload", body=b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query": "{ __typename }"}\r\n--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.f"]}\r\n--b\r\nContent-Disposition: form-data; name="0"; filename="a.txt"\r\n\r\nhello\r\n--b--\r\n',
            headers={"Content-Type": "multipart/form-data; boundary=b", **CSRF}),
    Hostile("a broken multipart", body=b"--b\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=b", **CSRF}),
    Hostile("form urlencoded", body=b"query=%7B__typename%7D", headers={"Content-Type": "application/x-www-form-urlencoded", **CSRF}),
    Hostile("a garbage content type", body=b"{}", headers={"Content-Type": ";;;=;;/", **CSRF}),
    Hostile("a garbage Accept", body=body({"query": "{ __typename }"}), headers={**JSON, "Accept": ";;,,q=,*/x;q=2"}),
    Hostile("Accept nothing we speak", body=body({"query": "{ __typename }"}), headers={**JSON, "Accept": "image/png"}),
    Hostile("GET without anything", method="GET", headers={}),
    Hostile("GET without a query", method="GET", headers={**CSRF, "Accept": "application/json"}),
    Hostile("GET with bad variables", method="GET", url="/graphql?query=%7B__typename%7D&variables=%7Bx", headers=CSRF),
    Hostile("GET with invalid UTF-8", method="GET", url="/graphql?query=%7B%FF%FE__typename%7D&variables=%ED%A0%80", headers=CSRF),
    Hostile("GET with repeated parameters", method="GET", url="/graphql?query=a&query=b&variables=1&variables=2", headers=CSRF),
    Hostile("GET with a mutation", method="GET", url="/graphql?query=mutation%7B__typename%7D", headers=CSRF),
    Hostile("GET with a huge query", method="GET", url="/graphql?query=" + "%7B" * 20_000, headers=CSRF),
    Hostile("GET with a bare percent", method="GET", url="/graphql?query=%&variables=%zz", headers=CSRF),
    # headers
    Hostile("a garbage bearer", body=body({"query": "{ __typename }"}), headers={**JSON, "Authorization": b"Bearer \xff\xfe\x00"}),
    Hostile("a huge bearer", body=body({"query": "{ __typename }"}), headers={**JSON, "Authorization": "Bearer " + "a" * 100_000}),
    Hostile("a huge request id", body=body({"query": "{ __typename }"}), headers={**JSON, "X-Request-Id": "r" * 100_000}),
    Hostile("a request id with a newline escape", body=body({"query": "{ __typename }"}), headers={**JSON, "X-Request-Id": "a%0d%0aSet-Cookie: x=1"}),
]  # fmt: skip


@pytest.fixture(params=["dev", "prod"])
async def client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = sqlite_settings(tmp_path, sqlite_template, monkeypatch, env=request.param)
    fakes = Fakes()
    http = fakes.http_client()
    app = create_app(settings, http=http)
    async with app.router.lifespan_context(app):
        # A 500 comes back as an answer (not raised here), so all of them are reported.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client
    await http.aclose()


TRACES = ("Traceback", 'File "', "site-packages", '.py", line', "Error(")


def problems(hostile: Hostile, response: httpx.Response) -> list[str]:
    found: list[str] = []
    if response.status_code >= 500:
        found.append(f"status {response.status_code}")
    text = response.text
    found += [f"{trace!r} in the body" for trace in TRACES if trace in text]
    if hostile.method == "HEAD":
        return found
    try:
        answer = response.json()
    except ValueError:
        if not response.headers.get("content-type", "").startswith("text/html"):
            found.append(f"not JSON: {text[:120]!r}")
        return found
    if response.status_code >= 400:
        errors = answer.get("errors") if isinstance(answer, dict) else None
        codes = [e.get("extensions", {}).get("code") for e in errors or []]
        if not errors or None in codes:
            found.append(f"a refusal without errors and codes: {text[:200]!r}")
    return found


async def test_no_hostile_request_is_a_500_or_shows_a_trace(client: httpx.AsyncClient) -> None:
    failures: dict[str, list[str]] = {}
    for hostile in HOSTILE:
        response = await client.request(
            hostile.method, hostile.url, content=hostile.body, headers=hostile.headers
        )
        if found := problems(hostile, response):
            failures[hostile.name] = [*found, f"-> {response.status_code} {response.text[:160]!r}"]
    assert not failures, "\n".join(f"{name}: {found}" for name, found in failures.items())


async def test_the_gateway_still_answers_afterwards(client: httpx.AsyncClient) -> None:
    for hostile in HOSTILE:
        await client.request(
            hostile.method, hostile.url, content=hostile.body, headers=hostile.headers
        )
    response = await client.post("/graphql", json={"query": "{ program { key } }"})
    assert response.json() == {"data": {"program": {"key": "club-harry"}}}
