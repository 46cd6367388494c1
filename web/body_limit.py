"""A cap on request bodies, before anything reads them.

The CSRF check reads a form post's body to find its token, and Starlette spools
uploaded files to disk as it parses: without a cap in front, anyone could fill the
disk with one request. A body that declares more than the cap is refused with 413
before a byte of it is read; a body without a declared length (chunked) is refused with
411 Length Required, since browsers and scripts always declare it for forms and uploads
and the server then enforces the declared length itself."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# The largest legitimate body: a customer sheet upload (20 MiB) plus multipart framing.
MAX_BODY_BYTES = 21 * 1024 * 1024


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length")
            if declared is None and b"chunked" in headers.get(b"transfer-encoding", b""):
                await PlainTextResponse("a request body needs a Content-Length", 411)(
                    scope, receive, send)
                return
            if declared is not None and (not declared.isdigit()
                                         or int(declared) > self.max_body_bytes):
                limit_mb = self.max_body_bytes // (1024 * 1024)
                await PlainTextResponse(f"request body larger than {limit_mb} MiB", 413)(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)
