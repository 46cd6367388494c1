"""Every route checks access: anonymous callers are refused everywhere but login, health
and static files; a user lacking a capability gets 403; a route without a rule cannot
even be added. Also the pages' navigation and the OpenAPI description."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from tests.web.conftest import TestClient, World, login
from web import NavItem, WebError, access_of, public, requires

# (method, path) that anonymous visitors may use; everything else must refuse them.
PUBLIC = {("GET", "/health"), ("GET", "/login"), ("POST", "/login"),
          ("GET", "/api/v1/session"), ("POST", "/api/v1/session")}


@requires("customers.edit")
async def edit_customer(request: Request) -> Response:
    """Change a customer (stand-in for a later admin route)."""
    return PlainTextResponse("edited")


@requires("users.manage")
async def users_page(request: Request) -> Response:
    return PlainTextResponse("users")


def full_app(world: World) -> Starlette:
    """The core app plus routes shaped like the later admin pages and API."""
    return world.app(
        routes=[Route("/api/v1/customers/{id:int}", edit_customer, methods=["PUT"]),
                Route("/admin/users", users_page, methods=["GET"])],
        nav=[NavItem("/admin/users", "nav.desktop", "users.manage")],
    )


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "7", path)


def every_endpoint(app: Starlette) -> list[tuple[str, str, object]]:
    found: list[tuple[str, str, object]] = []
    for route in app.routes:
        if isinstance(route, Route):
            found += [(m, route.path, route.endpoint) for m in sorted(route.methods or ())
                      if m != "HEAD"]
        elif isinstance(route, WebSocketRoute):
            found.append(("WS", route.path, route.endpoint))
        else:
            assert isinstance(route, Mount), route  # static files: /static, /static/vendor/*
            assert route.path.startswith("/static") and isinstance(route.app, StaticFiles)
    return found


def test_every_route_refuses_anonymous_callers(world: World) -> None:
    app = full_app(world)
    endpoints = every_endpoint(app)
    assert len(endpoints) >= 12  # the enumeration saw the app, not an empty list
    with TestClient(app, follow_redirects=False) as client:
        for method, path, endpoint in endpoints:
            access = access_of(endpoint)
            assert access is not None, path
            url = concrete(path)
            if method == "WS":
                with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
                        url, headers={"origin": "http://testserver"}):
                    pass
                assert refused.value.code == 1008
                continue
            response = client.request(method, url, headers={"X-CSRF-Token": "whatever"})
            if (method, path) in PUBLIC:
                assert access.public
                assert response.status_code in (200, 400, 403), (method, path)
            elif path.startswith("/api/"):
                assert response.status_code == 401, (method, path)
                assert response.json()["error"] == "unauthenticated"
            else:
                assert response.status_code == 303, (method, path)
                assert response.headers["location"].startswith("/login?next=")


def test_every_capability_route_refuses_a_user_without_it(world: World) -> None:
    world.permissions.by_user[1] = frozenset()  # logged in, may do nothing
    app = full_app(world)
    with TestClient(app, follow_redirects=False) as client:
        token = login(client, "zhangwei")
        checked = 0
        for method, path, endpoint in every_endpoint(app):
            access = access_of(endpoint)
            assert access is not None
            if not access.capabilities:
                continue
            checked += 1
            response = client.request(method, concrete(path), headers={"X-CSRF-Token": token})
            assert response.status_code == 403, (method, path)
        assert checked >= 3


def test_state_changing_routes_refuse_a_missing_csrf_token(world: World) -> None:
    world.permissions.by_user[1] = frozenset({"customers.edit", "calls.handle"})
    app = full_app(world)
    with TestClient(app, follow_redirects=False) as client:
        token = login(client, "zhangwei")
        assert client.put("/api/v1/customers/7", headers={"X-CSRF-Token": token}).text == (
            "edited")
        for method, path, _ in every_endpoint(app):
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                response = client.request(method, concrete(path))
                assert response.status_code == 403, (method, path)


def test_a_route_without_an_access_rule_cannot_be_added(world: World) -> None:
    async def forgot(request: Request) -> Response:
        return PlainTextResponse("open")

    with pytest.raises(WebError) as error:
        world.app(routes=[Route("/api/v1/forgotten", forgot)])
    assert str(error.value) == ("route /api/v1/forgotten has no access rule: wrap its endpoint "
                                "in web.requires(...) or web.public")
    with pytest.raises(WebError):
        world.app(routes=[Mount("/admin", routes=[Route("/x", forgot)])])
    world.app(routes=[Mount("/admin", routes=[Route("/x", public(forgot))])])


def test_me_describes_the_user_in_their_language(client: TestClient) -> None:
    login(client, "zhangwei")
    me = client.get("/api/v1/me").json()
    assert (me["role"], me["role_label"]) == ("agent", "普通座席")
    assert me["permissions"] == ["calls.handle", "customers.view"]
    assert client.get("/api/v1/me?lang=en").json()["role_label"] == "Agent"


def test_permissions_are_read_fresh_on_every_request(client: TestClient,
                                                     world: World) -> None:
    login(client, "zhangwei")
    assert client.get("/desktop").status_code == 200
    world.permissions.by_user[1] = frozenset()  # revoked by a manager meanwhile
    assert client.get("/desktop").status_code == 403
    assert client.get("/api/v1/me").json()["permissions"] == []


def test_navigation_shows_only_what_the_user_may_open(world: World) -> None:
    app = full_app(world)
    world.permissions.by_user[2] = frozenset({"users.manage", "calls.handle"})
    with TestClient(app, follow_redirects=False) as client:
        login(client, "zhangwei")
        desktop = client.get("/desktop").text
        assert 'href="/desktop"' in desktop
        assert 'href="/admin/users"' not in desktop
        assert client.get("/admin/users").status_code == 403
    with TestClient(app, follow_redirects=False) as client:
        login(client, "admin")
        desktop = client.get("/desktop").text
        assert 'href="/desktop"' in desktop and 'href="/admin/users"' in desktop


def test_home_goes_to_the_first_permitted_page_or_says_there_is_none(world: World) -> None:
    app = full_app(world)
    with TestClient(app, follow_redirects=False) as client:
        login(client, "admin")  # users.manage only
        assert client.get("/").headers["location"] == "/admin/users"
    world.permissions.by_user[2] = frozenset()
    with TestClient(app, follow_redirects=False) as client:
        login(client, "admin")
        page = client.get("/")
        assert page.status_code == 200
        assert "您的账号暂无可用页面，请联系系统管理员" in page.text


def test_anonymous_page_visit_redirects_to_login_and_back(client: TestClient) -> None:
    response = client.get("/desktop?tab=calls")
    assert response.headers["location"] == "/login?next=%2Fdesktop%3Ftab%3Dcalls"
    login_page = client.get(response.headers["location"])
    assert 'name="next" value="/desktop?tab=calls"' in login_page.text


def test_openapi_describes_the_api_for_logged_in_users(client: TestClient) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 401
    login(client, "zhangwei")
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"] == "3.1.0"
    paths = schema["paths"]
    assert set(paths) == {"/api/v1/session", "/api/v1/sessions", "/api/v1/me"}
    assert set(paths["/api/v1/session"]) == {"get", "post", "delete"}
    assert set(paths["/api/v1/sessions"]) == {"delete"}
    assert paths["/api/v1/session"]["post"]["summary"] == "Log in."
    assert paths["/api/v1/session"]["post"]["requestBody"]["content"]["application/json"][
        "schema"]["required"] == ["username", "password"]
    assert "429" in paths["/api/v1/session"]["post"]["responses"]
    me = paths["/api/v1/me"]["get"]
    assert me["x-capabilities"] == [] and me["security"] == [{"session": []}, {"bearer": []}]
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert set(me["responses"]) == {"200", "401", "403"}


def test_openapi_lists_capabilities_of_added_routes(world: World) -> None:
    with TestClient(full_app(world)) as client:
        login(client, "zhangwei")
        put = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/customers/{id}"]["put"]
        assert put["x-capabilities"] == ["customers.edit"]
        assert put["summary"] == "Change a customer (stand-in for a later admin route)."
