"""The audit log from the admin API and page: newest first, filtered by action or user."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from apps.audit import COMMAND_LINE, MAX_RECENT_LIMIT
from tests.web.test_admin_access import Site, site
from web.admin_audit import DEFAULT_LIMIT, AuditFilter, BadFilter

__all__ = ["site"]


def make_history(site: Site) -> None:
    """Logins of three users, a failed one, and a group the service manager creates."""
    site.login("agent")
    site.client.post("/api/v1/session", json={"username": "agent", "password": "wrong pw"},
                     headers={"X-CSRF-Token": site.login("supervisor")})
    token = site.login("service_manager")
    site.client.post("/api/v1/groups", json={"name": "早班"}, headers={"X-CSRF-Token": token})


def test_entries_come_newest_first_with_who_what_and_where(site: Site) -> None:
    make_history(site)
    entries = site.client.get("/api/v1/audit").json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("service_manager", "group.create"),
        ("service_manager", "login"),
        ("agent", "login_failed"),
        ("supervisor", "login"),
        ("agent", "login"),
    ]
    newest = entries[0]
    assert newest["actor_id"] == site.ids["service_manager"]
    assert newest["target"].startswith("agent_group:")
    assert newest["detail"] == {"name": "早班"}
    assert entries[1]["source_ip"] == "testclient"
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert entries[0]["at"].endswith("+00:00")


def test_filters_by_action_and_by_user(site: Site) -> None:
    make_history(site)

    def actions(query: str) -> list[tuple[str, str]]:
        response = site.client.get(f"/api/v1/audit?{query}")
        assert response.status_code == 200, response.text
        return [(e["actor"], e["action"]) for e in response.json()["entries"]]

    assert actions("action=login") == [("service_manager", "login"), ("supervisor", "login"),
                                       ("agent", "login")]
    assert actions("user=service_manager") == [("service_manager", "group.create"),
                                               ("service_manager", "login")]
    assert actions("user=service_manager&action=login") == [("service_manager", "login")]
    assert actions("user=nobody") == []
    assert actions("limit=2") == [("service_manager", "group.create"),
                                  ("service_manager", "login")]
    response = site.client.get("/api/v1/audit?limit=0")
    assert response.json() == {"error": "invalid",
                               "message": "limit must be a whole number from 1 to 1000"}


def cells(page: str, column: str) -> list[str]:
    """The text of one column of the audit table, top to bottom."""
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in
            re.findall(rf'<td class="{column}[^"]*">(.*?)</td>', page, re.S)]


def test_audit_page_shows_and_filters_entries_in_both_languages(site: Site) -> None:
    make_history(site)
    page = site.client.get("/admin/audit").text
    assert '<h1 class="h3 mb-3">审计日志</h1>' in page
    assert cells(page, "action") == ["新建分组", "登录", "登录失败", "登录", "登录"]
    assert cells(page, "summary") == ["新建分组 早班", "", "用户名或密码错误", "", ""]
    assert cells(page, "source") == ["testclient"] * 5
    assert "{&#34;" not in page and "login_failed</td>" not in page  # no JSON, no codes
    filtered = site.client.get("/admin/audit?action=login_failed&lang=en").text
    assert '<h1 class="h3 mb-3">Audit log</h1>' in filtered
    assert cells(filtered, "action") == ["Failed login"]
    assert cells(filtered, "summary") == ["wrong username or password"]
    assert '<option value="login_failed" selected>Failed login</option>' in filtered
    empty = site.client.get("/admin/audit?user=nobody&lang=zh")
    assert "没有符合条件的记录" in empty.text
    bad = site.client.get("/admin/audit?limit=abc")
    assert bad.status_code == 400
    assert "limit must be a whole number from 1 to 1000" in bad.text


def test_changes_read_as_sentences_in_the_pages_language(site: Site) -> None:
    token = site.login("admin")
    headers = {"X-CSRF-Token": token}
    made = site.client.post("/api/v1/users", headers=headers, json={
        "username": "zhangsan", "role": "agent", "extension": "1001",
        "password": "long enough"}).json()
    site.client.patch(f"/api/v1/users/{made['id']}", headers=headers,
                      json={"role": "supervisor", "name": "张三"})
    group = site.client.post("/api/v1/groups", json={"name": "早班"}, headers=headers).json()
    body = {row["name"]: row["state"] for row in site.client.get(
        f"/api/v1/groups/{group['id']}/permissions").json()["capabilities"]}
    site.client.put(f"/api/v1/groups/{group['id']}/permissions", headers=headers, json={
        "capabilities": {**body, "customers.import": "granted", "contacts.write": "revoked"}})

    page = site.client.get("/admin/audit?lang=zh").text
    summaries = cells(page, "summary")
    assert summaries[:4] == [
        "分组 早班：填写沟通记录 按角色默认 → 撤销；导入客户 按角色默认 → 授予",
        "新建分组 早班",
        "修改用户 zhangsan：姓名 （空） → 张三；角色 普通座席 → 班长座席",
        "新建用户 zhangsan：角色 普通座席，分机 1001",
    ]
    assert cells(page, "action")[:4] == ["修改分组权限", "新建分组", "修改用户", "新建用户"]
    english = site.client.get("/admin/audit?lang=en").text
    assert cells(english, "summary")[2] == (
        "changed user zhangsan: name (none) → 张三; role Agent → Supervisor")

    newest = site.client.get("/api/v1/audit?limit=1&lang=zh").json()["entries"][0]
    assert newest["action"] == "permission.update"  # the raw fields stay
    assert newest["detail"]["changes"]["customers.import"] == {
        "before": "default", "after": "granted"}
    assert newest["source_ip"] == "testclient"
    assert (newest["label"], newest["source"]) == ("修改分组权限", "testclient")
    assert newest["summary"] == summaries[0]


def test_every_entry_says_where_it_came_from(site: Site) -> None:
    """Every action the admin pages and API audit records the caller's address; the
    command line is named; an entry from before addresses were recorded shows a dash."""
    token = site.login("service_manager")
    headers = {"X-CSRF-Token": token}
    group = site.client.post("/api/v1/groups", json={"name": "早班"}, headers=headers).json()
    members = f"/api/v1/groups/{group['id']}/members"
    site.client.post(members, json={"user_id": site.ids["agent"]}, headers=headers)
    site.client.delete(f"{members}/{site.ids['agent']}", headers=headers)
    site.client.patch(f"/api/v1/groups/{group['id']}", headers=headers,
                      json={"name": "白班", "description": "08:00-16:00"})
    permissions = f"/api/v1/groups/{group['id']}/permissions"
    site.client.put(f"{permissions}/customers.import", json={"state": "granted"},
                    headers=headers)
    site.client.put(f"{permissions}/users.manage", json={"state": "granted"},
                    headers=headers)  # refused, and audited as such
    site.client.delete(f"/api/v1/groups/{group['id']}", headers=headers)
    token = site.login("admin")
    headers = {"X-CSRF-Token": token}
    user = site.client.post("/api/v1/users", headers=headers, json={
        "username": "lisi", "role": "agent", "password": "long enough"}).json()
    user_url = f"/api/v1/users/{user['id']}"
    site.client.patch(user_url, json={"role": "supervisor"}, headers=headers)
    site.client.patch(user_url, json={"disabled": True}, headers=headers)
    site.client.patch(user_url, json={"disabled": False}, headers=headers)
    site.client.post(f"{user_url}/password", json={"password": "another one"}, headers=headers)
    site.client.delete(f"{user_url}/sessions", headers=headers)
    site.client.delete("/api/v1/session", headers=headers)

    entries = site.audit()
    assert {e.action for e in entries} == {
        "login", "group.create", "group.add_member", "group.remove_member", "group.rename",
        "group.describe", "permission.grant", "permission.denied", "group.delete",
        "user.create", "user.update", "user.disable", "user.enable", "user.password_reset",
        "user.sessions_end", "logout"}
    assert {e.source_ip for e in entries} == {"testclient"}

    site.run(lambda: site.admin.audit.record("user.disable", target="user:lisi",
                                             source_ip=COMMAND_LINE))
    site.run(lambda: site.admin.audit.record("login", actor="wangwu", target="wangwu"))
    site.login("admin")
    api = site.client.get("/api/v1/audit?limit=3&lang=zh").json()["entries"]
    assert [(e["action"], e["source_ip"], e["source"]) for e in api] == [
        ("login", "testclient", "testclient"),
        ("login", None, "—"),
        ("user.disable", "command-line", "命令行")]
    page = site.client.get("/admin/audit?limit=3&lang=en").text
    assert cells(page, "source") == ["testclient", "—", "command line"]
    assert cells(page, "summary")[2] == "disabled lisi"


def test_an_unknown_action_shows_its_detail_as_plain_pairs(site: Site) -> None:
    site.run(lambda: site.admin.audit.record(
        "recording.download", actor="supervisor", target="call:42",
        detail={"file": "42.wav", "bytes": 1024}, source_ip="10.0.0.7"))
    site.login("admin")
    [entry] = [e for e in site.client.get("/api/v1/audit?lang=zh").json()["entries"]
               if e["action"] == "recording.download"]
    assert (entry["label"], entry["summary"]) == ("recording.download",
                                                  "bytes: 1024；file: 42.wav")


@given(st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 2000).map(str)))
def test_the_limit_filter_is_a_whole_number_in_range_or_a_clear_error(raw: str | None) -> None:
    query = {} if raw is None else {"limit": raw}
    try:
        wanted = AuditFilter.parse(query)
    except BadFilter as exc:
        assert str(exc) == "limit must be a whole number from 1 to 1000"
        assert raw is not None and not (raw.isascii() and raw.isdigit()
                                        and 1 <= int(raw) <= MAX_RECENT_LIMIT)
    else:
        assert wanted.limit == (DEFAULT_LIMIT if not raw else int(raw))
        assert 1 <= wanted.limit <= MAX_RECENT_LIMIT
