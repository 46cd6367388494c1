"""The JSON API's core: session (login, logout, log out everywhere) and who am I."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from web import csrf
from web.auth import (
    WebUser,
    current_user,
    error_response,
    log_in,
    log_out,
    log_out_everywhere,
    public,
    requires,
)
from web.i18n import role_label
from web.inputs import BadInput, json_object
from web.openapi import documented, openapi_response
from web.templating import language_of

API = "/api/v1"

_USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "username": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "role": {"type": "string"},
        "role_label": {"type": "string"},
        "extension": {"type": ["string", "null"]},
        "permissions": {"type": "array", "items": {"type": "string"}},
    },
}


def user_json(request: Request, user: WebUser, permissions: frozenset[str]) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "role": user.role,
        "role_label": role_label(language_of(request), user.role),
        "extension": user.extension,
        "permissions": sorted(permissions),
    }


@public
@documented(responses={"200": {"description": "The CSRF token (and the user, if any)"}})
async def session_get(request: Request) -> Response:
    """The session's CSRF token, to send as X-CSRF-Token; and the user if logged in."""
    user = current_user(request)
    permissions: frozenset[str] = request.state.permissions
    return JSONResponse({
        "csrf_token": csrf.session_token(request.session),
        "user": user_json(request, user, permissions) if user is not None else None,
    })


@public
@documented(
    request_body={"type": "object", "required": ["username", "password"],
                  "properties": {"username": {"type": "string"},
                                 "password": {"type": "string"}}},
    responses={"200": {"description": "Logged in: the user and a new CSRF token"},
               "400": {"description": "Malformed request"},
               "401": {"description": "Wrong username or password"},
               "429": {"description": "Too many failures; see Retry-After"}},
)
async def session_post(request: Request) -> Response:
    """Log in."""
    try:
        body = await json_object(request)
    except BadInput:
        return error_response(request, 400, "bad_request")
    if not all(
        isinstance(body.get(field), str) for field in ("username", "password")
    ):
        return error_response(request, 400, "bad_request")
    outcome = await log_in(request, body["username"], body["password"])
    if outcome.retry_after_s is not None:
        return error_response(request, 429, "throttled",
                              {"Retry-After": str(outcome.retry_after_s)},
                              seconds=outcome.retry_after_s)
    if outcome.user is None:
        return error_response(request, 401, "bad_credentials")
    permissions = frozenset(
        await request.app.state.services.permissions_of(outcome.user.id))
    return JSONResponse({"user": user_json(request, outcome.user, permissions),
                         "csrf_token": csrf.session_token(request.session)})


@requires()
@documented(responses={"200": {"description": "Logged out; a new CSRF token"}})
async def session_delete(request: Request) -> Response:
    """Log out."""
    await log_out(request)
    return JSONResponse({"csrf_token": csrf.session_token(request.session)})


@requires()
@documented(responses={"200": {"description": "Every session of the user ended, this one "
                                              "too: how many, and a new CSRF token"}})
async def sessions_delete(request: Request) -> Response:
    """Log out everywhere: end every session of the logged-in user (other browsers,
    forgotten computers), this one included."""
    ended = await log_out_everywhere(request)
    return JSONResponse({"ended": ended, "csrf_token": csrf.session_token(request.session)})


@requires()
@documented(responses={"200": {"description": "The user",
                               "content": {"application/json": {"schema": _USER_SCHEMA}}}})
async def me(request: Request) -> Response:
    """The logged-in user: name, role, extension and capabilities."""
    return JSONResponse(user_json(request, request.state.user, request.state.permissions))


@requires()
async def openapi(request: Request) -> Response:
    """This description."""
    return openapi_response(request)


def routes() -> list[BaseRoute]:
    return [
        Route(f"{API}/session", session_get, methods=["GET"]),
        Route(f"{API}/session", session_post, methods=["POST"]),
        Route(f"{API}/session", session_delete, methods=["DELETE"]),
        Route(f"{API}/sessions", sessions_delete, methods=["DELETE"]),
        Route(f"{API}/me", me, methods=["GET"]),
        Route(f"{API}/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    ]
