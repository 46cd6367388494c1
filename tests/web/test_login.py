"""Logging in and out over the JSON API and the login form: sessions kept on the server
(logout, log out everywhere, idling out), CSRF, throttling that nobody can turn against
an account's owner, no user enumeration, audit."""

from __future__ import annotations

import base64
import json

from starlette.applications import Starlette

from tests.web.conftest import (
    PASSWORD,
    SECRET,
    TestClient,
    World,
    csrf_token,
    login,
    other_browser,
)


def post_login(client: TestClient, username: str, password: str) -> tuple[int, dict[str, str],
                                                                           object]:
    response = client.post("/api/v1/session", json={"username": username, "password": password},
                           headers={"X-CSRF-Token": csrf_token(client)})
    return response.status_code, dict(response.headers), response.json()


def test_json_login_returns_the_user_and_starts_a_session(client: TestClient,
                                                          world: World) -> None:
    response = client.post("/api/v1/session",
                           json={"username": "zhangwei", "password": PASSWORD},
                           headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 200
    assert response.json()["user"] == {
        "id": 1, "username": "zhangwei", "name": "张伟", "role": "agent",
        "role_label": "普通座席", "extension": "1001",
        "permissions": ["calls.handle", "customers.view"],
    }
    assert client.get("/api/v1/me").json()["username"] == "zhangwei"
    [entry] = world.audit.entries
    assert (entry.action, entry.actor_id, entry.actor, entry.source_ip) == (
        "login", 1, "zhangwei", "testclient")


def test_session_cookie_is_signed_httponly_lax_and_expires(client: TestClient) -> None:
    response = client.post("/api/v1/session",
                           json={"username": "zhangwei", "password": PASSWORD},
                           headers={"X-CSRF-Token": csrf_token(client)})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("callcenter_session=")
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert "Max-Age=3600" in cookie
    assert "zhangwei" not in cookie  # base64 JSON, but not readable at a glance ...
    assert SECRET not in cookie


def cookie_session(cookie: str) -> dict[str, object]:
    """What a signed session cookie carries (its first part is base64 JSON)."""
    data = cookie.split(".")[0]
    decoded = json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))
    assert isinstance(decoded, dict)
    return decoded


def test_the_cookie_holds_a_session_id_and_the_csrf_token_and_nothing_of_the_user(
    client: TestClient, world: World
) -> None:
    token = login(client, "zhangwei")
    carried = cookie_session(client.cookies["callcenter_session"])
    assert set(carried) == {"sid", "csrf"}
    assert carried["csrf"] == token
    session_id = carried["sid"]
    assert isinstance(session_id, str) and len(session_id) >= 22  # >= 128 random bits
    assert world.sessions.live[session_id].user_id == 1
    assert "zhangwei" not in json.dumps(carried) and "张伟" not in json.dumps(carried)


def test_a_replayed_cookie_is_no_session_after_logout(client: TestClient) -> None:
    token = login(client, "zhangwei")
    before_logout = client.cookies["callcenter_session"]
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": token}).status_code == 200
    client.cookies.set("callcenter_session", before_logout)
    response = client.get("/api/v1/me")
    assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
    # The token went with the session.
    assert cookie_session(response.cookies["callcenter_session"])["csrf"] != token
    client.cookies.set("callcenter_session", before_logout)
    page = client.get("/desktop")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2Fdesktop")


def test_a_session_ends_after_the_idle_time_and_use_keeps_it(client: TestClient,
                                                              world: World) -> None:
    login(client, "zhangwei")
    for _ in range(3):
        world.clock.now += 3599  # the idle time is 3600 s in these tests
        assert client.get("/api/v1/me").status_code == 200
    world.clock.now += 3600
    assert client.get("/api/v1/me").status_code == 401
    assert world.sessions.live == {}


def test_a_tampered_session_cookie_is_no_session(client: TestClient) -> None:
    login(client, "zhangwei")
    value = client.cookies["callcenter_session"]
    client.cookies.set("callcenter_session", "A" + value[1:])
    assert client.get("/api/v1/me").status_code == 401


def test_unknown_user_and_wrong_password_get_the_same_answer(client: TestClient,
                                                             world: World) -> None:
    wrong_password = post_login(client, "zhangwei", "not the password")
    unknown_user = post_login(client, "nobody", PASSWORD)
    assert wrong_password[0] == unknown_user[0] == 401
    assert wrong_password[2] == unknown_user[2] == {"error": "bad_credentials",
                                                    "message": "用户名或密码错误"}
    assert client.get("/api/v1/me").status_code == 401
    assert [(e.action, e.actor, e.detail) for e in world.audit.entries] == [
        ("login_failed", "zhangwei", {"reason": "bad_credentials"}),
        ("login_failed", "nobody", {"reason": "bad_credentials"}),
    ]


def test_login_without_the_csrf_token_is_refused(client: TestClient, world: World) -> None:
    client.get("/api/v1/session")
    response = client.post("/api/v1/session",
                           json={"username": "zhangwei", "password": PASSWORD})
    assert response.status_code == 403
    assert response.json() == {"error": "csrf", "message": "页面已过期，请刷新后重试"}
    wrong = client.post("/api/v1/session", json={"username": "zhangwei", "password": PASSWORD},
                        headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    assert world.audit.entries == []


def test_malformed_login_body_is_400(client: TestClient) -> None:
    token = csrf_token(client)
    for body in (b"not json", b"[1]", b'{"username": "zhangwei"}', b'{"username": 1, '
                 b'"password": "x"}'):
        response = client.post("/api/v1/session", content=body,
                               headers={"X-CSRF-Token": token,
                                        "Content-Type": "application/json"})
        assert response.status_code == 400, body
        assert response.json()["error"] == "bad_request"


def test_five_failures_for_a_username_from_one_address_lock_that_pair(
    client: TestClient, world: World
) -> None:
    for _ in range(5):
        assert post_login(client, "zhangwei", "wrong")[0] == 401
    world.clock.now += 60
    status, headers, body = post_login(client, "zhangwei", PASSWORD)  # even the right one
    assert status == 429
    assert headers["retry-after"] == "240"
    assert body == {"error": "throttled", "message": "登录失败次数过多，请 240 秒后再试"}
    assert world.audit.entries[-1].detail == {"reason": "throttled"}
    assert post_login(client, "admin", PASSWORD)[0] == 200  # other users from here may
    world.clock.now += 240
    assert post_login(client, "zhangwei", PASSWORD)[0] == 200


def test_an_attacker_cannot_lock_the_admin_out_from_another_address(
    world: World, app: Starlette
) -> None:
    with TestClient(app, client=("10.6.6.6", 4000)) as attacker:
        answers = [post_login(attacker, "admin", f"guess {n}")[0] for n in range(30)]
        assert answers == [401] * 5 + [429] * 25
        assert post_login(attacker, "admin", PASSWORD)[0] == 429  # the attacker's address
    with TestClient(app, client=("192.168.1.10", 4000)) as owner:
        status, _, body = post_login(owner, "admin", PASSWORD)
        assert status == 200 and isinstance(body, dict) and body["user"]["username"] == "admin"
    assert world.sleeps == [2.0]  # only slowed, by a short wait before the password check
    with TestClient(app, client=("192.168.1.10", 4000)) as owner:
        assert post_login(owner, "admin", PASSWORD)[0] == 200
    assert world.sleeps == [2.0]  # the owner's login started the count again


def test_failures_from_many_addresses_only_slow_a_username_down(world: World,
                                                                app: Starlette) -> None:
    for n in range(8):
        with TestClient(app, client=(f"10.0.0.{n}", 4000)) as other:
            assert post_login(other, "zhangwei", "wrong")[0] == 401
    assert world.sleeps == [2.0] * 3  # the sixth failure on waited first
    with TestClient(app, client=("10.0.0.99", 4000)) as fresh:
        assert post_login(fresh, "zhangwei", PASSWORD)[0] == 200
        assert post_login(fresh, "admin", PASSWORD)[0] == 200
    assert world.sleeps == [2.0] * 4  # zhangwei's login waited; admin's did not


def test_the_lock_is_per_address_across_usernames(client: TestClient, world: World) -> None:
    for n in range(20):
        assert post_login(client, f"guess{n}", "wrong")[0] == 401
    assert post_login(client, "admin", PASSWORD)[0] == 429  # unknown names count too
    with TestClient(client.app, client=("10.1.1.1", 1)) as elsewhere:
        assert post_login(elsewhere, "admin", PASSWORD)[0] == 200


def test_the_throttle_answers_an_unknown_user_like_a_known_one(client: TestClient) -> None:
    answers = {}
    for username in ("zhangwei", "nobody"):
        for _ in range(5):
            assert post_login(client, username, "wrong")[0] == 401
        answers[username] = post_login(client, username, "wrong")
    assert answers["zhangwei"] == answers["nobody"]
    assert answers["nobody"][0] == 429


def test_a_successful_login_clears_the_username_count(client: TestClient) -> None:
    for _ in range(4):
        post_login(client, "admin", "wrong")
    assert post_login(client, "admin", PASSWORD)[0] == 200
    client.cookies.clear()
    with TestClient(client.app, client=("10.1.1.1", 1)) as elsewhere:
        for _ in range(4):
            assert post_login(elsewhere, "admin", "wrong")[0] == 401
        assert post_login(elsewhere, "admin", PASSWORD)[0] == 200


def test_logout_ends_the_session_and_needs_the_token(client: TestClient,
                                                     world: World) -> None:
    token = login(client, "zhangwei")
    assert client.delete("/api/v1/session").status_code == 403  # no token
    assert client.get("/api/v1/me").status_code == 200
    response = client.delete("/api/v1/session", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert response.json()["csrf_token"] != token
    assert client.get("/api/v1/me").json() == {"error": "unauthenticated",
                                               "message": "请先登录"}
    assert world.audit.actions() == ["login", "logout"]


def test_the_csrf_token_changes_at_login(client: TestClient) -> None:
    before = csrf_token(client)
    after = login(client, "zhangwei")
    assert before != after
    response = client.delete("/api/v1/session", headers={"X-CSRF-Token": before})
    assert response.status_code == 403


def test_login_form_logs_in_and_goes_to_next(client: TestClient, world: World) -> None:
    page = client.get("/login?next=/desktop")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/login", data={"username": "zhangwei", "password": PASSWORD,
                                           "csrf_token": token, "next": "/desktop"})
    assert response.status_code == 303
    assert response.headers["location"] == "/desktop"
    assert client.get("/desktop").status_code == 200


def test_login_form_never_redirects_off_site(client: TestClient) -> None:
    token = csrf_token(client)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        client.cookies.delete("callcenter_session")
        token = csrf_token(client)
        response = client.post("/login", data={"username": "zhangwei", "password": PASSWORD,
                                               "csrf_token": token, "next": target})
        assert response.headers["location"] == "/", target


def test_login_form_errors_in_both_languages(client: TestClient) -> None:
    token = csrf_token(client)
    response = client.post("/login", data={"username": "zhangwei", "password": "wrong",
                                           "csrf_token": token})
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert 'value="zhangwei"' in response.text  # the name is kept, the password is not
    response = client.post("/login?lang=en", data={"username": "x", "password": "wrong",
                                                   "csrf_token": token})
    assert "Wrong username or password" in response.text


def test_login_form_without_token_is_refused(client: TestClient, world: World) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "zhangwei", "password": PASSWORD})
    assert response.status_code == 403
    assert "页面已过期，请刷新后重试" in response.text
    assert world.audit.entries == []


def test_login_form_throttled_shows_retry_after(client: TestClient) -> None:
    token = csrf_token(client)
    for _ in range(5):
        client.post("/login", data={"username": "zhangwei", "password": "x",
                                    "csrf_token": token})
    response = client.post("/login", data={"username": "zhangwei", "password": PASSWORD,
                                            "csrf_token": token})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "300"
    assert "登录失败次数过多，请 300 秒后再试" in response.text


def test_log_out_everywhere_ends_every_session_of_the_user(client: TestClient,
                                                           world: World) -> None:
    laptop, admins = other_browser(client, "zhangwei"), other_browser(client, "admin")
    token = login(client, "zhangwei")
    assert client.delete("/api/v1/sessions").status_code == 403  # no token
    response = client.delete("/api/v1/sessions", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert response.json()["ended"] == 2
    assert response.json()["csrf_token"] != token
    assert client.get("/api/v1/me").status_code == 401
    client.cookies.set("callcenter_session", laptop)
    assert client.get("/api/v1/me").status_code == 401
    client.cookies.set("callcenter_session", admins)
    assert client.get("/api/v1/me").json()["username"] == "admin"  # someone else's stays
    [entry] = [e for e in world.audit.entries if e.action == "logout_all"]
    assert (entry.actor, entry.detail) == ("zhangwei", {"sessions": 2})


def test_log_out_everywhere_button_in_both_languages(client: TestClient,
                                                     world: World) -> None:
    other = other_browser(client, "zhangwei")
    login(client, "zhangwei")
    page = client.get("/desktop")
    assert 'id="logout-everywhere" title="结束您在所有浏览器和设备上的登录，包括本页">' \
        "退出所有设备</button>" in page.text
    english = client.get("/desktop?lang=en").text
    assert 'title="End your login in every browser and on every device, this one ' \
        'included">Log out everywhere</button>' in english
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/logout/everywhere", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert client.get("/desktop").status_code == 303
    client.cookies.set("callcenter_session", other)
    assert client.get("/desktop").headers["location"] == "/login?next=%2Fdesktop"
    assert world.sessions.live == {}


def test_logging_in_again_ends_the_session_it_replaces(client: TestClient,
                                                       world: World) -> None:
    login(client, "zhangwei")
    login(client, "admin")
    assert [s.user_id for s in world.sessions.live.values()] == [2]


def test_logout_form(client: TestClient, world: World) -> None:
    login(client, "zhangwei")
    page = client.get("/desktop")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/logout", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert client.get("/desktop").status_code == 303
    assert world.audit.actions() == ["login", "logout"]


def test_long_usernames_are_cut_to_the_column_in_the_audit(client: TestClient,
                                                           world: World) -> None:
    post_login(client, "u" * 500, "wrong")
    assert world.audit.entries[0].actor == "u" * 64
