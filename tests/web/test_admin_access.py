"""The admin pages and API on a real (SQLite) database: who may open what.

Also the ``site`` fixture the other test_admin_* files use: the core app with the admin
routes, real apps services, and one user per role (username = the role's value). The
app runs on the TestClient's event loop, so the database is only ever touched from
there (``site.run``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from starlette.routing import Route

from apps import ApiTokenService, Database, Role, UserService, WebSessionStore, upgrade_database
from apps.agent_groups import GroupService
from apps.audit import AuditEntry, AuditLog
from apps.permissions import ROLE_DEFAULTS, PermissionService
from apps.queues import QueueService
from tests.web.conftest import SECRET, FakeClock, TestClient, csrf_token
from web import WebServices, access_of, create_app
from web import admin as web_admin
from web.admin_common import AdminServices

PASSWORD = "correct horse"
REALM = "callcenter.test"
T = TypeVar("T")


class SteppingClock:
    """Wall-clock for the services: one second later at every reading, so audit entries
    have a strict order."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class Site:
    client: TestClient
    admin: AdminServices
    ids: dict[str, int]  # username -> user id
    # The extensions the stand-in registrar holds bindings for (the switch's is real).
    registered: set[str] = field(default_factory=set)
    tokens: ApiTokenService | None = None  # the app's, for bearer requests

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the app's event loop (where the database lives)."""
        portal = self.client.portal
        assert portal is not None, "only inside the TestClient's with block"
        return portal.call(make)

    def login(self, username: str, password: str = PASSWORD) -> str:
        """A fresh session as ``username``; returns its CSRF token."""
        self.client.cookies.clear()
        response = self.client.post(
            "/api/v1/session", json={"username": username, "password": password},
            headers={"X-CSRF-Token": csrf_token(self.client)})
        assert response.status_code == 200, response.text
        token = response.json()["csrf_token"]
        assert isinstance(token, str)
        return token

    def audit(self, action: str | None = None) -> list[AuditEntry]:
        return self.run(lambda: self.admin.audit.recent(1000, action=action))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path / 'callcenter.db'}"
    db = Database.__new__(Database)  # replaced on the app's loop below
    audit = AuditLog(db, clock=SteppingClock())
    users = UserService(db, REALM, clock=SteppingClock(),
                        password_hasher=PasswordHasher(time_cost=1, memory_cost=1024,
                                                       parallelism=1))
    registered: set[str] = set()
    admin = AdminServices(users=users, groups=GroupService(db, audit),
                          queues=QueueService(db, audit),
                          permissions=PermissionService(db, audit), audit=audit,
                          registered_extensions=lambda: frozenset(registered))
    sessions = WebSessionStore(db, idle_timeout_s=3600, clock=SteppingClock())
    tokens = ApiTokenService(db, audit, clock=SteppingClock())
    services = WebServices(users=users, sessions=sessions, tokens=tokens,
                           permissions_of=admin.permissions.effective,
                           audit=audit, secret_key=SECRET, clock=FakeClock())
    app = create_app(services, routes=web_admin.routes(admin), nav=web_admin.NAV)
    with TestClient(app, follow_redirects=False) as client:
        site = Site(client, admin, {}, registered, tokens)

        async def start() -> None:
            await upgrade_database(url)
            connected = await Database.connect(url)
            db.__dict__.update(connected.__dict__)
            for role in Role:
                record = await users.add_user(role.value, PASSWORD, role=role,
                                              name=f"{role.value} name")
                site.ids[role.value] = record.id

        site.run(start)
        yield site
        site.run(db.close)


def endpoints() -> list[tuple[str, str, frozenset[str]]]:
    """(method, path, capabilities) of every admin route."""
    found = []
    for route in web_admin.routes(None):  # type: ignore[arg-type]
        assert isinstance(route, Route)
        access = access_of(route.endpoint)
        assert access is not None and not access.public, route.path
        found += [(method, route.path, access.capabilities)
                  for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def concrete(path: str) -> str:
    """A path with ids no row has and a real capability name."""
    path = re.sub(r"\{capability\}", "customers.import", re.sub(r"\{\w+:id\}", "999999", path))
    return path.replace("{name:str}", "no-such-queue")


ENDPOINTS = endpoints()


def expected_capability(path: str) -> str:
    if "/permissions" in path:
        return "permissions.manage"
    for word, capability in (("users", "users.manage"), ("groups", "groups.manage"),
                             ("queues", "queues.manage"), ("audit", "audit.view")):
        if path.startswith((f"/admin/{word}", f"/api/v1/{word}")):
            return capability
    raise AssertionError(f"unexpected admin path {path}")


def test_every_admin_route_needs_its_areas_capability() -> None:
    assert len(ENDPOINTS) == 44
    for method, path, capabilities in ENDPOINTS:
        assert capabilities == {expected_capability(path)}, (method, path)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_exactly_what_its_defaults_allow(site: Site, role: Role) -> None:
    token = site.login(role.value)
    wrong = []
    for method, path, capabilities in ENDPOINTS:
        response = site.client.request(method, concrete(path), json={},
                                       headers={"X-CSRF-Token": token})
        if not capabilities <= ROLE_DEFAULTS[role]:
            expected = {403}
        elif method == "GET" and "{" not in path:
            expected = {200}
        else:
            # Past the gate: an empty body or an id no row has.
            expected = {400, 404}
        if response.status_code not in expected:
            wrong.append((method, path, response.status_code))
    assert wrong == []


def test_refusals_are_the_403_page_or_json_in_the_callers_language(site: Site) -> None:
    site.login("agent")
    api = site.client.get("/api/v1/users?lang=en")
    assert api.status_code == 403
    assert api.json() == {"error": "forbidden", "message": "You are not allowed to do this"}
    page = site.client.get("/admin/audit")
    assert page.status_code == 403
    assert "您没有权限执行此操作" in page.text


def test_anonymous_callers_get_401_from_the_api_and_the_login_page_otherwise(
    site: Site,
) -> None:
    for method, path, _ in ENDPOINTS:
        response = site.client.request(method, concrete(path), json={},
                                        headers={"X-CSRF-Token": csrf_token(site.client)})
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next=")


def test_every_change_needs_the_csrf_token_and_changes_nothing_without_it(
    site: Site,
) -> None:
    site.login("admin")
    before = len(site.audit())
    changes = [(m, p) for m, p, _ in ENDPOINTS if m != "GET"]
    assert len(changes) == 27
    for method, path in changes:
        response = site.client.request(method, concrete(path), json={"name": "x"})
        assert response.status_code == 403, (method, path)
    response = site.client.post("/api/v1/users", json={
        "username": "mallory", "password": "long enough", "role": "admin"})
    assert response.json()["error"] == "csrf"
    response = site.client.post("/admin/groups", data={"name": "夜班", "csrf_token": "forged"})
    assert response.status_code == 403
    assert [u.username for u in site.run(site.admin.users.list_users)] == sorted(
        role.value for role in Role)
    assert site.run(site.admin.groups.list_groups) == []
    assert len(site.audit()) == before


def test_navigation_lists_the_admin_pages_a_role_may_open(site: Site) -> None:
    site.login("service_manager")
    page = site.client.get("/admin/groups")
    assert 'href="/admin/groups"' in page.text
    assert 'href="/admin/permissions"' in page.text
    assert 'href="/admin/audit"' in page.text
    assert 'href="/admin/users"' not in page.text
    site.login("admin")
    assert 'href="/admin/users"' in site.client.get("/admin/groups").text


def test_the_openapi_description_names_each_admin_routes_capability(site: Site) -> None:
    site.login("agent")
    paths = site.client.get("/api/v1/openapi.json").json()["paths"]
    assert paths["/api/v1/users"]["post"]["x-capabilities"] == ["users.manage"]
    assert paths["/api/v1/groups/{group_id}/permissions/{capability}"]["put"][
        "x-capabilities"] == ["permissions.manage"]
    assert paths["/api/v1/audit"]["get"]["summary"] == "Read the audit log, newest first."
