"""An in-memory commercetools that speaks the real wire format, for the demo, tests and benches.

`FakeCommerce().app` is one Starlette app serving both hosts of commercetools:

- `POST /oauth/token`: the client-credentials grant (HTTP Basic `client_id:client_secret`,
  `grant_type` in the form body or the query string). Issues opaque bearer tokens that live
  `token_lifetime` seconds; `expire_tokens()` revokes every issued token (to test refreshes).
- `/{projectKey}/...`: the API, which requires one of those tokens:
  `GET carts/customer-id={id}`, `GET carts/{id}`, `GET carts?where&sort&limit&offset`,
  `GET orders?...`, `GET orders/{id}`, `GET orders/order-number={number}`.

Queries implement the subset of the predicate language the client uses: comparisons
(`=`, `!=`, `>`, `>=`, `<`, `<=`) of a field with a string literal and `field in ("a", "b")`,
joined with `and`; several `where` parameters are joined with `and` too. Errors have the
commercetools shape (`{"statusCode", "message", "errors": [{"code", "message"}]}`).

Seed it with `add_cart(...)` and `add_order(...)`. Every request served is recorded in
`.requests`; `latency` (seconds) delays each API request, for benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loyalty.money import Money, fraction_digits

MAX_LIMIT = 500
MAX_OFFSET = 10000
DEFAULT_LIMIT = 20
_DATE_FIELDS = frozenset({"createdAt", "lastModifiedAt", "completedAt"})
_PRODUCT_NAMESPACE = uuid.UUID("6f1c6a52-4a0e-4c47-9d5e-5a0f3c7d2b11")

Json = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class FakeLine:
    """A line to seed a cart or an order with; `unit_price` is a decimal string."""

    sku: str
    name: str
    quantity: int
    unit_price: str
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the fake served: its path below any mount point and its query parameters."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)


class InvalidQuery(ValueError):
    """A query parameter the fake (like the real API) refuses with 400 InvalidInput."""


class FakeCommerce:
    """An in-memory commercetools project behind its OAuth host, as one Starlette app."""

    def __init__(
        self,
        project_key: str = "patron-demo",
        client_id: str = "patron-demo",
        client_secret: str = "patron-demo-secret",
        token_lifetime: int = 172800,
    ) -> None:
        self.project_key = project_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.latency: float = 0.0
        self.carts: list[Json] = []
        self.orders: list[Json] = []
        self.requests: list[RecordedRequest] = []
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._last_stamp: datetime | None = None
        self._order_count = 0
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self._recorded(self._token), methods=["POST"]),
                self._api_route("/carts/customer-id={customer_id:path}", self._cart_of),
                self._api_route("/carts/{cart_id}", self._cart_by_id),
                self._api_route("/carts", self._query_carts),
                self._api_route("/orders/order-number={number:path}", self._order_by_number),
                self._api_route("/orders/{order_id}", self._order_by_id),
                self._api_route("/orders", self._query_orders),
                Route(
                    "/{rest:path}",
                    self._recorded(self._no_route),
                    methods=["GET", "POST", "DELETE"],
                ),
            ]
        )

    # --- seeding --------------------------------------------------------------------------
    def add_cart(
        self,
        customer_id: str,
        lines: Sequence[FakeLine],
        currency: str = "CAD",
        *,
        state: str = "Active",
        last_modified_at: datetime | None = None,
    ) -> Json:
        """Store a cart and return its JSON; its total is the sum of its lines."""
        stamp = _iso(last_modified_at) if last_modified_at else self._next_stamp()
        items = [_line_item(line, currency) for line in lines]
        minor = sum(item["totalPrice"]["centAmount"] for item in items)
        cart: Json = {
            "type": "Cart",
            "id": str(uuid.uuid4()),
            "version": 1 + len(items),
            "versionModifiedAt": stamp,
            "customerId": customer_id,
            "lineItems": items,
            "customLineItems": [],
            "totalPrice": _money(minor, currency),
            "taxMode": "Platform",
            "taxRoundingMode": "HalfEven",
            "taxCalculationMode": "LineItemLevel",
            "inventoryMode": "None",
            "cartState": state,
            "shippingMode": "Single",
            "shipping": [],
            "itemShippingAddresses": [],
            "discountCodes": [],
            "directDiscounts": [],
            "refusedGifts": [],
            "origin": "Customer",
            "createdAt": stamp,
            "lastModifiedAt": stamp,
        }
        self.carts.append(cart)
        return cart

    def add_order(
        self,
        customer_id: str | None,
        total: str,
        currency: str = "CAD",
        *,
        created_at: datetime,
        order_number: str | None = None,
        state: str = "Confirmed",
        email: str | None = None,
        lines: Sequence[FakeLine] = (),
    ) -> Json:
        """Store an order and return its JSON; `total` is a decimal string ("330.00")."""
        self._order_count += 1
        stamp = _iso(created_at)
        order: Json = {
            "type": "Order",
            "id": str(uuid.uuid4()),
            "version": 1,
            "versionModifiedAt": stamp,
            "orderNumber": order_number or f"{self.project_key.upper()}-{self._order_count:06d}",
            "lineItems": [_line_item(line, currency) for line in lines],
            "customLineItems": [],
            "totalPrice": _money(Money.of(total, currency).minor, currency),
            "taxMode": "Platform",
            "taxRoundingMode": "HalfEven",
            "inventoryMode": "None",
            "orderState": state,
            "paymentState": "Paid",
            "shipmentState": "Pending",
            "shippingMode": "Single",
            "shipping": [],
            "syncInfo": [],
            "returnInfo": [],
            "discountCodes": [],
            "refusedGifts": [],
            "origin": "Customer",
            "createdAt": stamp,
            "lastModifiedAt": stamp,
        }
        if customer_id is not None:
            order["customerId"] = customer_id
        if email is not None:
            order["customerEmail"] = email
        self.orders.append(order)
        return order

    def expire_tokens(self) -> None:
        """Revoke every issued token: the next API call gets a 401 `invalid_token`."""
        self._tokens.clear()

    def reset_requests(self) -> None:
        self.requests.clear()

    def _next_stamp(self) -> str:
        """Now, but always later than the previous default stamp (so order is preserved)."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return _iso(now)

    # --- routing and auth -----------------------------------------------------------------
    def _api_route(self, path: str, handler: Handler) -> Route:
        return Route(f"/{{project_key}}{path}", self._recorded(self._authorized(handler)))

    def _recorded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.requests.append(
                RecordedRequest(request.method, _route_path(request), dict(request.query_params))
            )
            return await handler(request)

        return endpoint

    def _authorized(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            if not self._valid_token(request.headers.get("authorization", "")):
                return _invalid_token()
            if request.path_params["project_key"] != self.project_key:
                return _error(
                    403, "insufficient_scope", "The project key is not in the token's scope."
                )
            return await handler(request)

        return endpoint

    def _valid_token(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        expiry = self._tokens.get(token.strip())
        return scheme.lower() == "bearer" and expiry is not None and time.monotonic() < expiry

    async def _token(self, request: Request) -> Response:
        if not self._valid_client(request.headers.get("authorization", "")):
            message = "Please provide valid client credentials using HTTP Basic Authentication."
            return _error(401, "invalid_client", message, error="invalid_client")
        form = await _form(request)
        grant_type = form.get("grant_type") or request.query_params.get("grant_type")
        if grant_type != "client_credentials":
            message = f"Unsupported grant type {grant_type!r}."
            return _error(400, "unsupported_grant_type", message, error="unsupported_grant_type")
        requested = form.get("scope") or request.query_params.get("scope")
        scope = requested if requested else f"manage_project:{self.project_key}"
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        body = {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "scope": scope,
            "token_type": "Bearer",
        }
        return JSONResponse(body)

    def _valid_client(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, secret = decoded.partition(":")
        id_ok = secrets.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = secrets.compare_digest(secret.encode(), self.client_secret.encode())
        return id_ok and secret_ok

    async def _no_route(self, request: Request) -> Response:
        return _error(404, "ResourceNotFound", f"No resource at {_route_path(request)}.")

    # --- the API ----------------------------------------------------------------------------
    async def _cart_of(self, request: Request) -> Response:
        customer_id = request.path_params["customer_id"]
        carts = [
            cart
            for cart in self.carts
            if cart.get("customerId") == customer_id and cart["cartState"] == "Active"
        ]
        if not carts:
            message = f"The Resource with ID 'customer-id={customer_id}' was not found."
            return _error(404, "ResourceNotFound", message)
        return JSONResponse(max(carts, key=lambda cart: _parse_date(cart["lastModifiedAt"])))

    async def _cart_by_id(self, request: Request) -> Response:
        return _one(self.carts, "id", request.path_params["cart_id"])

    async def _order_by_id(self, request: Request) -> Response:
        return _one(self.orders, "id", request.path_params["order_id"])

    async def _order_by_number(self, request: Request) -> Response:
        return _one(self.orders, "orderNumber", request.path_params["number"])

    async def _query_carts(self, request: Request) -> Response:
        return _query(self.carts, request)

    async def _query_orders(self, request: Request) -> Response:
        return _query(self.orders, request)


# --- queries --------------------------------------------------------------------------------
def _one(resources: list[Json], key: str, value: str) -> Response:
    for resource in resources:
        if resource.get(key) == value:
            return JSONResponse(resource)
    return _error(404, "ResourceNotFound", f"The Resource with ID '{value}' was not found.")


def _query(resources: list[Json], request: Request) -> Response:
    params = request.query_params
    try:
        limit = _bounded_int(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT, "limit")
        offset = _bounded_int(params.get("offset"), 0, MAX_OFFSET, "offset")
        predicates = [p for where in params.getlist("where") for p in parse_predicate(where)]
        found = [r for r in resources if all(p.matches(r) for p in predicates)]
        for sort in reversed(params.getlist("sort")):
            found = _sorted(found, sort)
    except InvalidQuery as exc:
        return _error(400, "InvalidInput", str(exc))
    page = found[offset : offset + limit]
    return JSONResponse(
        {"limit": limit, "offset": offset, "count": len(page), "total": len(found), "results": page}
    )


def _bounded_int(raw: str | None, default: int, maximum: int, name: str) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidQuery(f"Malformed parameter: {name}: not an integer.") from None
    if not 0 <= value <= maximum:
        raise InvalidQuery(f"The parameter '{name}' must be between 0 and {maximum}.")
    return value


def _sorted(resources: list[Json], sort: str) -> list[Json]:
    parts = sort.split()
    if len(parts) not in (1, 2) or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise InvalidQuery(f"Malformed parameter: sort: {sort!r}.")
    key = parts[0]
    descending = len(parts) == 2 and parts[1].lower() == "desc"
    present = [r for r in resources if r.get(key) is not None]
    missing = [r for r in resources if r.get(key) is None]
    ordered = sorted(present, key=lambda r: _comparable(key, r[key]), reverse=descending)
    return ordered + missing


@dataclass(frozen=True, slots=True)
class Predicate:
    """`field op value` or `field in (values)` over the top-level fields of a resource."""

    field: str
    op: str
    values: tuple[str, ...]

    def matches(self, resource: Mapping[str, Any]) -> bool:
        actual = resource.get(self.field)
        if actual is None:
            return self.op == "!="
        if self.op == "in":
            return str(actual) in self.values
        left = _comparable(self.field, actual)
        right = _comparable(self.field, self.values[0])
        return bool(_COMPARE[self.op](left, right))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def parse_predicate(text: str) -> list[Predicate]:
    """The conjunction `text` as a list of predicates; `InvalidQuery` outside the subset."""
    tokens = _tokenize(text)
    predicates: list[Predicate] = []
    pos = 0
    while True:
        predicate, pos = _clause(tokens, pos, text)
        predicates.append(predicate)
        if pos == len(tokens):
            return predicates
        if tokens[pos] != ("word", "and"):
            raise InvalidQuery(f"Malformed parameter: where: {text!r}.")
        pos += 1


def _clause(tokens: list[tuple[str, str]], pos: int, text: str) -> tuple[Predicate, int]:
    def at(i: int) -> tuple[str, str]:
        return tokens[i] if i < len(tokens) else ("end", "")

    kind, name = at(pos)
    if kind != "word":
        raise InvalidQuery(f"Malformed parameter: where: {text!r}.")
    kind, op = at(pos + 1)
    if kind == "op" and at(pos + 2)[0] == "string":
        return Predicate(name, op, (at(pos + 2)[1],)), pos + 3
    if (kind, op.lower()) != ("word", "in") or at(pos + 2) != ("punct", "("):
        raise InvalidQuery(f"Malformed parameter: where: {text!r}.")
    values: list[str] = []
    pos += 3
    while True:
        kind, value = at(pos)
        if kind != "string":
            raise InvalidQuery(f"Malformed parameter: where: {text!r}.")
        values.append(value)
        separator = at(pos + 1)
        pos += 2
        if separator == ("punct", ")"):
            return Predicate(name, "in", tuple(values)), pos
        if separator != ("punct", ","):
            raise InvalidQuery(f"Malformed parameter: where: {text!r}.")


def _tokenize(text: str) -> list[tuple[str, str]]:
    """Words (lower-cased `and`/`in`), operators, `( , )` and string literals with escapes."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char == '"':
            value, i = _string_literal(text, i + 1)
            tokens.append(("string", value))
        elif char in "(),":
            tokens.append(("punct", char))
            i += 1
        elif text.startswith((">=", "<=", "!="), i):
            tokens.append(("op", text[i : i + 2]))
            i += 2
        elif char in "=<>":
            tokens.append(("op", char))
            i += 1
        elif char.isalnum() or char in "_.":
            start = i
            while i < len(text) and (text[i].isalnum() or text[i] in "_."):
                i += 1
            word = text[start:i]
            tokens.append(("word", word.lower() if word.lower() in ("and", "in") else word))
        else:
            raise InvalidQuery(f"Malformed parameter: where: unexpected {char!r}.")
    return tokens


def _string_literal(text: str, i: int) -> tuple[str, int]:
    chars: list[str] = []
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
        elif char == '"':
            return "".join(chars), i + 1
        else:
            chars.append(char)
            i += 1
    raise InvalidQuery("Malformed parameter: where: unterminated string.")


def _comparable(field_name: str, value: Any) -> Any:
    if field_name in _DATE_FIELDS:
        try:
            return _parse_date(str(value))
        except ValueError:
            raise InvalidQuery(f"Malformed parameter: where: bad date {value!r}.") from None
    return str(value) if not isinstance(value, int | Decimal) else value


# --- JSON helpers ---------------------------------------------------------------------------
def _line_item(line: FakeLine, currency: str) -> Json:
    unit = Money.of(line.unit_price, currency)
    images = [{"url": line.image_url, "dimensions": {"w": 800, "h": 800}}] if line.image_url else []
    return {
        "id": str(uuid.uuid4()),
        "productId": str(uuid.uuid5(_PRODUCT_NAMESPACE, line.sku)),
        "productKey": line.sku.lower(),
        "name": {"en": line.name},
        "productType": {"typeId": "product-type", "id": str(uuid.uuid5(_PRODUCT_NAMESPACE, ""))},
        "variant": {"id": 1, "sku": line.sku, "prices": [], "images": images, "attributes": []},
        "price": {"id": str(uuid.uuid4()), "value": _money(unit.minor, currency)},
        "quantity": line.quantity,
        "discountedPricePerQuantity": [],
        "perMethodTaxRate": [],
        "state": [{"quantity": line.quantity, "state": {"typeId": "state", "id": _INITIAL_STATE}}],
        "priceMode": "Platform",
        "lineItemMode": "Standard",
        "totalPrice": _money(unit.minor * line.quantity, currency),
        "taxedPricePortions": [],
    }


_INITIAL_STATE = str(uuid.uuid5(_PRODUCT_NAMESPACE, "Initial"))


def _money(minor: int, currency: str) -> Json:
    return {
        "type": "centPrecision",
        "currencyCode": currency,
        "centAmount": minor,
        "fractionDigits": fraction_digits(currency),
    }


def _iso(value: datetime) -> str:
    utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _parse_date(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (without needing python-multipart); {} for any other body."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    pairs = parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True)
    return dict(pairs)


def _route_path(request: Request) -> str:
    """The path below the mount point (the same path the routes match)."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


def _error(status: int, code: str, message: str, *, error: str | None = None) -> JSONResponse:
    body: Json = {
        "statusCode": status,
        "message": message,
        "errors": [{"code": code, "message": message}],
    }
    if error is not None:
        body["error"] = error
    return JSONResponse(body, status_code=status)


def _invalid_token() -> JSONResponse:
    return _error(401, "invalid_token", "invalid_token", error="invalid_token")
