"""CSRF protection: one random token per session, sent back by every state-changing
request in the X-CSRF-Token header (JSON) or the csrf_token form field (HTML forms).

A cross-site page can make the browser send our cookie but cannot read the token from
our pages, so a request carrying it came from our own pages or an API client that
asked for it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request

HEADER = "x-csrf-token"
FORM_FIELD = "csrf_token"
SESSION_KEY = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def session_token(session: MutableMapping[str, Any]) -> str:
    """The session's token, made on first use."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def rotate(session: MutableMapping[str, Any]) -> str:
    """A new token (at login and logout, so a token seen before does not carry over)."""
    session.pop(SESSION_KEY, None)
    return session_token(session)


async def request_is_trusted(request: Request) -> bool:
    """True for safe methods, and for others that carry the session's token."""
    if request.method in SAFE_METHODS:
        return True
    expected = request.session.get(SESSION_KEY)
    if not isinstance(expected, str):
        return False
    sent = request.headers.get(HEADER)
    content_type = request.headers.get("content-type", "")
    if sent is None and content_type.startswith(_FORM_TYPES):
        # The parsed form is cached on the request: the endpoint reads it again for free.
        field = (await request.form()).get(FORM_FIELD)
        sent = field if isinstance(field, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())
