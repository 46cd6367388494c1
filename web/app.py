"""create_app: the Starlette application, from the services its routes need."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from web import api, error_pages, pages, ws
from web.auth import access_of
from web.body_limit import BodyLimitMiddleware
from web.errors import WebError
from web.security_headers import SecurityHeadersMiddleware
from web.services import WebServices
from web.templating import NavItem
from web.throttle import LoginThrottle
from web.vendor import vendor_mounts

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "callcenter_session"


def create_app(
    services: WebServices,
    *,
    routes: Sequence[BaseRoute] = (),
    nav: Sequence[NavItem] = (),
) -> Starlette:
    """The web app. ``routes`` and ``nav`` add pages and API endpoints (admin pages and
    later features) to the core ones; every endpoint must be wrapped in
    ``web.requires(...)`` or ``web.public``, or this raises WebError."""
    all_routes: list[BaseRoute] = [
        *pages.routes(),
        *api.routes(),
        *ws.routes(),
        *routes,
        *vendor_mounts(),  # before /static, which would otherwise answer their paths
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    check_access_rules(all_routes)
    settings = services.settings
    app = Starlette(
        routes=all_routes,
        middleware=[
            # Outermost: on every answer, the 500 page of a failure inside included.
            Middleware(SecurityHeadersMiddleware, failure=error_pages.server_error),
            Middleware(BodyLimitMiddleware),
            Middleware(
                SessionMiddleware,
                secret_key=services.secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=settings.session_max_age_s,
                same_site="lax",
                https_only=settings.secure_cookies,
            )
        ],
        exception_handlers={HTTPException: error_pages.http_error},
    )
    app.state.services = services
    app.state.nav = (*pages.NAV, *nav)
    app.state.throttle = LoginThrottle(
        settings.login_max_failures, settings.login_window_s,
        address_max_failures=settings.login_address_max_failures,
        user_delay_s=settings.login_user_delay_s)
    return app


def check_access_rules(routes: Iterable[BaseRoute], prefix: str = "") -> None:
    for route in routes:
        if isinstance(route, Route | WebSocketRoute):
            if access_of(route.endpoint) is None:
                raise WebError(
                    f"route {prefix}{route.path} has no access rule: wrap its endpoint in "
                    "web.requires(...) or web.public"
                )
        elif isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                continue  # stylesheets and scripts: public by nature
            check_access_rules(route.routes, prefix + route.path)
        else:
            raise WebError(f"cannot check the access rule of {route!r}")
