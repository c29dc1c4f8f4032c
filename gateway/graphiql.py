"""GraphiQL served by the gateway itself: offline, no CDN, under a strict CSP.

The built GraphiQL, its explorer plugin and React 18 are vendored from the npm registry into
``gateway/static/graphiql/`` (see ``scripts/vendor-graphiql.sh`` and ``VERSIONS.md`` there).
The page has no inline script or style: ``init.js`` (next to the vendored files) reads the
endpoints from ``data-*`` attributes of ``#graphiql`` and renders GraphiQL.

The app factory wires it like this::

    Mount(STATIC_PREFIX, app=static_app(), name="graphiql-static")

    class PatronGraphQL(strawberry.asgi.GraphQL):
        async def render_graphql_ide(self, request: Request) -> Response:
            return HTMLResponse(graphiql_html(), headers=GRAPHIQL_HEADERS)

Strawberry only calls ``render_graphql_ide`` when ``graphql_ide`` is truthy, so construct the
view with ``graphql_ide="graphiql"`` when ``ENV=dev`` and ``graphql_ide=None`` in prod.
"""

from __future__ import annotations

import base64
import hashlib
import html
from pathlib import Path

from starlette.staticfiles import StaticFiles

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "GRAPHIQL_HEADERS",
    "SCROLL_LOCK_CSS",
    "STATIC_DIR",
    "STATIC_PREFIX",
    "content_security_policy",
    "graphiql_html",
    "static_app",
]

STATIC_PREFIX = "/static/graphiql"
STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"

# The one <style> element GraphiQL creates: Radix dialogs and menus (settings, shortcuts,
# operation picker) lock page scrolling with react-remove-scroll-bar, which injects this text.
# Its numbers are the measured scroll-bar gap and <body> margins; init.js gives the page no
# scroll bar and no margins, so they are always 0 and the text is fixed. After re-vendoring,
# the browser test opens the dialogs and fails on a CSP violation if this text has changed.
SCROLL_LOCK_CSS = (
    "\n"
    "  .with-scroll-bars-hidden {\n"
    "   overflow: hidden !important;\n"
    "   padding-right: 0px !important;\n"
    "  }\n"
    "  body {\n"
    "    overflow: hidden !important;\n"
    "    overscroll-behavior: contain;\n"
    "    position: relative !important;\n"
    "    padding-left: 0px;\n"
    "    padding-top: 0px;\n"
    "    padding-right: 0px;\n"
    "    margin-left:0;\n"
    "    margin-top:0;\n"
    "    margin-right: 0px !important;\n"
    "    \n"
    "  }\n"
    "  \n"
    "  .right-scroll-bar-position {\n"
    "    right: 0px !important;\n"
    "  }\n"
    "  \n"
    "  .width-before-scroll-bar {\n"
    "    margin-right: 0px !important;\n"
    "  }\n"
    "  \n"
    "  .right-scroll-bar-position .right-scroll-bar-position {\n"
    "    right: 0 !important;\n"
    "  }\n"
    "  \n"
    "  .width-before-scroll-bar .width-before-scroll-bar {\n"
    "    margin-right: 0 !important;\n"
    "  }\n"
    "  \n"
    "  body {\n"
    "    --removed-body-scroll-bar-size: 0px;\n"
    "  }\n"
)
SCROLL_LOCK_CSS_HASH = (
    "sha256-" + base64.b64encode(hashlib.sha256(SCROLL_LOCK_CSS.encode()).digest()).decode()
)

# Everything from the gateway's own origin. Found by running the page in Chromium with a
# query, a subscription, the explorer and the dialogs (tests/graphql/test_graphiql_browser.py):
# - style-src: stylesheets from 'self', plus the hash of SCROLL_LOCK_CSS. Everything else is
#   styled through the CSSOM (element.style), which CSP does not govern; no style="" in HTML.
# - font-src needs data: because graphiql.min.css embeds its fonts as data: URIs.
# - img-src data: is for the page's empty favicon (no /favicon.ico request).
# - connect-src 'self' covers ws:/wss: to the same host and port (CSP Level 3, which
#   Chromium, Firefox and Safari implement); content_security_policy(host) spells the ws
#   origins out for clients that predate that rule.
_DIRECTIVES: tuple[tuple[str, str], ...] = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", f"'self' '{SCROLL_LOCK_CSS_HASH}'"),
    ("connect-src", "'self'"),
    ("img-src", "'self' data:"),
    ("font-src", "'self' data:"),
    ("object-src", "'none'"),
    ("frame-ancestors", "'none'"),
    ("base-uri", "'none'"),
    ("form-action", "'self'"),
)

CONTENT_SECURITY_POLICY = "; ".join(f"{name} {value}" for name, value in _DIRECTIVES)

# Headers for the GraphiQL page response.
GRAPHIQL_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


def content_security_policy(host: str | None = None) -> str:
    """The policy, with ``ws://host wss://host`` added to connect-src when ``host`` is given.

    ``host`` is the request's ``Host`` header (``name[:port]``); anything that is not a
    plain host name, IPv4/IPv6 address and port is ignored rather than echoed into a header.
    """
    if not host or len(host) > 255 or not set(host) <= _HOST_CHARS:
        return CONTENT_SECURITY_POLICY
    return "; ".join(
        f"{name} {value} ws://{host} wss://{host}" if name == "connect-src" else f"{name} {value}"
        for name, value in _DIRECTIVES
    )


_STYLESHEETS = ("graphiql.min.css", "plugin-explorer.css")
_SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "init.js",
)


def graphiql_html(endpoint: str = "/graphql", static_prefix: str = STATIC_PREFIX) -> str:
    """The full GraphiQL page for ``endpoint`` (HTTP, and WebSocket at the same path).

    Assets are loaded from ``static_prefix`` (where ``static_app()`` is mounted).
    """
    prefix = static_prefix.rstrip("/")

    def attr(value: str) -> str:
        return html.escape(value, quote=True)

    links = "\n".join(
        f'    <link rel="stylesheet" href="{attr(f"{prefix}/{name}")}">' for name in _STYLESHEETS
    )
    scripts = "\n".join(
        f'    <script src="{attr(f"{prefix}/{name}")}" defer></script>' for name in _SCRIPTS
    )
    root = (
        f'<div id="graphiql" data-endpoint="{attr(endpoint)}"'
        f' data-subscription-endpoint="{attr(endpoint)}">Loading GraphiQL…</div>'
    )
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="no-referrer">
    <title>Patron · GraphiQL</title>
    <link rel="icon" href="data:,">
{links}
{scripts}
  </head>
  <body>
    {root}
    <noscript>GraphiQL needs JavaScript.</noscript>
  </body>
</html>
"""


def static_app() -> StaticFiles:
    """The vendored GraphiQL assets, to mount at ``STATIC_PREFIX``."""
    return StaticFiles(directory=STATIC_DIR, check_dir=True)
