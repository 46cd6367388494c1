"""Queues 队列 from the admin API and pages: changes land in the database and the audit
log (readable in Chinese), refusals are exact and in the caller's language."""

from __future__ import annotations

from typing import Any

from apps.audit import AuditEntry
from tests.web.test_admin_access import Site, site
from web.audit_text import summary

__all__ = ["site"]


def new_queue(site: Site, token: str, **body: Any) -> dict[str, Any]:
    response = site.client.post("/api/v1/queues", json=body, headers={"X-CSRF-Token": token})
    assert response.status_code == 201, response.text
    queue: dict[str, Any] = response.json()
    return queue


def test_service_manager_creates_lists_changes_and_deletes_a_queue(site: Site) -> None:
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    queue = new_queue(site, token, name="service", display_name="服务台",
                      strategy="longest_idle", members=["agent", "supervisor"])
    assert {k: v for k, v in queue.items() if not k.endswith("_at")} == {
        "name": "service", "display_name": "服务台", "strategy": "longest_idle",
        "ring_timeout_s": 15, "wrap_up_s": 30, "max_wait_s": None, "overflow_target": None,
        "members": [{"username": "agent", "name": "agent name", "penalty": 0},
                    {"username": "supervisor", "name": "supervisor name", "penalty": 0}],
        "waiting": None,
    }
    [listed] = site.client.get("/api/v1/queues").json()["queues"]
    assert listed == queue
    assert site.client.get("/api/v1/queues/service").json() == queue

    response = site.client.put("/api/v1/queues/service", headers=headers, json={
        "strategy": "ring_all", "ring_timeout_s": 20,
        "members": [{"username": "shift_leader", "penalty": 1}, "agent"]})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["strategy"], changed["ring_timeout_s"], changed["display_name"]) == (
        "ring_all", 20, "服务台")
    assert [(m["username"], m["penalty"]) for m in changed["members"]] == [
        ("agent", 0), ("shift_leader", 1)]

    assert site.client.delete("/api/v1/queues/service", headers=headers).status_code == 204
    assert site.client.get("/api/v1/queues").json() == {"queues": []}
    assert site.client.get("/api/v1/queues/service").status_code == 404

    entries = [e for e in reversed(site.audit()) if e.action.startswith("queue.")]
    assert [e.action for e in entries] == ["queue.create", "queue.update", "queue.delete"]
    assert {e.actor for e in entries} == {"service_manager"}
    assert all(e.source_ip == "testclient" for e in entries)
    assert [summary("zh", e) for e in entries] == [
        "新建队列 service（服务台）：策略 最长空闲，成员 agent, supervisor",
        "修改队列 service：分配策略 最长空闲 → 全部振铃；座席振铃超时（秒） 15 → 20；"
        "成员座席 agent, supervisor → agent, shift_leader",
        "删除队列 service（服务台，2 名成员）",
    ]
    assert summary("en", entries[0]) == (
        "created queue service (服务台): strategy Longest idle, members agent, supervisor")


def test_bad_input_is_refused_with_a_clear_message_in_chinese(site: Site) -> None:
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    new_queue(site, token, name="sales", display_name="销售")
    site.run(lambda: site.admin.users.set_disabled("account_manager", True))
    cases: list[tuple[str, str, object, str]] = [
        ("POST", "/api/v1/queues", {"name": "sales", "display_name": "x"}, "队列“sales”已存在"),
        ("POST", "/api/v1/queues", {"name": "Sales Desk", "display_name": "x"},
         "队列标识须为 1 到 64 个小写字母、数字、- 或 _，并以字母或数字开头"),
        ("POST", "/api/v1/queues", {"name": "a", "display_name": "x", "strategy": "fastest"},
         "未知的分配策略“fastest”（可选：longest_idle, round_robin, fewest_calls, "
         "least_talk_time, ring_all, linear, random）"),
        ("POST", "/api/v1/queues", {"name": "a", "display_name": "x", "members": ["nobody"]},
         "用户“nobody”不存在"),
        ("POST", "/api/v1/queues",
         {"name": "a", "display_name": "x", "members": ["account_manager"]},
         "用户“account_manager”已停用，不能加入队列"),
        ("POST", "/api/v1/queues", {"name": "a", "display_name": "x", "members": "agent"},
         "“members”必须是用户名列表"),
        ("POST", "/api/v1/queues",
         {"name": "a", "display_name": "x", "members": ["agent", "agent"]},
         "用户“agent”在成员中重复出现"),
        ("POST", "/api/v1/queues", {"name": "a"}, "请填写显示名称"),
        ("POST", "/api/v1/queues", {"name": "a", "display_name": "x", "ring_timeout_s": "5s"},
         "“ring_timeout_s”必须是 1 到 600 之间的整数"),
        ("POST", "/api/v1/queues", {"name": "a", "display_name": "x", "wrap_up_s": True},
         "“wrap_up_s”必须是 0 到 3600 之间的整数"),
        ("POST", "/api/v1/queues", [], "请求正文必须是一个 JSON 对象"),
        ("PUT", "/api/v1/queues/sales", {"name": "other"}, "队列标识创建后不可更改"),
        ("PUT", "/api/v1/queues/sales", {"max_wait_s": 0},
         "“max_wait_s”必须是 1 到 86400 之间的整数"),
    ]
    wrong = []
    for method, path, body, message in cases:
        response = site.client.request(method, path, json=body, headers=headers)
        got = (response.status_code, response.json().get("message"))
        if got != (400, message):
            wrong.append((body, got))
    assert wrong == []
    english = site.client.post("/api/v1/queues?lang=en", headers=headers,
                               json={"name": "a", "display_name": "x", "strategy": "x"})
    assert english.json()["message"] == (
        "Unknown strategy 'x' (choose from longest_idle, round_robin, fewest_calls, "
        "least_talk_time, ring_all, linear, random)")
    not_found = site.client.put("/api/v1/queues/nothere", json={}, headers=headers)
    assert not_found.status_code == 404
    assert not_found.json()["message"] == "队列不存在"
    assert [q.name for q in site.run(site.admin.queues.list_queues)] == ["sales"]


def test_without_queues_manage_the_api_refuses_and_changes_nothing(site: Site) -> None:
    token = site.login("service_manager")
    new_queue(site, token, name="sales", display_name="销售")
    for role in ("agent", "supervisor", "shift_leader"):
        token = site.login(role)
        headers = {"X-CSRF-Token": token}
        assert site.client.get("/api/v1/queues").status_code == 403
        assert site.client.post("/api/v1/queues", headers=headers,
                                json={"name": "x", "display_name": "x"}).status_code == 403
        assert site.client.put("/api/v1/queues/sales", headers=headers,
                               json={"display_name": "y"}).status_code == 403
        assert site.client.delete("/api/v1/queues/sales", headers=headers).status_code == 403
        assert 'href="/admin/queues"' not in site.client.get("/desktop").text
    [queue] = site.run(site.admin.queues.list_queues)
    assert queue.display_name == "销售"


def test_queue_pages_create_edit_and_delete_through_forms(site: Site) -> None:
    token = site.login("service_manager")
    page = site.client.get("/admin/queues")
    assert page.status_code == 200
    assert 'href="/admin/queues"' in page.text
    assert 'id="queues-empty"' in page.text
    response = site.client.post("/admin/queues", data={
        "csrf_token": token, "name": "vip", "display_name": "VIP 专席",
        "strategy": "linear", "ring_timeout_s": "10", "wrap_up_s": "20", "max_wait_s": "",
        "overflow_target": "", "members": ["agent", "supervisor"], "penalty.agent": "2",
        "penalty.supervisor": "0"})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/queues/vip"
    queue = site.run(lambda: site.admin.queues.get("vip"))
    assert (queue.strategy.value, queue.ring_timeout_s, queue.wrap_up_s) == ("linear", 10, 20)
    assert [(m.username, m.penalty) for m in queue.members] == [
        ("supervisor", 0), ("agent", 2)]

    edit = site.client.get("/admin/queues/vip")
    assert 'value="VIP 专席"' in edit.text
    assert 'id="member-agent" checked' in edit.text
    refused = site.client.post("/admin/queues/vip", data={
        "csrf_token": token, "display_name": "VIP", "strategy": "linear",
        "ring_timeout_s": "0", "wrap_up_s": "20"})
    assert refused.status_code == 400
    assert "“ring_timeout_s”必须是 1 到 600 之间的整数" in refused.text
    saved = site.client.post("/admin/queues/vip", data={
        "csrf_token": token, "display_name": "VIP", "strategy": "random",
        "ring_timeout_s": "12", "wrap_up_s": "20", "members": ["agent"]})
    assert saved.status_code == 303
    queue = site.run(lambda: site.admin.queues.get("vip"))
    assert (queue.display_name, queue.strategy.value) == ("VIP", "random")
    assert [m.username for m in queue.members] == ["agent"]

    duplicate = site.client.post("/admin/queues", data={
        "csrf_token": token, "name": "vip", "display_name": "x", "ring_timeout_s": "15",
        "wrap_up_s": "30"})
    assert duplicate.status_code == 400
    assert "队列“vip”已存在" in duplicate.text

    deleted = site.client.post("/admin/queues/vip/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert site.run(site.admin.queues.list_queues) == []
    audited: list[AuditEntry] = site.audit()
    assert [e.action for e in reversed(audited) if e.action.startswith("queue.")] == [
        "queue.create", "queue.update", "queue.delete"]
