"""commercetools HTTP API: the `CommercePort` of the gateway.

`CommercetoolsClient` reads carts and orders of one project (`/{projectKey}/...`) through two
`Upstream`s that share the gateway's HTTP policy (timeouts, retries of reads, breaker):

- `auth`: the OAuth2 host. A client-credentials token (`POST /oauth/token`, HTTP Basic
  `client_id:client_secret`) is cached and refreshed before it expires (when less than 10% of
  its `expires_in` or 5 minutes remain, whichever is smaller). Concurrent callers needing a
  token share one fetch. A 401 from the API refreshes the token once and retries the call once.
- `api`: the API host, possibly behind a path prefix (`http://host:port/ct-api`).

Carts of several customers are read in one query (`customerId in (...)`), the batch path of
a DataLoader. "Not found" (404 `ResourceNotFound`) is `None`; a reply that is not the JSON we
expect is `UpstreamUnavailable`; any other unexpected status is `upstream.unexpected(resp)`.

The parsing functions (`parse_money`, `parse_cart`, `parse_order`, `parse_order_page`) are
public so that the commerce webhook can turn an `OrderCreated` message's order into an
`Order` with the same code. They raise `MalformedCommerceData` on a payload they cannot read.
Money is read with its own `fractionDigits` (0 for JPY, 3 for BHD; never assumed to be 2).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx

from adapters.http import Upstream
from loyalty.errors import UpstreamError, UpstreamRateLimited, UpstreamUnavailable
from loyalty.money import Money
from loyalty.upstreams import Cart, CartLine, Order, OrderPage

UPSTREAM_NAME = "commerce"
DEFAULT_LOCALES: tuple[str, ...] = ("en-GB", "en")
MAX_LIMIT = 500  # the API's largest page
CARTS_PER_QUERY = 100  # customer ids per `customerId in (...)` query, keeps URLs short
DEFAULT_TOKEN_LIFETIME = 3600  # seconds, when a token reply has no usable `expires_in`
REFRESH_MARGIN_FRACTION = 0.10
REFRESH_MARGIN_MAX = 300.0  # seconds

_T = TypeVar("_T")
_P = ParamSpec("_P")


class MalformedCommerceData(ValueError):
    """A commercetools payload that is not what the API documents."""


# --- parsing ------------------------------------------------------------------------------
def parse_money(data: Any) -> Money:
    """A `TypedMoney` (centPrecision or highPrecision) read with its own `fractionDigits`."""
    obj = _obj(data, "money")
    currency = _str(obj, "currencyCode")
    digits = _int(obj, "fractionDigits")
    if obj.get("type") == "highPrecision" and "preciseAmount" in obj:
        return Money.from_minor(_int(obj, "preciseAmount"), currency, digits)
    return Money.from_minor(_int(obj, "centAmount"), currency, digits)


def localized(value: Any, locales: Sequence[str] = DEFAULT_LOCALES) -> str:
    """The text of a LocalizedString in the first preferred locale present, else any locale."""
    obj = _obj(value, "LocalizedString")
    for locale in locales:
        text = obj.get(locale)
        if isinstance(text, str):
            return text
    for text in obj.values():
        if isinstance(text, str):
            return text
    return ""


def parse_line_item(data: Any, locales: Sequence[str] = DEFAULT_LOCALES) -> CartLine:
    """A cart or order `LineItem`: unit price from `price.value`, total from `totalPrice`."""
    obj = _obj(data, "lineItem")
    variant = _obj(obj.get("variant", {}), "lineItem.variant")
    images = variant.get("images") or []
    image_url: str | None = None
    if isinstance(images, list) and images:
        image_url = _opt_str(_obj(images[0], "variant.images[0]"), "url")
    return CartLine(
        sku=_opt_str(variant, "sku") or "",
        name=localized(obj.get("name"), locales),
        quantity=_int(obj, "quantity"),
        unit_price=parse_money(_obj(obj.get("price"), "lineItem.price").get("value")),
        total=parse_money(obj.get("totalPrice")),
        image_url=image_url,
    )


def parse_cart(data: Any, locales: Sequence[str] = DEFAULT_LOCALES) -> Cart:
    """A commercetools `Cart`."""
    obj = _obj(data, "cart")
    return Cart(
        id=_str(obj, "id"),
        customer_id=_opt_str(obj, "customerId") or "",
        total=parse_money(obj.get("totalPrice")),
        lines=tuple(parse_line_item(item, locales) for item in _list(obj, "lineItems")),
        state=_str(obj, "cartState"),
        last_modified_at=_opt_datetime(obj, "lastModifiedAt"),
    )


def parse_order(data: Any) -> Order:
    """A commercetools `Order` (also the `order` of an `OrderCreated` message)."""
    obj = _obj(data, "order")
    return Order(
        id=_str(obj, "id"),
        customer_id=_opt_str(obj, "customerId"),
        total=parse_money(obj.get("totalPrice")),
        created_at=_datetime(obj, "createdAt"),
        state=_str(obj, "orderState"),
        order_number=_opt_str(obj, "orderNumber"),
        customer_email=_opt_str(obj, "customerEmail"),
        payment_state=_opt_str(obj, "paymentState"),
    )


def parse_order_page(data: Any) -> OrderPage:
    """A paged query reply of orders (`{"limit","offset","count","total","results"}`)."""
    obj = _obj(data, "page")
    orders = tuple(parse_order(item) for item in _list(obj, "results"))
    offset = _int(obj, "offset") if "offset" in obj else 0
    total = _int(obj, "total") if "total" in obj else offset + len(orders)
    return OrderPage(orders=orders, total=total, offset=offset)


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 timestamp as an aware datetime (UTC when the text has no offset)."""
    if not isinstance(value, str):
        raise MalformedCommerceData(f"expected a timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedCommerceData(f"not a timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """A datetime as commercetools writes it: UTC, milliseconds, `Z` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def predicate_string(value: str) -> str:
    """A string literal for a query predicate, with `"` and `\\` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedCommerceData(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedCommerceData(f"{key}: expected a string, got {value!r}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else _str(obj, key)


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedCommerceData(f"{key}: expected an integer, got {value!r}")
    return value


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise MalformedCommerceData(f"{key}: expected a list, got {type(value).__name__}")
    return value


def _datetime(obj: Mapping[str, Any], key: str) -> datetime:
    return parse_datetime(obj.get(key))


def _opt_datetime(obj: Mapping[str, Any], key: str) -> datetime | None:
    return None if obj.get(key) is None else parse_datetime(obj[key])


# --- the client -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # clock time from which a new token is fetched
    expires_at: float  # clock time after which this one is no longer sent


class CommercetoolsClient:
    """Carts and orders of one commercetools project."""

    name = UPSTREAM_NAME

    def __init__(
        self,
        api: Upstream,
        auth: Upstream,
        *,
        project_key: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        locales: Sequence[str] = DEFAULT_LOCALES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.auth = auth
        self.project_key = project_key
        self.locales = tuple(locales)
        self._credentials = (client_id, client_secret)
        self._scope = scope
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    # --- CommercePort ---------------------------------------------------------------------
    async def active_cart(self, customer_id: str) -> Cart | None:
        """The customer's most recently modified active cart, or None."""
        response = await self._get(f"carts/customer-id={_segment(customer_id)}")
        if response.status_code == 404:
            return None
        body = self._ok_json(response)
        return self._parsed(parse_cart, body, self.locales)

    async def active_carts(self, customer_ids: Sequence[str]) -> Mapping[str, Cart | None]:
        """Active carts of several customers: one query per 100 distinct customers."""
        wanted = list(dict.fromkeys(customer_ids))
        found: dict[str, Cart | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), CARTS_PER_QUERY):
            for cart in await self._query_active_carts(wanted[start : start + CARTS_PER_QUERY]):
                if cart.customer_id in found and _newer(cart, found[cart.customer_id]):
                    found[cart.customer_id] = cart
        return found

    async def orders(self, customer_id: str, *, limit: int = 10, offset: int = 0) -> OrderPage:
        """The customer's orders, newest first."""
        where = f"customerId={predicate_string(customer_id)}"
        return await self._query_orders(where, "createdAt desc", limit, offset)

    async def order(self, order_id: str) -> Order | None:
        return await self._order_at(f"orders/{_segment(order_id)}")

    async def order_by_number(self, order_number: str) -> Order | None:
        """An order by its `orderNumber` (not part of the port; for POS and support tools)."""
        return await self._order_at(f"orders/order-number={_segment(order_number)}")

    async def orders_created_since(
        self, since: datetime, *, limit: int = 100, offset: int = 0
    ) -> OrderPage:
        """All orders created at or after `since`, oldest first (offset at most 10000)."""
        where = f"createdAt >= {predicate_string(format_datetime(since))}"
        return await self._query_orders(where, "createdAt asc", limit, offset)

    # --- queries --------------------------------------------------------------------------
    async def _query_active_carts(self, customer_ids: Sequence[str]) -> list[Cart]:
        """Every active cart of these customers (one call unless they have over 500)."""
        ids = ", ".join(predicate_string(customer_id) for customer_id in customer_ids)
        params: dict[str, Any] = {
            "where": f'customerId in ({ids}) and cartState="Active"',
            "sort": "lastModifiedAt desc",
            "limit": MAX_LIMIT,
        }
        carts: list[Cart] = []
        while True:
            body = self._ok_json(await self._get("carts", params))
            page, total = self._parsed(_parse_cart_page, body, self.locales)
            carts.extend(page)
            if not page or total is None or len(carts) >= total:
                return [cart for cart in carts if cart.state == "Active"]
            params["offset"] = len(carts)

    async def _query_orders(self, where: str, sort: str, limit: int, offset: int) -> OrderPage:
        params = {"where": where, "sort": sort, "limit": min(limit, MAX_LIMIT), "offset": offset}
        body = self._ok_json(await self._get("orders", params))
        return self._parsed(parse_order_page, body)

    async def _order_at(self, path: str) -> Order | None:
        response = await self._get(path)
        if response.status_code == 404:
            return None
        body = self._ok_json(response)
        return self._parsed(parse_order, body)

    def _ok_json(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise self.api.unexpected(response)
        return self.api.json(response)

    def _parsed(self, parse: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`parse(...)`, with `MalformedCommerceData` reported as `UpstreamUnavailable`."""
        try:
            return parse(*args, **kwargs)
        except MalformedCommerceData as exc:
            raise UpstreamUnavailable(self.name, f"malformed reply: {exc}") from exc

    # --- HTTP with a bearer token ---------------------------------------------------------
    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET under the project key, with a token; on a 401, one new token and one retry."""
        url = f"{self.project_key}/{path}"
        token = await self._current_token()
        response = await self.api.request("GET", url, params=params, headers=_bearer(token))
        if response.status_code != 401:
            return response
        token = await self._renew_token(rejected=token)
        response = await self.api.request("GET", url, params=params, headers=_bearer(token))
        if response.status_code == 401:
            raise UpstreamUnavailable(self.name, "API rejected a fresh access token (HTTP 401)")
        return response

    async def _current_token(self) -> str:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        async with self._token_lock:
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token.value  # another caller refreshed it while we waited
            try:
                self._token = await self._fetch_token()
            except UpstreamError:
                if token is not None and self._clock() < token.expires_at:
                    return token.value  # an early refresh failed: the old one still works
                raise
            return self._token.value

    async def _renew_token(self, rejected: str) -> str:
        """A token other than `rejected`: fetched once however many callers saw the 401."""
        async with self._token_lock:
            token = self._token
            if token is not None and token.value != rejected and self._clock() < token.refresh_at:
                return token.value
            self._token = None
            self._token = await self._fetch_token()
            return self._token.value

    async def _fetch_token(self) -> _Token:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        try:
            response = await self.auth.request(
                "POST", "oauth/token", data=form, auth=self._credentials, read=True
            )
        except UpstreamError as exc:
            raise _renamed(exc, self.name) from exc
        if response.status_code != 200:
            raise UpstreamUnavailable(
                self.name, f"token request refused (HTTP {response.status_code})"
            )
        try:
            body = _obj(response.json(), "token reply")
            value = _str(body, "access_token")
        except ValueError as exc:  # not JSON, or MalformedCommerceData
            raise UpstreamUnavailable(self.name, "malformed token reply") from exc
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        now = self._clock()
        margin = min(lifetime * REFRESH_MARGIN_FRACTION, REFRESH_MARGIN_MAX)
        return _Token(value=value, refresh_at=now + lifetime - margin, expires_at=now + lifetime)


def _parse_cart_page(data: Any, locales: Sequence[str]) -> tuple[list[Cart], int | None]:
    page = _obj(data, "page")
    carts = [parse_cart(item, locales) for item in _list(page, "results")]
    total = _int(page, "total") if "total" in page else None
    return carts, total


def _newer(cart: Cart, than: Cart | None) -> bool:
    if than is None:
        return True
    if cart.last_modified_at is None or than.last_modified_at is None:
        return False  # keep the first one the API returned (it sorts newest first)
    return cart.last_modified_at > than.last_modified_at


def _segment(value: str) -> str:
    """A value inside one path segment, percent-encoded."""
    return quote(value, safe="")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _renamed(exc: UpstreamError, name: str) -> UpstreamError:
    """The same failure of the auth host, reported under the commerce upstream's name."""
    message = f"auth: {exc.message}"
    if isinstance(exc, UpstreamRateLimited):
        return UpstreamRateLimited(name, message, exc.retry_after)
    return type(exc)(name, message)
