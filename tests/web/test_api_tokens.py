"""Bearer tokens on the API (real SQLite database, real token service): a token acts as
its user with that user's permissions now, needs no CSRF token, never falls back to a
cookie beside it, and is refused alike when unknown, revoked or its user disabled."""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.websockets import WebSocketDisconnect

from apps import SYSTEM, ApiTokenService
from apps.audit import COMMAND_LINE
from tests.web.test_admin_access import Site, site
from web import EventHub

__all__ = ["site"]

REFUSED = {"error": "unauthenticated", "message": "请先登录"}


def tokens_of(site: Site) -> ApiTokenService:
    assert site.tokens is not None
    return site.tokens


def issue(site: Site, username: str) -> tuple[int, str]:
    """A new token of ``username``: (its id, the token)."""
    issued = site.run(lambda: tokens_of(site).create(SYSTEM, username, label="script",
                                                     source_ip=COMMAND_LINE))
    return issued.record.id, issued.token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_gets_its_user_on_me(site: Site) -> None:
    _, token = issue(site, "agent")
    response = site.client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["id"], me["username"], me["role"]) == (site.ids["agent"], "agent", "agent")
    assert "calls.handle" in me["permissions"]
    assert "callcenter_session" not in response.headers.get("set-cookie", "")
    # The scheme is case-insensitive (RFC 9110 §11.1).
    assert site.client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"}
                           ).status_code == 200
    [listed] = site.run(lambda: tokens_of(site).list_tokens("agent"))
    assert listed.last_used_at is not None


def test_a_change_needs_no_csrf_token_with_a_bearer_token(site: Site) -> None:
    _, token = issue(site, "service_manager")
    response = site.client.post("/api/v1/groups", json={"name": "夜班"}, headers=bearer(token))
    assert response.status_code == 201, response.text
    [entry] = site.audit("group.create")
    assert (entry.actor, entry.actor_id, entry.source_ip) == (
        "service_manager", site.ids["service_manager"], "testclient")


@pytest.mark.parametrize("kind", ["unknown", "revoked", "disabled", "malformed", "empty"])
def test_unknown_revoked_and_disabled_tokens_are_refused_alike(site: Site, kind: str) -> None:
    token_id, token = issue(site, "agent")
    if kind == "unknown":
        token = "cc_" + "A" * 43
    elif kind == "revoked":
        site.run(lambda: tokens_of(site).revoke(SYSTEM, token_id))
    elif kind == "disabled":
        admin_csrf = site.login("admin")
        assert site.client.patch(f"/api/v1/users/{site.ids['agent']}",
                                 json={"disabled": True},
                                 headers={"X-CSRF-Token": admin_csrf}).status_code == 200
        site.client.cookies.clear()
    elif kind == "malformed":
        token = "not-a-token"
    else:
        token = ""
    for method, path in (("GET", "/api/v1/me"), ("POST", "/api/v1/groups")):
        response = site.client.request(method, path, headers=bearer(token), json={"name": "x"})
        assert response.status_code == 401
        assert response.json() == REFUSED
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_an_agents_token_is_held_to_the_agents_permissions(site: Site) -> None:
    _, token = issue(site, "agent")
    for method, path in (("GET", "/api/v1/users"), ("GET", "/api/v1/audit"),
                         ("POST", "/api/v1/groups")):
        response = site.client.request(method, path, headers=bearer(token), json={"name": "x"})
        assert response.status_code == 403, (method, path)
        assert response.json()["error"] == "forbidden"
    _, admin_token = issue(site, "admin")
    assert site.client.get("/api/v1/users", headers=bearer(admin_token)).status_code == 200


def test_a_bearer_request_never_falls_back_to_the_cookie(site: Site) -> None:
    admin_csrf = site.login("admin")  # the client now carries the admin's cookie
    assert site.client.get("/api/v1/users").status_code == 200
    # A bad token beside a good cookie: refused, not let in as the admin.
    response = site.client.get("/api/v1/users", headers=bearer("cc_" + "B" * 43))
    assert (response.status_code, response.json()) == (401, REFUSED)
    # An agent's token beside the admin's cookie: the agent, with the agent's rights.
    _, token = issue(site, "agent")
    assert site.client.get("/api/v1/me", headers=bearer(token)).json()["username"] == "agent"
    assert site.client.get("/api/v1/users", headers=bearer(token)).status_code == 403
    # Logging out with a token ends nothing: the cookie's session lives on.
    assert site.client.delete("/api/v1/session", headers=bearer(token)).status_code == 200
    assert site.client.get("/api/v1/me").json()["username"] == "admin"
    assert site.audit("logout") == []
    # Without a token the cookie still needs its CSRF token for a change, as before.
    response = site.client.post("/api/v1/groups", json={"name": "早班"})
    assert (response.status_code, response.json()["error"]) == (403, "csrf")
    assert site.client.post("/api/v1/groups", json={"name": "早班"},
                            headers={"X-CSRF-Token": admin_csrf}).status_code == 201


def test_pages_take_no_bearer_token(site: Site) -> None:
    _, token = issue(site, "admin")
    response = site.client.get("/admin/users", headers=bearer(token))
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    site.login("admin")  # not even beside a cookie
    assert site.client.get("/admin/users", headers=bearer(token)).status_code == 303
    assert site.client.get("/admin/users").status_code == 200
    # Another scheme (a proxy's Basic login in front of the pages) is left alone.
    assert site.client.get("/admin/users", headers={"Authorization": "Basic eDp5"}
                           ).status_code == 200


def test_the_token_appears_in_no_log_and_no_audit_entry(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_id, token = issue(site, "admin")
    site.client.get("/api/v1/me", headers=bearer(token))
    site.client.post("/api/v1/groups", json={"name": "早班"}, headers=bearer(token))
    site.client.get("/api/v1/users", headers=bearer(token + "x"))
    site.run(lambda: tokens_of(site).revoke(SYSTEM, token_id, source_ip=COMMAND_LINE))
    site.client.get("/api/v1/me", headers=bearer(token))
    entries = site.audit()
    assert {e.action for e in entries} >= {"token.create", "group.create", "token.revoke"}
    assert not any(token in repr(entry) for entry in entries)
    assert token not in caplog.text
    # The audit page reads the entries as sentences, naming the token by its id.
    site.login("admin")
    page = site.client.get("/admin/audit?lang=en").text
    assert f"created API token {token_id} for admin (script)" in page
    assert f"revoked API token {token_id} of admin (script)" in page


def _hub(site: Site) -> EventHub:
    hub: EventHub = site.client.app.state.services.hub  # type: ignore[attr-defined]
    return hub


def test_a_socket_opens_with_a_bearer_token_and_no_origin(site: Site) -> None:
    token_id, token = issue(site, "agent")
    hub = _hub(site)
    with site.client.websocket_connect("/api/v1/ws", headers=bearer(token)) as socket:
        site.run(lambda: asyncio.sleep(0))  # let the server subscribe
        assert hub.connected_users() == {site.ids["agent"]}
        hub.publish(site.ids["agent"], {"type": "screen_pop", "caller": "13800138000"})
        assert socket.receive_json() == {"type": "screen_pop", "caller": "13800138000"}
        # Revoked (here, or by `callcenter token revoke` found on the next check): closed.
        site.run(lambda: tokens_of(site).revoke(SYSTEM, token_id))
        hub.sessions_ended(site.ids["agent"])
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1008
    assert hub.connected_users() == frozenset()


@pytest.mark.parametrize("token", ["cc_" + "C" * 43, ""])
def test_a_socket_with_a_bad_token_is_refused_even_beside_a_cookie(site: Site,
                                                                   token: str) -> None:
    site.login("agent")
    headers = {**bearer(token), "origin": "http://testserver"}
    with pytest.raises(WebSocketDisconnect) as refused, site.client.websocket_connect(
            "/api/v1/ws", headers=headers):
        pass
    assert refused.value.code == 1008
