"""Sessions on a real (SQLite) database, ended by every path that must end them: an admin
password reset, a role change, disabling the account (enabling it again brings nothing
back), "end this user's sessions", the user's own "log out everywhere". The old cookie
then gets 401 from the API, the login page for a page, and cannot write a contact
record. Only the SHA-256 of a session id is stored."""

from __future__ import annotations

import hashlib

from apps import UserService, WebSessionStore
from tests.web.test_admin_access import Site, site
from tests.web.test_admin_users import grant_users_manage_to_service_manager
from tests.web.test_customers import Stack, add_customer, stack
from tests.web.test_login import cookie_session

__all__ = ["site", "stack"]

COOKIE = "callcenter_session"


def session_of(site: Site, username: str) -> str:
    """Log ``username`` in; their session cookie."""
    site.login(username)
    return site.client.cookies[COOKIE]


def ended(site: Site, cookie: str) -> bool:
    """Whether a request with ``cookie`` is refused as not logged in (API and page)."""
    site.client.cookies.clear()
    site.client.cookies.set(COOKIE, cookie)
    api = site.client.get("/api/v1/me")
    site.client.cookies.set(COOKIE, cookie)
    page = site.client.get("/desktop")
    if api.status_code == 200:
        assert page.status_code != 303
        return False
    assert (api.status_code, api.json()["error"]) == (401, "unauthenticated")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2Fdesktop")
    return True


def as_admin(site: Site, method: str, path: str, **body: object) -> int:
    token = site.login("admin")
    return site.client.request(method, path, json=body,
                               headers={"X-CSRF-Token": token}).status_code


def test_the_session_is_known_by_the_hash_of_its_id(site: Site) -> None:
    site.login("agent")
    session_id = cookie_session(site.client.cookies[COOKIE])["sid"]
    assert isinstance(session_id, str)
    sessions = site.client.app.state.services.sessions  # type: ignore[attr-defined]
    assert isinstance(sessions, WebSessionStore)
    found = site.run(lambda: sessions.resume(session_id))
    assert found is not None and found.user.username == "agent"
    assert found.key == hashlib.sha256(session_id.encode()).hexdigest()
    assert site.run(lambda: sessions.resume(found.key)) is None  # the hash opens nothing


def test_an_admin_password_reset_ends_the_users_sessions(site: Site) -> None:
    agent, supervisor = session_of(site, "agent"), session_of(site, "supervisor")
    assert as_admin(site, "POST", f"/api/v1/users/{site.ids['agent']}/password",
                    password="brand new pw") == 204
    assert ended(site, agent)
    assert not ended(site, supervisor)


def test_a_role_change_ends_the_users_sessions_a_name_change_does_not(site: Site) -> None:
    agent = session_of(site, "agent")
    url = f"/api/v1/users/{site.ids['agent']}"
    assert as_admin(site, "PATCH", url, name="李娜") == 200
    assert not ended(site, agent)
    assert as_admin(site, "PATCH", url, role="supervisor") == 200
    assert ended(site, agent)


def test_disable_then_enable_does_not_bring_a_session_back(site: Site) -> None:
    agent = session_of(site, "agent")
    url = f"/api/v1/users/{site.ids['agent']}"
    assert as_admin(site, "PATCH", url, disabled=True) == 200
    assert as_admin(site, "PATCH", url, disabled=False) == 200
    assert ended(site, agent)


def test_an_admin_ends_a_users_sessions_audited(site: Site) -> None:
    laptop, phone = session_of(site, "agent"), session_of(site, "agent")
    supervisor = session_of(site, "supervisor")
    token = site.login("admin")
    response = site.client.delete(f"/api/v1/users/{site.ids['agent']}/sessions",
                                  headers={"X-CSRF-Token": token})
    assert (response.status_code, response.json()) == (200, {"ended": 2})
    assert ended(site, laptop) and ended(site, phone)
    assert not ended(site, supervisor)
    [entry] = site.audit("user.sessions_end")
    assert (entry.actor, entry.target, dict(entry.detail)) == (
        "admin", "user:agent", {"sessions": 2})
    assert entry.source_ip == "testclient"


def test_nobody_ends_the_sessions_of_someone_above_them(site: Site) -> None:
    admin = session_of(site, "admin")
    grant_users_manage_to_service_manager(site)
    token = site.login("service_manager")
    url = f"/api/v1/users/{site.ids['admin']}/sessions"
    assert site.client.delete(url, headers={"X-CSRF-Token": token}).status_code == 403
    token = site.login("supervisor")  # without users.manage
    assert site.client.delete(url, headers={"X-CSRF-Token": token}).status_code == 403
    assert not ended(site, admin)
    assert site.audit("user.sessions_end") == []


def test_the_edit_page_counts_sessions_and_ends_them_in_both_languages(site: Site) -> None:
    agent = session_of(site, "agent")
    token = site.login("admin")
    url = f"/admin/users/{site.ids['agent']}"
    page = site.client.get(url).text
    assert '<p id="user-sessions">当前登录会话：1 个</p>' in page
    assert "结束该用户的所有会话</button>" in page
    english = site.client.get(f"{url}?lang=en").text
    assert '<p id="user-sessions">Open sessions: 1</p>' in english
    assert "End this user&#39;s sessions</button>" in english
    assert "<title>Edit user · Call center</title>" in english
    response = site.client.post(f"{url}/sessions/end", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, url)
    assert "Open sessions: 0" in site.client.get(f"{url}?lang=en").text
    assert ended(site, agent)


def test_an_ended_session_cannot_write_a_contact_record(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    url = f"/api/v1/customers/{customer.id}/contacts"
    token = stack.login_as("agent")
    body = {"channel": "phone", "text": "回访"}
    assert stack.client.post(url, json=body, headers={"X-CSRF-Token": token}).status_code == 201
    stack.run(stack.web.sessions.end_all, stack.users["agent"].id)  # "log out everywhere"
    refused = stack.client.post(url, json=body, headers={"X-CSRF-Token": token})
    assert (refused.status_code, refused.json()["error"]) == (401, "unauthenticated")

    token = stack.login_as("agent")
    users = stack.web.users
    assert isinstance(users, UserService)
    stack.run(users.set_password, "agent", "another password")  # as `callcenter user passwd`
    refused = stack.client.post(url, json=body, headers={"X-CSRF-Token": token})
    assert refused.status_code == 401
    form = stack.client.post(f"/customers/{customer.id}/contacts",
                             data={"csrf_token": token, **body})
    assert form.status_code == 303 and form.headers["location"].startswith("/login?next=")
    assert [e.text for e in stack.run(stack.contacts.last, customer.id, 5)] == ["回访"]
