"""Server-rendered pages: one Jinja2 environment, the context every page shares (user,
language, navigation, CSRF token, toasts) and the data-driven navigation.

A route that saved something says so with ``flash(request, text)`` before it redirects
(or renders): the next page rendered for that browser shows it as a toast."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import jinja2
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse

from web import csrf
from web.i18n import (
    HTML_LANG,
    LANGUAGE_COOKIE,
    LANGUAGE_NAMES,
    LANGUAGES,
    choose_language,
    role_label,
    translate,
)
from web.local_time import format_local

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
FLASH_KEY: Final = "flash"  # the session cookie's list of toasts not shown yet
MAX_FLASHES: Final = 5  # a cookie has room for a few; older ones are dropped
ToastLevel = Literal["success", "info", "warning", "danger"]
LANGUAGE_COOKIE_MAX_AGE_S = 365 * 24 * 3600

environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(["html"]),
    # A misspelt variable is an error, not an empty string on a page.
    undefined=jinja2.StrictUndefined,
)



@jinja2.pass_context
def _local_time(context: jinja2.runtime.Context, value: Any, precision: str = "minute") -> str:
    """{{ entry.at | local_time }} -> 2026-12-07 17:26 in [web] timezone (also
    local_time("second") and local_time("date"))."""
    return format_local(value, context["timezone"], precision)


environment.filters["local_time"] = _local_time


@dataclass(frozen=True)
class NavItem:
    """A navigation link, shown only to users holding ``capability``."""

    path: str
    label_key: str  # a key of web.i18n.MESSAGES
    capability: str


@dataclass(frozen=True)
class Toast:
    """A short message shown in the page's corner, then gone: "已保存"."""

    text: str
    level: ToastLevel = "success"


def flash(request: Request, text: str, level: ToastLevel = "success") -> None:
    """Show ``text`` (already in the page's language) as a toast on the next page this
    browser is shown: after the redirect that follows a saved form, or this request's
    own page."""
    pending = list(request.session.get(FLASH_KEY, []))[-(MAX_FLASHES - 1):]
    request.session[FLASH_KEY] = [*pending, [text, level]]


def _take_flashes(request: Request) -> list[Toast]:
    if "session" not in request.scope:
        return []
    pending = request.session.pop(FLASH_KEY, [])
    return [Toast(text, level) for text, level in pending] if isinstance(pending, list) else []


def current_nav_path(nav: list[NavItem], path: str) -> str | None:
    """The navigation entry the page belongs to: its own, or the longest one it lies
    under (/customers/7 is under 客户)."""
    under = [item.path for item in nav
             if path == item.path or path.startswith(item.path.rstrip("/") + "/")]
    return max(under, key=len, default=None)


def language_of(conn: HTTPConnection) -> str:
    return choose_language(conn.query_params.get("lang"), conn.cookies.get(LANGUAGE_COOKIE))


def visible_nav(conn: HTTPConnection) -> list[NavItem]:
    permissions: frozenset[str] = getattr(conn.state, "permissions", frozenset())
    nav: tuple[NavItem, ...] = conn.app.state.nav
    return [item for item in nav if item.capability in permissions]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page in the visitor's language with the shared context."""
    lang = language_of(request)
    user = getattr(request.state, "user", None)
    nav = visible_nav(request)
    shared = {
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "t": partial(translate, lang),
        "user": user,
        "role_label": role_label(lang, user.role) if user is not None else "",
        "nav": nav,
        "current_nav": current_nav_path(nav, request.url.path),
        "path": request.url.path,
        "status_code": status_code,
        "toasts": _take_flashes(request),
        "csrf_token": csrf.session_token(request.session),
        "timezone": request.app.state.services.settings.timezone,  # for local_time
    }
    html = environment.get_template(template).render({**shared, **(context or {})})
    response = HTMLResponse(html, status_code=status_code)
    remember_language(request, response)
    return response


def remember_language(request: Request, response: HTMLResponse) -> None:
    """``?lang=en`` sticks: later pages come in that language without the parameter."""
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES and chosen != request.cookies.get(LANGUAGE_COOKIE):
        response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=LANGUAGE_COOKIE_MAX_AGE_S,
                            samesite="lax", httponly=True,
                            secure=request.app.state.services.settings.secure_cookies)
