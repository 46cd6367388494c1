"""The answers for a page that does not exist (404) and for a failure inside (500): the
error page inside the layout, in the visitor's language, for a page request; JSON
``{"error", "message"}`` for an /api/ request, as every other refusal of the API.

Static files keep plain answers: a missing stylesheet is no page to show anyone.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from web.auth import error_response, identify
from web.security_headers import STATIC_PREFIX

logger = logging.getLogger(__name__)

PLAIN_500 = "Internal Server Error"


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTPException handler: 404 becomes our page; anything else (405 ...)
    keeps Starlette's plain answer."""
    assert isinstance(exc, HTTPException)
    if exc.status_code != 404 or request.url.path.startswith(STATIC_PREFIX):
        return PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
    await identify(request)  # a logged-in user keeps their navigation on the 404 page
    return error_response(request, 404, "not_found")


async def server_error(scope: Scope, receive: Receive, send: Send) -> None:
    """The 500 answer (an ASGI app, run by SecurityHeadersMiddleware after a failure).
    It draws on as little as it can: the user is whoever the request had been given,
    and if even the page cannot be drawn, the plain text answer goes out."""
    request = Request(scope, receive)
    response: Response
    try:
        response = error_response(request, 500, "internal")
    except Exception:
        logger.exception("the 500 page could not be drawn")
        response = PlainTextResponse(PLAIN_500, 500)
    await response(scope, receive, send)
