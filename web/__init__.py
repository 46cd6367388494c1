"""The web app: JSON API, live WebSocket events, server-rendered pages.

One door: create_app builds the Starlette app from WebServices; every endpoint goes
through ``requires(...)`` (logged in, holding capabilities) or ``public``.
"""

from web.app import create_app
from web.auth import Access, WebUser, access_of, current_user, public, requires
from web.errors import WebError
from web.hub import EventHub, Subscription
from web.openapi import documented
from web.secret import load_or_create_secret
from web.server import WebServer
from web.services import (
    AuditSink,
    PasswordVerifier,
    PermissionLookup,
    SessionStore,
    TokenVerifier,
    WebServices,
    WebSettings,
)
from web.templating import NavItem, Toast, flash, render

__all__ = [
    "Access",
    "AuditSink",
    "EventHub",
    "NavItem",
    "PasswordVerifier",
    "PermissionLookup",
    "SessionStore",
    "Subscription",
    "Toast",
    "TokenVerifier",
    "WebError",
    "WebServer",
    "WebServices",
    "WebSettings",
    "WebUser",
    "access_of",
    "create_app",
    "current_user",
    "documented",
    "flash",
    "load_or_create_secret",
    "public",
    "render",
    "requires",
]
