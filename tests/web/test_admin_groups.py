"""Agent groups 分组 and their permissions from the admin API and pages: changes land in
the database and the audit log; the matrix shows role defaults and the group's setting."""

from __future__ import annotations

from typing import Any

from apps.permissions import BUILT, CATALOGUE, OFFERED, ROLE_DEFAULTS
from apps.users import Role
from tests.web.test_admin_access import Site, site

__all__ = ["site"]


def new_group(site: Site, token: str, name: str, **more: Any) -> dict[str, Any]:
    response = site.client.post("/api/v1/groups", json={"name": name, **more},
                                headers={"X-CSRF-Token": token})
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()
    return group


def test_service_manager_builds_a_group_and_its_membership(site: Site) -> None:
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    group = new_group(site, token, "早班", description="08:00-16:00")
    assert group == {"id": group["id"], "name": "早班", "description": "08:00-16:00",
                     "member_count": 0}
    members_url = f"/api/v1/groups/{group['id']}/members"
    for username in ("agent", "supervisor"):
        response = site.client.post(members_url, json={"user_id": site.ids[username]},
                                    headers=headers)
        assert response.json() == {"added": True}
    again = site.client.post(members_url, json={"user_id": site.ids["agent"]}, headers=headers)
    assert again.json() == {"added": False}
    [listed] = site.client.get("/api/v1/groups").json()["groups"]
    assert listed["member_count"] == 2
    response = site.client.delete(f"{members_url}/{site.ids['agent']}", headers=headers)
    assert response.json() == {"removed": True}
    detail = site.client.get(f"/api/v1/groups/{group['id']}").json()
    assert [m["username"] for m in detail["members"]] == ["supervisor"]

    response = site.client.patch(f"/api/v1/groups/{group['id']}", json={"name": "白班"},
                                 headers=headers)
    assert response.json()["name"] == "白班"
    [stored] = site.run(site.admin.groups.list_groups)
    assert (stored.name, stored.member_count) == ("白班", 1)

    assert site.client.delete(f"/api/v1/groups/{group['id']}",
                              headers=headers).status_code == 204
    assert site.run(site.admin.groups.list_groups) == []
    actions = [e.action for e in reversed(site.audit()) if e.action.startswith("group.")]
    assert actions == ["group.create", "group.add_member", "group.add_member",
                       "group.remove_member", "group.rename", "group.delete"]
    assert {e.actor for e in site.audit() if e.action.startswith("group.")} == {
        "service_manager"}


def test_group_errors_are_clear(site: Site) -> None:
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    group = new_group(site, token, "夜班")
    response = site.client.post("/api/v1/groups", json={"name": "夜班"}, headers=headers)
    assert response.json() == {"error": "invalid",
                               "message": "agent group '夜班' already exists"}
    response = site.client.post("/api/v1/groups", json={"name": "  "}, headers=headers)
    assert response.json()["message"] == "group name must not be empty"
    response = site.client.post(f"/api/v1/groups/{group['id']}/members",
                                json={"user_id": 999}, headers=headers)
    assert response.json() == {"error": "invalid", "message": "no such user 999"}
    response = site.client.post(f"/api/v1/groups/{group['id']}/members",
                                json={"user_id": "agent"}, headers=headers)
    assert response.json()["message"] == "“user_id”必须是 1 到 2147483647 之间的编号"
    response = site.client.get("/api/v1/groups/999?lang=en")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "No such agent group"}


def test_groups_pages_through_forms(site: Site) -> None:
    token = site.login("service_manager")
    response = site.client.post("/admin/groups", data={"csrf_token": token, "name": "VIP组"})
    assert response.status_code == 303
    group_path = response.headers["location"]
    [group] = site.run(site.admin.groups.list_groups)
    assert group_path == f"/admin/groups/{group.id}"
    response = site.client.post(f"{group_path}/members",
                                data={"csrf_token": token, "user_id": site.ids["agent"]})
    assert response.headers["location"] == group_path
    page = site.client.get(group_path)
    assert '<tr data-username="agent">' in page.text
    assert "成员 (1)" in page.text
    assert '<div class="toast-body">已保存</div>' in page.text
    listing = site.client.get("/admin/groups").text
    assert '<td class="member-count text-end">1</td>' in listing
    response = site.client.post(f"{group_path}/members/{site.ids['agent']}/remove",
                                data={"csrf_token": token})
    assert site.run(lambda: site.admin.groups.members(group.id)) == []
    response = site.client.post(group_path, data={"csrf_token": token, "name": "",
                                                  "description": ""})
    assert response.status_code == 400
    assert "&#39;name&#39; is required" in response.text
    response = site.client.post(f"{group_path}/delete", data={"csrf_token": token})
    assert response.headers["location"] == "/admin/groups"
    assert site.run(site.admin.groups.list_groups) == []
    listing = site.client.get("/admin/groups").text
    assert '<div class="toast-body">分组已删除</div>' in listing
    assert '<p class="empty mb-0">暂无分组</p>' in listing
    assert site.client.get(group_path).status_code == 404


def matrix(site: Site, group_id: int) -> dict[str, dict[str, Any]]:
    rows = site.client.get(f"/api/v1/groups/{group_id}/permissions?lang=en").json()
    return {row["name"]: row for row in rows["capabilities"]}


def test_permission_matrix_shows_every_built_capability_with_role_defaults(site: Site) -> None:
    token = site.login("service_manager")
    group = new_group(site, token, "班长组")
    body = site.client.get(f"/api/v1/groups/{group['id']}/permissions").json()
    assert [r["role"] for r in body["roles"]] == [role.value for role in Role]
    rows = {row["name"]: row for row in body["capabilities"]}
    assert list(rows) == [c.name for c in CATALOGUE if c.name in BUILT]
    assert rows["customers.import"]["label"] == "导入客户"
    assert matrix(site, group["id"])["customers.import"]["label"] == "Import customers"
    for capability in OFFERED:
        row = rows[capability.name]
        assert row["state"] == "default"
        assert row["defaults"] == {role.value: capability.name in ROLE_DEFAULTS[role]
                                   for role in Role}
        # A service manager holds everything but the system scope.
        assert row["changeable"] is (capability.scope.value != "system")


def test_grant_revoke_and_back_to_default_change_what_members_may_do(site: Site) -> None:
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    group = new_group(site, token, "质检")
    site.client.post(f"/api/v1/groups/{group['id']}/members",
                     json={"user_id": site.ids["agent"]}, headers=headers)
    url = f"/api/v1/groups/{group['id']}/permissions"

    def agent_may() -> frozenset[str]:
        return site.run(lambda: site.admin.permissions.effective(site.ids["agent"]))

    response = site.client.put(f"{url}/customers.import", json={"state": "granted"},
                               headers=headers)
    assert response.json() == {"capability": "customers.import", "state": "granted",
                               "changed": True}
    assert "customers.import" in agent_may()
    site.client.put(f"{url}/contacts.write", json={"state": "revoked"}, headers=headers)
    assert "contacts.write" not in agent_may()
    assert matrix(site, group["id"])["contacts.write"]["state"] == "revoked"
    response = site.client.put(f"{url}/contacts.write", json={"state": "default"},
                               headers=headers)
    assert response.json()["changed"] is True
    assert "contacts.write" in agent_may()
    response = site.client.put(f"{url}/customers.import", json={"state": "granted"},
                               headers=headers)
    assert response.json()["changed"] is False

    audited = [(e.action, e.detail["capability"], e.actor) for e in reversed(site.audit())
               if e.action.startswith("permission.")]
    assert audited == [("permission.grant", "customers.import", "service_manager"),
                       ("permission.revoke", "contacts.write", "service_manager"),
                       ("permission.clear", "contacts.write", "service_manager")]


def test_nobody_grants_what_they_lack(site: Site) -> None:
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    group = new_group(site, token, "管理员组")
    url = f"/api/v1/groups/{group['id']}/permissions"
    response = site.client.put(f"{url}/users.manage", json={"state": "granted"},
                               headers=headers)
    assert response.status_code == 403
    assert matrix(site, group["id"])["users.manage"]["state"] == "default"
    [denied] = site.audit("permission.denied")
    assert denied.detail["attempted"] == "grant users.manage"
    response = site.client.put(f"{url}/customers.import", json={"state": "maybe"},
                               headers=headers)
    assert response.json() == {"error": "invalid",
                               "message": "state must be one of default, granted, revoked"}
    response = site.client.put(f"{url}/calls.teleport", json={"state": "granted"},
                               headers=headers)
    assert response.status_code == 404
    assert response.json()["message"] == "未知的权限“calls.teleport”"


UNBUILT = ("calls.listen", "calls.barge", "ivr.manage", "reports.view", "sms.send",
           "dialer.run", "calls.dial")


def whole_matrix(site: Site, group_id: int, **changes: str) -> dict[str, str]:
    """The group's matrix as a PUT body names it, with ``changes`` (``customers__import``
    for customers.import)."""
    states = {name: row["state"] for name, row in matrix(site, group_id).items()}
    states.update({name.replace("__", "."): state for name, state in changes.items()})
    return states


def test_permission_page_saves_the_whole_matrix_in_one_action(site: Site) -> None:
    token = site.login("service_manager")
    group = new_group(site, token, "投诉组")
    listing = site.client.get("/admin/permissions")
    assert f'href="/admin/permissions/{group["id"]}"' in listing.text and "投诉组" in listing.text
    url = f"/admin/permissions/{group['id']}"
    page = site.client.get(url).text
    assert "撤销优先" in page
    assert page.count('<form method="post" action="' + url + '"') == 1
    assert page.count('type="submit"') == 3  # the matrix's one save, and the two log-outs
    assert '<tr id="cap-customers.import" data-capability="customers.import" ' \
        'data-state="default">' in page
    for name in UNBUILT:  # features not built yet are not offered
        assert f'cap-{name}"' not in page
    assert "强插" not in page and "发送短信" not in page
    assert "A revoke wins" in site.client.get(f"{url}?lang=en").text
    site.client.get(f"{url}?lang=zh")  # back to Chinese (the choice is a cookie)

    # Two cells changed, the rest sent as they were; one submit.
    form = {f"cap:{name}": state for name, state in whole_matrix(site, group["id"]).items()
            if name != "users.manage"}  # its select is disabled: browsers do not send it
    form.update({"csrf_token": token, "cap:customers.import": "granted",
                 "cap:contacts.write": "revoked"})
    response = site.client.post(url, data=form)
    assert (response.status_code, response.headers["location"]) == (303, url)
    overrides = site.run(lambda: site.admin.permissions.group_overrides(group["id"]))
    assert overrides == {"customers.import": True, "contacts.write": False}
    saved = site.client.get(url).text
    assert '<div class="toast-body">已保存：2 项权限已更改</div>' in saved
    assert "已保存" not in site.client.get(url).text  # said once
    assert 'data-capability="customers.import" data-state="granted"' in saved
    assert 'data-capability="contacts.write" data-state="revoked"' in saved
    [entry] = site.audit("permission.update")
    assert entry.detail == {"group": "投诉组", "changes": {
        "contacts.write": {"before": "default", "after": "revoked"},
        "customers.import": {"before": "default", "after": "granted"}}}
    assert entry.source_ip == "testclient"
    assert [e.action for e in site.audit() if e.action.startswith("permission.")] == [
        "permission.update"]

    response = site.client.post(url, data=form)  # the same again: nothing changes
    assert response.headers["location"] == url
    assert "已保存：没有更改" in site.client.get(url).text
    assert len(site.audit("permission.update")) == 1

    form["cap:users.manage"] = "granted"  # a forged select the page kept disabled
    assert site.client.post(url, data=form).status_code == 403
    form["cap:users.manage"], form["cap:calls.barge"] = "default", "granted"
    refused = site.client.post(url, data=form)
    assert refused.status_code == 400
    assert "权限“calls.barge”对应的功能尚未上线，不能设置" in refused.text


def test_the_api_saves_the_whole_matrix_in_one_call_or_nothing(site: Site) -> None:
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    group = new_group(site, token, "质检")
    url = f"/api/v1/groups/{group['id']}/permissions"
    body = whole_matrix(site, group["id"], customers__import="granted",
                        contacts__write="revoked")
    response = site.client.put(url, json={"capabilities": body}, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["changed"] == {"customers.import": "granted", "contacts.write": "revoked"}
    assert {r["name"]: r["state"] for r in answer["capabilities"]} == body
    assert len(site.audit("permission.update")) == 1

    # All or nothing: a change the caller may not make refuses the whole matrix.
    forged = {**body, "customers.import": "default", "users.manage": "granted"}
    response = site.client.put(url, json={"capabilities": forged}, headers=headers)
    assert response.status_code == 403
    assert matrix(site, group["id"])["customers.import"]["state"] == "granted"
    [denied] = site.audit("permission.denied")
    assert denied.detail["missing"] == ["users.manage"]
    assert denied.source_ip == "testclient"

    def refused(states: object, lang: str = "en") -> str:
        response = site.client.put(f"{url}?lang={lang}", json={"capabilities": states},
                                   headers=headers)
        assert response.status_code == 400, response.text
        message: str = response.json()["message"]
        return message

    assert refused({**body, "calls.barge": "granted"}) == (
        "'calls.barge' belongs to a feature that is not built yet and cannot be set")
    assert refused({**body, "calls.teleport": "granted"}) == "unknown capability 'calls.teleport'"
    partial = {k: v for k, v in body.items() if k not in ("audit.view", "users.manage")}
    assert refused(partial) == "the matrix must set every capability; missing: audit.view, " \
        "users.manage"
    assert refused(partial, "zh") == "整张权限表必须包含每一项权限，缺少：audit.view, users.manage"
    assert refused({**body, "audit.view": "yes"}) == (
        "the setting of 'audit.view' must be one of default, granted, revoked")
    assert refused(["customers.import"]) == (
        "'capabilities' must be an object of capability name to setting")
    assert len(site.audit("permission.update")) == 1

    response = site.client.put(f"{url}/calls.listen?lang=en", json={"state": "granted"},
                               headers=headers)
    assert response.status_code == 404
    assert response.json()["message"] == (
        "'calls.listen' belongs to a feature that is not built yet and cannot be set")
    assert site.run(lambda: site.admin.permissions.group_overrides(group["id"])) == {
        "customers.import": True, "contacts.write": False}


def test_unbuilt_capabilities_stay_in_the_data_model() -> None:
    assert set(UNBUILT) <= {c.name for c in CATALOGUE} - BUILT
    assert {c.name for c in CATALOGUE} > BUILT
    assert [c.name for c in OFFERED] == [c.name for c in CATALOGUE if c.name in BUILT]
    assert "calls.listen" in ROLE_DEFAULTS[Role.supervisor]
