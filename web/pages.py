"""Server-rendered pages: login, home, the agent desktop shell, and health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from web.auth import (
    current_user,
    error_response,
    log_in,
    log_out,
    log_out_everywhere,
    public,
    requires,
)
from web.i18n import translate
from web.templating import NavItem, flash, language_of, render, visible_nav

DESKTOP = "calls.handle"  # the agent desktop is for those who take calls

NAV: tuple[NavItem, ...] = (NavItem("/desktop", "nav.desktop", DESKTOP),)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: only a path on this site (never //evil or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@public
async def health(request: Request) -> Response:
    """Liveness for load balancers and supervisors."""
    return JSONResponse({"status": "ok"})


@public
async def login_page(request: Request) -> Response:
    if current_user(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "login.html", {"error": None, "username": "",
                                          "next": safe_next(request.query_params.get("next"))})


@public
async def login_form(request: Request) -> Response:
    form = await request.form()
    username, password, target = (form.get("username"), form.get("password"),
                                  form.get("next"))
    if not isinstance(username, str) or not isinstance(password, str):
        return error_response(request, 400, "bad_request")
    next_path = safe_next(target if isinstance(target, str) else None)
    outcome = await log_in(request, username, password)
    if outcome.user is not None:
        return RedirectResponse(next_path, status_code=303)
    if outcome.retry_after_s is not None:
        key, params, status, headers = ("login.throttled", {"seconds": outcome.retry_after_s},
                                        429, {"Retry-After": str(outcome.retry_after_s)})
    else:
        key, params, status, headers = "login.failed", {}, 401, {}
    response = render(request, "login.html",
                      {"error": (key, params), "username": username, "next": next_path},
                      status_code=status)
    response.headers.update(headers)
    return response


@requires()
async def logout_form(request: Request) -> Response:
    await log_out(request)
    flash(request, translate(language_of(request), "logout.done"), "info")
    return RedirectResponse("/login", status_code=303)


@requires()
async def logout_everywhere_form(request: Request) -> Response:
    ended = await log_out_everywhere(request)
    flash(request, translate(language_of(request), "logout.everywhere_done", sessions=ended),
          "info")
    return RedirectResponse("/login", status_code=303)


@requires()
async def home(request: Request) -> Response:
    """The first page the user may see, or a note that there is none."""
    pages = visible_nav(request)
    if pages:
        return RedirectResponse(pages[0].path, status_code=303)
    return render(request, "home.html")


@requires(DESKTOP)
async def desktop(request: Request) -> Response:
    return render(request, "desktop.html")


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_form, methods=["POST"]),
        Route("/logout", logout_form, methods=["POST"]),
        Route("/logout/everywhere", logout_everywhere_form, methods=["POST"]),
        Route("/desktop", desktop, methods=["GET"]),
    ]
