"""Managing users from the admin API and pages: changes land in the database (web login,
SIP credentials) and in the audit log; nobody manages a user or role above themselves."""

from __future__ import annotations

import re

from httpx import Response
from hypothesis import given
from hypothesis import strategies as st

from tests.web.conftest import csrf_token
from tests.web.test_admin_access import PASSWORD, Site, site
from web.admin_common import BadInput, text_field
from web.inputs import MAX_ID, id_field

__all__ = ["site"]


def create(site: Site, token: str, **body: object) -> tuple[int, dict[str, object]]:
    response = site.client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": token})
    return response.status_code, response.json()


def test_admin_creates_a_phone_user_who_can_log_in_and_register(site: Site) -> None:
    token = site.login("admin")
    status, user = create(site, token, username="zhaolei", name="赵雷", role="agent",
                          extension="1005", password="agent password")
    assert status == 201
    assert user == {"id": user["id"], "username": "zhaolei", "name": "赵雷", "role": "agent",
                    "role_label": "普通座席", "extension": "1005",
                    "created_at": user["created_at"], "disabled": False, "registered": False}
    listed = site.client.get("/api/v1/users").json()["users"]
    assert {"zhaolei": "1005"}.items() <= {u["username"]: u["extension"] for u in listed}.items()
    assert site.run(lambda: site.admin.users.verify_web_password("zhaolei", "agent password"))
    credentials = site.run(lambda: site.admin.users.sip_credentials("1005"))
    assert credentials is not None and credentials.username == "1005"
    [entry] = site.audit("user.create")
    assert (entry.actor, entry.target, dict(entry.detail)) == (
        "admin", "user:zhaolei", {"role": "agent", "extension": "1005"})
    assert entry.source_ip == "testclient"


def test_refused_creations_say_why_and_store_nothing(site: Site) -> None:
    token = site.login("admin")
    cases = [
        ({"username": "x", "role": "agent", "password": "short"},
         "password must be at least 8 characters"),
        ({"username": "agent", "role": "agent", "password": PASSWORD},
         "user 'agent' already exists"),
        ({"username": "x", "role": "boss", "password": PASSWORD},
         "unknown role 'boss' (choose from admin, service_manager, shift_leader, supervisor, "
         "agent, account_manager)"),
        ({"username": "x", "role": "agent", "password": PASSWORD, "extension": "12a"},
         "extension must be 2 to 8 digits"),
        ({"role": "agent", "password": PASSWORD}, "'username' is required"),
        ({"username": 7, "role": "agent", "password": PASSWORD}, "'username' must be a string"),
    ]
    for body, message in cases:
        assert create(site, token, **body) == (400, {"error": "invalid", "message": message})
    assert len(site.run(site.admin.users.list_users)) == 6
    assert site.audit("user.create") == []


def test_edit_role_name_and_extension(site: Site) -> None:
    token = site.login("admin")
    agent_id = site.ids["agent"]
    url = f"/api/v1/users/{agent_id}"
    headers = {"X-CSRF-Token": token}
    response = site.client.patch(url, json={"role": "supervisor", "name": "李娜"},
                                 headers=headers)
    assert response.status_code == 200
    assert (response.json()["role"], response.json()["name"]) == ("supervisor", "李娜")
    assert "calls.listen" in site.run(lambda: site.admin.permissions.effective(agent_id))
    # The phone's digest secrets are derived from extension and password together.
    response = site.client.patch(url, json={"extension": "1009"}, headers=headers)
    assert response.json() == {"error": "invalid",
                               "message": "a new extension needs a new password"}
    response = site.client.patch(url, json={"extension": "1009", "password": "new password"},
                                 headers=headers)
    assert response.json()["extension"] == "1009"
    assert site.run(lambda: site.admin.users.sip_credentials("1009")) is not None
    entries = site.audit("user.update")
    assert [dict(e.detail) for e in reversed(entries)] == [
        {"role": {"before": "agent", "after": "supervisor"},
         "name": {"before": "agent name", "after": "李娜"}, "password_changed": False},
        {"extension": {"before": None, "after": "1009"}, "password_changed": True},
    ]
    assert site.client.get("/api/v1/users/999", headers=headers).status_code == 404


def test_reset_password_replaces_the_old_one(site: Site) -> None:
    token = site.login("admin")
    response = site.client.post(f"/api/v1/users/{site.ids['supervisor']}/password",
                                json={"password": "brand new pw"},
                                headers={"X-CSRF-Token": token})
    assert response.status_code == 204
    users = site.admin.users
    assert site.run(lambda: users.verify_web_password("supervisor", PASSWORD)) is None
    assert site.run(lambda: users.verify_web_password("supervisor", "brand new pw"))
    [entry] = site.audit("user.password_reset")
    assert (entry.actor, entry.target) == ("admin", "user:supervisor")


def grant_users_manage_to_service_manager(site: Site) -> None:
    token = site.login("admin")
    headers = {"X-CSRF-Token": token}
    group = site.client.post("/api/v1/groups", json={"name": "经理"}, headers=headers).json()
    site.client.post(f"/api/v1/groups/{group['id']}/members",
                     json={"user_id": site.ids["service_manager"]}, headers=headers)
    response = site.client.put(f"/api/v1/groups/{group['id']}/permissions/users.manage",
                               json={"state": "granted"}, headers=headers)
    assert response.json()["changed"] is True


def test_a_granted_user_manager_cannot_manage_anyone_above_themselves(site: Site) -> None:
    grant_users_manage_to_service_manager(site)
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    assert create(site, token, username="newagent", role="agent", password=PASSWORD)[0] == 201
    assert create(site, token, username="boss", role="admin", password=PASSWORD)[0] == 403
    own = f"/api/v1/users/{site.ids['service_manager']}"
    assert site.client.patch(own, json={"role": "admin"}, headers=headers).status_code == 403
    admin_password = f"/api/v1/users/{site.ids['admin']}/password"
    response = site.client.post(admin_password, json={"password": "taken over"},
                                headers=headers)
    assert response.status_code == 403
    assert site.run(lambda: site.admin.users.verify_web_password("admin", PASSWORD))
    roles = {u.username: u.role.value for u in site.run(site.admin.users.list_users)}
    assert roles["service_manager"] == "service_manager" and "boss" not in roles


def test_users_page_lists_users_with_their_extension_in_both_languages(site: Site) -> None:
    token = site.login("admin")
    create(site, token, username="zhaolei", role="agent", extension="1005", password=PASSWORD)
    page = site.client.get("/admin/users")
    assert page.status_code == 200
    assert '<h1 class="h3 mb-3">用户管理</h1>' in page.text
    assert '<td class="extension">1005</td>' in page.text
    assert "客户经理" in page.text
    english = site.client.get("/admin/users?lang=en").text
    assert '<h1 class="h3 mb-3">Users</h1>' in english and "Account manager" in english


def test_users_pages_create_edit_and_reset_through_forms(site: Site) -> None:
    token = site.login("admin")
    response = site.client.post("/admin/users", data={
        "csrf_token": token, "username": "sunli", "name": "孙丽", "role": "shift_leader",
        "extension": "", "password": "form password"})
    assert (response.status_code, response.headers["location"]) == (303, "/admin/users")
    sunli = next(u for u in site.run(site.admin.users.list_users) if u.username == "sunli")
    assert (sunli.name, sunli.role.value, sunli.extension) == ("孙丽", "shift_leader", None)

    response = site.client.post(f"/admin/users/{sunli.id}", data={
        "csrf_token": token, "name": "孙丽", "role": "supervisor", "extension": "1010",
        "password": "phone password"})
    assert response.headers["location"] == f"/admin/users/{sunli.id}"
    edited = site.run(lambda: site.admin.users.get_user(sunli.id))
    assert edited is not None and (edited.role.value, edited.extension) == ("supervisor", "1010")
    saved = site.client.get(response.headers["location"]).text
    assert '<div class="toast-body">已保存</div>' in saved  # a toast says so, once
    assert "已保存" not in site.client.get(response.headers["location"]).text

    response = site.client.post(f"/admin/users/{sunli.id}/password",
                                data={"csrf_token": token, "password": "short"})
    assert response.status_code == 400
    assert "password must be at least 8 characters" in response.text

    response = site.client.post("/admin/users", data={
        "csrf_token": token, "username": "sunli", "role": "agent", "password": PASSWORD})
    assert response.status_code == 400
    assert "user &#39;sunli&#39; already exists" in response.text
    assert 'value="sunli"' in response.text  # the form keeps what was typed


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@given(st.dictionaries(st.sampled_from(["name", "user_id", "other"]), JSON_VALUES))
def test_body_fields_are_their_type_or_a_bad_input_naming_the_field(body: dict[str, object]
                                                                    ) -> None:
    try:
        name = text_field(body, "name")
    except BadInput as exc:
        assert str(exc) == "'name' must be a string"
    else:
        assert name is None or (isinstance(name, str) and name == body["name"] != "")
    try:
        user_id = id_field(body, "user_id")
    except BadInput as exc:
        assert str(exc) == f"'user_id' must be an id from 1 to {MAX_ID}"
        assert exc.in_language("zh") == f"“user_id”必须是 1 到 {MAX_ID} 之间的编号"
    else:
        raw = body["user_id"]
        assert user_id == (int(raw) if isinstance(raw, str) else raw)
        assert not isinstance(raw, bool) and 1 <= user_id <= MAX_ID


def test_removing_the_extension_ends_the_phone_account(site: Site) -> None:
    token = site.login("admin")
    _, user = create(site, token, username="zhaolei", role="agent", extension="1005",
                     password=PASSWORD)
    response = site.client.patch(f"/api/v1/users/{user['id']}", json={"extension": None},
                                 headers={"X-CSRF-Token": token})
    assert response.json()["extension"] is None
    assert site.run(lambda: site.admin.users.sip_credentials("1005")) is None
    assert site.run(lambda: site.admin.users.verify_web_password("zhaolei", PASSWORD))


# -- disabling accounts ------------------------------------------------------------------


def set_disabled(site: Site, token: str, username: str, disabled: object) -> Response:
    return site.client.patch(f"/api/v1/users/{site.ids[username]}", json={"disabled": disabled},
                             headers={"X-CSRF-Token": token})


def test_admin_disables_and_enables_an_agent_audited(site: Site) -> None:
    token = site.login("admin")
    response = set_disabled(site, token, "agent", True)
    assert response.status_code == 200
    assert (response.json()["username"], response.json()["disabled"]) == ("agent", True)
    assert site.run(lambda: site.admin.users.verify_web_password("agent", PASSWORD)) is None
    listed = site.client.get("/api/v1/users").json()["users"]
    assert {u["username"]: u["disabled"] for u in listed}["agent"] is True

    assert set_disabled(site, token, "agent", True).status_code == 200  # no change ...
    assert set_disabled(site, token, "agent", False).json()["disabled"] is False
    assert site.run(lambda: site.admin.users.verify_web_password("agent", PASSWORD))
    entries = [(e.action, e.actor, e.target) for e in site.audit()
               if e.action.startswith("user.")]
    assert sorted(entries) == [  # ... and no audit entry for the repeat
        ("user.disable", "admin", "user:agent"), ("user.enable", "admin", "user:agent")]


def test_nobody_disables_themselves_or_anyone_above_them(site: Site) -> None:
    token = site.login("admin")
    assert set_disabled(site, token, "admin", True).json() == {
        "error": "invalid", "message": "不能停用自己的账号"}
    assert set_disabled(site, token, "agent", "yes").json() == {
        "error": "invalid", "message": "'disabled' must be true or false"}
    grant_users_manage_to_service_manager(site)
    token = site.login("service_manager")
    assert set_disabled(site, token, "admin", True).status_code == 403
    assert set_disabled(site, token, "agent", True).status_code == 200
    assert site.run(lambda: site.admin.users.verify_web_password("admin", PASSWORD))
    # A disabled administrator holds nothing now but is still above a lesser user
    # manager, who may not enable (and so take over) the account.
    site.run(lambda: site.admin.users.set_disabled("admin", True))
    assert set_disabled(site, token, "admin", False).status_code == 403
    demote = site.client.patch(f"/api/v1/users/{site.ids['admin']}", json={"role": "agent"},
                               headers={"X-CSRF-Token": token})
    assert demote.status_code == 403
    assert site.run(lambda: site.admin.users.verify_web_password("admin", PASSWORD)) is None
    assert [e.target for e in site.audit("user.disable")] == ["user:agent"]


def test_users_without_users_manage_cannot_disable_anyone(site: Site) -> None:
    token = site.login("supervisor")
    assert set_disabled(site, token, "agent", True).status_code == 403
    assert site.run(lambda: site.admin.users.verify_web_password("agent", PASSWORD))


def test_a_disabled_users_open_session_ends_on_the_next_request(site: Site) -> None:
    site.login("agent")
    agent_cookies = dict(site.client.cookies)
    assert site.client.get("/api/v1/me").status_code == 200
    token = site.login("admin")
    assert set_disabled(site, token, "agent", True).status_code == 200

    site.client.cookies.clear()
    site.client.cookies.update(agent_cookies)
    response = site.client.get("/api/v1/me")
    assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
    site.client.cookies.update(agent_cookies)  # the 401 may have rewritten the cookie
    page = site.client.get("/desktop")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2Fdesktop")
    # The login page refuses the right password exactly like a wrong one.
    response = site.client.post(
        "/api/v1/session", json={"username": "agent", "password": PASSWORD},
        headers={"X-CSRF-Token": csrf_token(site.client)})
    assert (response.status_code, response.json()["error"]) == (401, "bad_credentials")


def test_edit_page_disables_and_enables_with_its_buttons(site: Site) -> None:
    token = site.login("admin")
    agent = site.ids["agent"]
    page = site.client.get(f"/admin/users/{agent}").text
    assert 'id="user-disable"' in page and 'id="user-enable"' not in page
    own_page = site.client.get(f"/admin/users/{site.ids['admin']}").text
    assert 'id="user-disable"' not in own_page  # no button to lock oneself out

    response = site.client.post(f"/admin/users/{agent}",
                                data={"csrf_token": token, "disabled": "true"})
    assert response.headers["location"] == f"/admin/users/{agent}"
    page = site.client.get(f"/admin/users/{agent}?lang=en").text
    assert '<span class="badge text-bg-danger" id="user-status">Disabled</span>' in page
    assert 'id="user-enable"' in page
    listing = site.client.get("/admin/users?lang=zh").text
    assert '<tr data-username="agent" class="disabled">' in listing and "已停用" in listing

    site.client.post(f"/admin/users/{agent}", data={"csrf_token": token, "disabled": "false"})
    assert site.run(lambda: site.admin.users.verify_web_password("agent", PASSWORD))

    response = site.client.post(f"/admin/users/{site.ids['admin']}",
                                data={"csrf_token": token, "disabled": "true"})
    assert response.status_code == 400 and "不能停用自己的账号" in response.text


def registration(page: str, username: str) -> str:
    """What the user list's phone column says for ``username``."""
    row = page[page.index(f'<tr data-username="{username}"'):]
    cell = row[row.index('<td class="registration"'):]
    return re.sub(r"<[^>]+>", "", cell[:cell.index("</td>") + 5]).strip()


def test_user_list_shows_whose_phone_is_registered_now(site: Site) -> None:
    token = site.login("admin")
    for username, extension in (("zhaolei", "1005"), ("qianli", "1006")):
        create(site, token, username=username, role="agent", extension=extension,
               password=PASSWORD)
    site.registered.add("1005")  # the registrar holds a binding for 1005 only

    page = site.client.get("/admin/users").text
    assert registration(page, "zhaolei") == "已注册"
    assert registration(page, "qianli") == "未注册"
    assert registration(page, "agent") == "无分机"
    english = site.client.get("/admin/users?lang=en").text
    assert registration(english, "zhaolei") == "Registered"
    assert registration(english, "qianli") == "Not registered"
    listed = {u["username"]: u["registered"] for u in
              site.client.get("/api/v1/users").json()["users"]}
    assert (listed["zhaolei"], listed["qianli"], listed["agent"]) == (True, False, False)

    site.registered.clear()  # the phone unregistered (or its binding expired)
    assert registration(site.client.get("/admin/users?lang=zh").text, "zhaolei") == "未注册"
    one = site.client.get(f"/api/v1/users/{site.ids['agent']}").json()
    assert one["registered"] is False
