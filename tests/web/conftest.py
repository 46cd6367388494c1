"""In-memory stand-ins for the services web/ needs, and logged-in test clients."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import BaseRoute

with warnings.catch_warnings():
    # Starlette 1.x would rather run its TestClient on httpx2, a fork not among our test
    # dependencies; on httpx it works the same and only warns at import.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["TestClient"]  # imported from here by the tests, warning already silenced

from apps import Role, UserRecord, WebSessionRecord
from apps.web_sessions import session_key
from web import NavItem, WebServices, WebSettings, create_app

CREATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse"
SESSION_COOKIE = "callcenter_session"
AGENT_CAPS = frozenset({"calls.handle", "customers.view"})


class FakeUsers:
    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, UserRecord]] = {}
        self.disabled: set[int] = set()  # ids of disabled accounts

    def add(self, user_id: int, username: str, role: Role, *, name: str | None = None,
            extension: str | None = None, password: str = PASSWORD) -> UserRecord:
        record = UserRecord(user_id, username, name, role, extension, CREATED)
        self.accounts[username] = (password, record)
        return record

    async def verify_web_password(self, username: str, password: str) -> UserRecord | None:
        found = self.accounts.get(username)
        if found is None or found[0] != password or found[1].id in self.disabled:
            return None
        return found[1]

    def active_record(self, user_id: int) -> UserRecord | None:
        """The user if they exist and are not disabled."""
        found = [record for _, record in self.accounts.values() if record.id == user_id]
        return found[0] if found and user_id not in self.disabled else None


@dataclass
class FakePermissions:
    by_user: dict[int, frozenset[str]] = field(default_factory=dict)

    async def __call__(self, user_id: int) -> frozenset[str]:
        return self.by_user.get(user_id, frozenset())


@dataclass(frozen=True)
class Entry:
    action: str
    actor_id: int | None
    actor: str
    target: str | None
    detail: Mapping[str, Any]
    source_ip: str | None


@dataclass
class FakeAudit:
    entries: list[Entry] = field(default_factory=list)

    async def record(self, action: str, *, actor_id: int | None, actor: str,
                     target: str | None, detail: Mapping[str, Any],
                     source_ip: str | None) -> Entry:
        entry = Entry(action, actor_id, actor, target, dict(detail), source_ip)
        self.entries.append(entry)
        return entry

    def actions(self) -> list[str]:
        return [entry.action for entry in self.entries]


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeSession:
    user_id: int
    started: float
    last_seen: float
    source_ip: str | None
    user_agent: str | None


class FakeSessions:
    """Sessions in a dict on the world's clock: one idles out ``idle_s`` after its last
    touch; one whose user is disabled is gone."""

    def __init__(self, users: FakeUsers, clock: FakeClock, idle_s: float) -> None:
        self.users, self.clock, self.idle_s = users, clock, idle_s
        self.live: dict[str, FakeSession] = {}

    async def start(self, user_id: int, *, source_ip: str | None = None,
                    user_agent: str | None = None) -> str:
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        self.live[session_id] = FakeSession(user_id, now, now, source_ip, user_agent)
        return session_id

    async def resume(self, session_id: str, *, touch: bool = True) -> WebSessionRecord | None:
        session = self.live.get(session_id)
        if session is None:
            return None
        user = self.users.active_record(session.user_id)
        now = self.clock()
        if user is None or now >= session.last_seen + self.idle_s:
            del self.live[session_id]
            return None
        if touch:
            session.last_seen = now
        at = [datetime.fromtimestamp(t, UTC) for t in
              (session.started, session.last_seen, session.last_seen + self.idle_s)]
        return WebSessionRecord(session_key(session_id), user, *at, session.source_ip,
                                session.user_agent)

    async def end(self, session_id: str) -> bool:
        return self.live.pop(session_id, None) is not None

    async def end_all(self, user_id: int) -> int:
        ended = [key for key, session in self.live.items() if session.user_id == user_id]
        for key in ended:
            del self.live[key]
        return len(ended)

    async def count_live(self, user_id: int) -> int:
        return sum(session.user_id == user_id for session in self.live.values())


@dataclass
class World:
    users: FakeUsers
    permissions: FakePermissions
    audit: FakeAudit
    clock: FakeClock
    sessions: FakeSessions
    sleeps: list[float]  # how long the login throttle slowed each slowed login
    services: WebServices

    def app(self, routes: Sequence[BaseRoute] = (), nav: Sequence[NavItem] = ()) -> Starlette:
        return create_app(self.services, routes=routes, nav=nav)


@pytest.fixture
def world() -> World:
    users, permissions, audit, clock = FakeUsers(), FakePermissions(), FakeAudit(), FakeClock()
    users.add(1, "zhangwei", Role.agent, name="张伟", extension="1001")
    permissions.by_user[1] = AGENT_CAPS
    users.add(2, "admin", Role.admin, name="系统管理员")
    permissions.by_user[2] = frozenset({"users.manage"})
    sessions, sleeps = FakeSessions(users, clock, 3600), []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    services = WebServices(users=users, sessions=sessions, permissions_of=permissions,
                           audit=audit, secret_key=SECRET,
                           settings=WebSettings(session_max_age_s=3600), clock=clock,
                           sleep=sleep)
    return World(users, permissions, audit, clock, sessions, sleeps, services)


@pytest.fixture
def app(world: World) -> Starlette:
    return world.app()


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def csrf_token(client: TestClient) -> str:
    token = client.get("/api/v1/session").json()["csrf_token"]
    assert isinstance(token, str)
    return token


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in over the JSON API; returns the session's new CSRF token."""
    response = client.post("/api/v1/session", json={"username": username, "password": password},
                           headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 200, response.text
    token = response.json()["csrf_token"]
    assert isinstance(token, str)
    return token


def other_browser(client: TestClient, username: str) -> str:
    """Log ``username`` in on a fresh session, as another browser would, and set it
    aside: returns that session's cookie and leaves ``client`` with no cookies."""
    client.cookies.clear()
    login(client, username)
    cookie = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    return cookie
