"""Agent groups 分组 and their permissions from the admin API and pages: changes land in
the database and the audit log; the matrix shows role defaults and the group's setting."""

from __future__ import annotations

from typing import Any

from apps.permissions import CATALOGUE, ROLE_DEFAULTS
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
    listing = site.client.get("/admin/groups").text
    assert '<td class="member-count">1</td>' in listing
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
    assert site.client.get(group_path).status_code == 404


def matrix(site: Site, group_id: int) -> dict[str, dict[str, Any]]:
    rows = site.client.get(f"/api/v1/groups/{group_id}/permissions?lang=en").json()
    return {row["name"]: row for row in rows["capabilities"]}


def test_permission_matrix_shows_every_capability_with_role_defaults(site: Site) -> None:
    token = site.login("service_manager")
    group = new_group(site, token, "班长组")
    body = site.client.get(f"/api/v1/groups/{group['id']}/permissions").json()
    assert [r["role"] for r in body["roles"]] == [role.value for role in Role]
    rows = {row["name"]: row for row in body["capabilities"]}
    assert list(rows) == [c.name for c in CATALOGUE]
    assert rows["calls.barge"]["label"] == "强插"
    assert matrix(site, group["id"])["calls.barge"]["label"] == "Barge in"
    for capability in CATALOGUE:
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

    response = site.client.put(f"{url}/calls.listen", json={"state": "granted"},
                               headers=headers)
    assert response.json() == {"capability": "calls.listen", "state": "granted",
                               "changed": True}
    assert "calls.listen" in agent_may()
    site.client.put(f"{url}/calls.dial", json={"state": "revoked"}, headers=headers)
    assert "calls.dial" not in agent_may()
    assert matrix(site, group["id"])["calls.dial"]["state"] == "revoked"
    response = site.client.put(f"{url}/calls.dial", json={"state": "default"},
                               headers=headers)
    assert response.json()["changed"] is True
    assert "calls.dial" in agent_may()
    response = site.client.put(f"{url}/calls.listen", json={"state": "granted"},
                               headers=headers)
    assert response.json()["changed"] is False

    audited = [(e.action, e.detail["capability"], e.actor) for e in reversed(site.audit())
               if e.action.startswith("permission.")]
    assert audited == [("permission.grant", "calls.listen", "service_manager"),
                       ("permission.revoke", "calls.dial", "service_manager"),
                       ("permission.clear", "calls.dial", "service_manager")]


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
    response = site.client.put(f"{url}/calls.listen", json={"state": "maybe"}, headers=headers)
    assert response.json() == {"error": "invalid",
                               "message": "state must be one of default, granted, revoked"}
    response = site.client.put(f"{url}/calls.teleport", json={"state": "granted"},
                               headers=headers)
    assert response.status_code == 404
    assert response.json()["message"] == "unknown capability 'calls.teleport'"


def test_permission_pages_list_groups_and_change_one_capability(site: Site) -> None:
    token = site.login("service_manager")
    group = new_group(site, token, "投诉组")
    listing = site.client.get("/admin/permissions")
    assert f'<a href="/admin/permissions/{group["id"]}">投诉组</a>' in listing.text
    page = site.client.get(f"/admin/permissions/{group['id']}")
    assert "撤销优先" in page.text
    assert '<tr id="cap-calls.barge" data-capability="calls.barge" data-state="default">' in (
        page.text)
    assert "A revoke wins" in site.client.get(f"/admin/permissions/{group['id']}?lang=en").text
    response = site.client.post(f"/admin/permissions/{group['id']}", data={
        "csrf_token": token, "capability": "reports.export", "state": "revoked"})
    assert response.status_code == 303
    overrides = site.run(lambda: site.admin.permissions.group_overrides(group["id"]))
    assert overrides == {"reports.export": False}
    page = site.client.get(f"/admin/permissions/{group['id']}")
    assert 'data-capability="reports.export" data-state="revoked"' in page.text
    response = site.client.post(f"/admin/permissions/{group['id']}", data={
        "csrf_token": token, "capability": "users.manage", "state": "granted"})
    assert response.status_code == 403
