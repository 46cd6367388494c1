"""Every answer carries the security headers: each route of the whole web UI, asked by
an anonymous caller and by an administrator, static files, refusals, redirects, a body
too large, no such page, and the 500 of a failure inside; and the templates keep to
what the Content-Security-Policy allows (no inline script, handler or style)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.web.conftest import TestClient, World
from tests.web.test_access import concrete, every_endpoint
from tests.web.test_customers import Stack, add_customer
from tests.web.test_customers import stack as stack_fixture
from web import public
from web.security_headers import content_security_policy
from web.templating import TEMPLATES_DIR

stack = stack_fixture  # the whole web UI on a real database

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self' ws://testserver wss://testserver; object-src 'none'; "
          "base-uri 'self'; frame-ancestors 'none'; form-action 'self'")
ALWAYS = {"content-security-policy": POLICY, "x-frame-options": "DENY",
          "x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


def check_headers(response: httpx.Response, *, cacheable: bool = False) -> None:
    where = (response.request.method, str(response.request.url), response.status_code)
    for name, value in ALWAYS.items():
        assert response.headers.get(name) == value, (name, where)
    if cacheable:
        assert "no-store" not in response.headers.get("cache-control", ""), where
    else:
        assert response.headers.get("cache-control") == "no-store", where


LOGOUTS = [("POST", "/logout"), ("DELETE", "/api/v1/session"),
           ("POST", "/logout/everywhere"), ("DELETE", "/api/v1/sessions")]


def walk(stack: Stack, token: str) -> list[int]:
    """Ask every route once, logging out last; their statuses."""
    statuses = []
    endpoints = every_endpoint(stack.client.app)  # type: ignore[arg-type]
    endpoints.sort(key=lambda endpoint: endpoint[:2] in LOGOUTS)
    for method, path, _ in endpoints:
        if method == "WS":
            continue
        url = concrete(path).replace("{capability}", "calls.listen")
        if path.startswith("/api/"):
            response = stack.client.request(method, url, json={},
                                            headers={"X-CSRF-Token": token})
        else:
            response = stack.client.request(method, url, data={"csrf_token": token})
        check_headers(response)
        statuses.append(response.status_code)
    return statuses


def test_every_route_answers_with_the_headers(stack: Stack) -> None:
    add_customer(stack, "王小明", "13800138000")  # customer 7 does not exist: 404s too
    anonymous = walk(stack, "no token")
    assert {303, 401} <= set(anonymous)
    token = stack.login_as("admin")
    as_admin = walk(stack, token)
    assert {200, 303, 400, 404} <= set(as_admin), as_admin
    assert len(as_admin) >= 45  # the walk saw the whole UI
    stack.client.cookies.clear()
    check_headers(stack.client.post("/api/v1/users", json={}))  # CSRF refusal, 403


def test_static_files_may_be_cached_and_carry_the_rest(client: TestClient) -> None:
    for path in ("/static/app.js", "/static/style.css", "/static/import.js"):
        response = client.get(path)
        assert response.status_code == 200
        check_headers(response, cacheable=True)
    check_headers(client.get("/static/missing.js"), cacheable=True)


def test_errors_of_the_app_itself_carry_the_headers(client: TestClient) -> None:
    check_headers(client.get("/no/such/page"))
    too_large = client.post("/api/v1/session", content=b"x",
                            headers={"Content-Length": str(10**9)})
    assert too_large.status_code == 413
    check_headers(too_large)
    check_headers(client.get("/health"))


def test_a_failure_inside_is_a_500_with_the_headers(world: World) -> None:
    @public
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = world.app(routes=[Route("/broken", broken)])
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken")
        assert response.status_code == 500
        assert 'id="error"' in response.text  # the 500 page (tests/web/test_error_pages.py)
        check_headers(response)
    with TestClient(app) as client, pytest.raises(RuntimeError, match="a bug"):
        client.get("/broken")  # still raised, for the server to log


@pytest.mark.parametrize(("host", "sockets"), [
    ("callcenter.example:8080", " ws://callcenter.example:8080 wss://callcenter.example:8080"),
    ("[::1]:8080", " ws://[::1]:8080 wss://[::1]:8080"),
    ("10.0.0.5", " ws://10.0.0.5 wss://10.0.0.5"),
    ("evil; script-src *", ""),
    ("a b", ""),
    (None, ""),
])
def test_the_websocket_origin_is_named_only_for_a_plain_host(host: str | None,
                                                             sockets: str) -> None:
    policy = content_security_policy(host)
    assert f"connect-src 'self'{sockets}; object-src" in policy
    assert policy.count("script-src") == 1


_INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE), "inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "event handler attribute"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "style attribute"),
    (re.compile(r"<style", re.IGNORECASE), "<style> element"),
    (re.compile(r"javascript:", re.IGNORECASE), "javascript: URL"),
]


@pytest.mark.parametrize("template", sorted(TEMPLATES_DIR.rglob("*.html")),
                         ids=lambda path: str(path.relative_to(TEMPLATES_DIR)))
def test_templates_have_nothing_the_policy_refuses(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    found = [what for pattern, what in _INLINE if pattern.search(text)]
    assert found == [], f"{template.name}: move it to web/static (CSP: {POLICY})"
