"""Security headers on every HTTP response: pages, API answers, static files, refusals,
redirects, and the 500 of a failure inside.

The Content-Security-Policy allows scripts, styles and connections from this origin
only: no inline script or style (the templates have none, and must not get any), no
plugins, no framing, forms post only here. Images may also be ``data:`` URIs: Bootstrap's
stylesheet draws its small icons (a select's arrow, a checked box, the menu button) as
SVG data URIs, and an image cannot run script. ``connect-src`` also names the page's own
ws:// and wss:// origin for the live WebSocket, for browsers that do not yet read 'self'
as covering it (CSP Level 3 does). Pages and API answers are never stored by a cache
(they carry customer data and CSRF tokens); static files may be.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_PREFIX: Final = "/static/"
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{sockets}; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# A Host header fit to be written into the policy: a name or address and a port.
_HOST: Final = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

HEADERS: Final = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def content_security_policy(host: str | None) -> str:
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return _CSP.format(sockets=sockets)


async def _plain_failure(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("Internal Server Error", 500)(scope, receive, send)


class SecurityHeadersMiddleware:
    """``failure`` answers a request whose handling raised before it answered (the app's
    500 page); it gets the same headers."""

    def __init__(self, app: ASGIApp, failure: ASGIApp = _plain_failure) -> None:
        self.app = app
        self.failure = failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        host_header = dict(scope["headers"]).get(b"host")
        policy = content_security_policy(
            host_header.decode("latin-1") if host_header is not None else None)
        cacheable = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", policy)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's ServerErrorMiddleware sits outside every middleware of ours
            # and would answer 500 without our headers; answered here, it only re-raises.
            if not started:
                await self.failure(scope, receive, send_with_headers)
            raise
