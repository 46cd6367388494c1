"""The API's OpenAPI 3.1 description, built from the routes themselves: each endpoint's
docstring (summary), its ``requires`` capabilities and what ``documented`` adds."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

API_PREFIX = "/api/v1"
OPENAPI_ATTRIBUTE = "openapi_extra"
API_TITLE = "Call center API"
API_VERSION = "1"

F = TypeVar("F", bound=Callable[..., Any])

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_REFUSALS = {
    "401": {"description": "Not logged in, or an unknown or revoked token"},
    "403": {"description": "Lacking a capability, or (with the cookie) no valid "
                           "X-CSRF-Token"},
}


def documented(
    *, request_body: dict[str, Any] | None = None, responses: dict[str, Any] | None = None
) -> Callable[[F], F]:
    """Attach a JSON request body schema and response descriptions to an endpoint."""

    def decorate(endpoint: F) -> F:
        setattr(endpoint, OPENAPI_ATTRIBUTE,
                {"request_body": request_body, "responses": responses or {}})
        return endpoint

    return decorate


def _operation(endpoint: Any) -> dict[str, Any]:
    from web.auth import access_of  # web.auth imports templating, not this module's users

    doc = inspect.getdoc(endpoint) or ""
    summary, _, description = doc.partition("\n")
    extra = getattr(endpoint, OPENAPI_ATTRIBUTE, {"request_body": None, "responses": {}})
    access = access_of(endpoint)
    operation: dict[str, Any] = {"summary": summary.strip()}
    if description.strip():
        operation["description"] = description.strip()
    responses: dict[str, Any] = {"200": {"description": "OK"}}
    if access is not None and not access.public:
        operation["x-capabilities"] = sorted(access.capabilities)
        operation["security"] = [{"session": []}, {"bearer": []}]
        responses.update(_REFUSALS)
    responses.update(extra["responses"])
    for status, response in responses.items():
        if status >= "400" and "content" not in response:
            response["content"] = {"application/json": {"schema": _ERROR_SCHEMA}}
    operation["responses"] = responses
    if extra["request_body"] is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": extra["request_body"]}},
        }
    return operation


_CONVERTER = re.compile(r":\w+}")  # /customers/{id:int} -> /customers/{id}


def _collect(routes: Iterable[BaseRoute], prefix: str, paths: dict[str, dict[str, Any]]) -> None:
    for route in routes:
        if isinstance(route, Mount):
            _collect(route.routes, prefix + route.path, paths)
            continue
        path = _CONVERTER.sub("}", prefix + getattr(route, "path", ""))
        if not (isinstance(route, Route) and route.include_in_schema
                and path.startswith(API_PREFIX)):
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                paths.setdefault(path, {})[method.lower()] = _operation(route.endpoint)


def openapi_schema(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    _collect(routes, "", paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": API_TITLE, "version": API_VERSION},
        "paths": paths,
        "components": {"securitySchemes": {"session": {
            "type": "apiKey", "in": "cookie", "name": "callcenter_session",
            "description": "Log in with POST /api/v1/session; state-changing requests "
                           "also send the session's X-CSRF-Token header",
        }, "bearer": {
            "type": "http", "scheme": "bearer",
            "description": "An API token from `callcenter token create --user NAME`, acting "
                           "with that user's permissions; no CSRF token needed",
        }}},
    }


def openapi_response(request: Request) -> JSONResponse:
    return JSONResponse(openapi_schema(request.app.routes))
