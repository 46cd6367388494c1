"""Customer pages and API on a real SQLite database with the real services: search by name
and by a number in any spelling, view, edit (phones normalised, bad numbers and numbers
of other customers refused with nothing changed), contact records; who may do what,
table-driven over the six roles with their default capabilities, refusals through an
agent-group revoke, and fields only editors of every customer change.

The ``stack`` fixture serves the admin pages too: other modules use it as the whole
web UI on a real database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st

from apps import Database, Role, UserRecord, UserService, WebSessionStore, upgrade_database
from apps.agent_groups import GroupService
from apps.audit import SYSTEM, AuditLog
from apps.contacts import ContactRecordService
from apps.customer_import import CustomerImporter
from apps.customers import CustomerRecord, CustomerService
from apps.permissions import PermissionService
from apps.queues import QueueService
from tests.web.conftest import PASSWORD, SECRET, TestClient, login
from web import WebServices, WebSettings, create_app
from web import admin as web_admin
from web import customer_import_routes as import_routes
from web import customers as customer_routes

T = TypeVar("T")
MAX_UPLOAD_BYTES = 100_000


@dataclass
class Stack:
    """The app on a fresh database, with one user per role (username = role name) and a
    second account manager, "am2"."""

    client: TestClient
    db: Database
    users: dict[str, UserRecord]
    customers: CustomerService
    contacts: ContactRecordService
    audit: AuditLog
    groups: GroupService
    permissions: PermissionService
    web: WebServices
    work_dir: Path

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the app's event loop (where the database pool lives)."""
        async def call() -> T:
            return await fn(*args, **kwargs)
        assert self.client.portal is not None  # inside the client's with-block
        return self.client.portal.call(call)

    def login_as(self, username: str) -> str:
        self.client.cookies.clear()
        return login(self.client, username, PASSWORD)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    url = f"sqlite:///{tmp_path / 'callcenter.db'}"
    db = asyncio.run(Database.connect(url))  # opens nothing yet: no loop is bound here
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    users = UserService(db, "callcenter.test", password_hasher=hasher)
    audit = AuditLog(db)
    permissions = PermissionService(db, audit)
    web = WebServices(users=users, sessions=WebSessionStore(db, idle_timeout_s=3600),
                      permissions_of=permissions.effective, audit=audit,
                      secret_key=SECRET, settings=WebSettings(session_max_age_s=3600))
    customers, contacts = CustomerService(db), ContactRecordService(db)
    groups = GroupService(db, audit)
    work_dir = tmp_path / "imports"
    app = create_app(
        web,
        routes=[
            *web_admin.routes(web_admin.AdminServices(users, groups, permissions, audit,
                                                     queues=QueueService(db, audit))),
            *customer_routes.routes(
                customer_routes.CustomerWebServices(customers, contacts, users, audit)),
            *import_routes.routes(import_routes.ImportWebServices(
                CustomerImporter(db, batch_rows=2), audit, work_dir,
                max_upload_bytes=MAX_UPLOAD_BYTES)),
        ],
        nav=[*web_admin.NAV, *customer_routes.NAV, *import_routes.NAV],
    )
    with TestClient(app, follow_redirects=False) as client:
        assert client.portal is not None
        client.portal.call(upgrade_database, url)

        async def add_users() -> dict[str, UserRecord]:
            made = {role.value: await users.add_user(role.value, PASSWORD, role=role,
                                                     name=f"{role.label}")
                    for role in Role}
            made["am2"] = await users.add_user("am2", PASSWORD, role=Role.account_manager,
                                               name="李经理")
            return made

        made = client.portal.call(add_users)
        yield Stack(client, db, made, customers, contacts, audit, groups, permissions, web,
                    work_dir)
        client.portal.call(customers.close)  # the caller lookup holds a connection
        client.portal.call(db.close)


def add_customer(stack: Stack, name: str, *phones: str, **kwargs: Any) -> CustomerRecord:
    return stack.run(stack.customers.create_customer, name, phones=list(phones), **kwargs)


def names(response: Any) -> list[str]:
    return [c["name"] for c in response.json()["customers"]]


# ---- search ---------------------------------------------------------------------------------


def test_search_finds_by_name_and_by_a_number_written_another_way(stack: Stack) -> None:
    add_customer(stack, "王小明", "13800138000")
    add_customer(stack, "赵丽", "01088886666")
    add_customer(stack, "Acme Trading", "+86 755 2345 6789")
    stack.login_as("agent")
    assert names(stack.client.get("/api/v1/customers", params={"q": "小明"})) == ["王小明"]
    assert names(stack.client.get("/api/v1/customers", params={"q": "acme"})) == [
        "Acme Trading"]
    for spelling in ("+86 138-0013-8000", "8613800138000", "138 0013 8000"):
        found = stack.client.get("/api/v1/customers", params={"q": spelling})
        assert names(found) == ["王小明"], spelling
    assert names(stack.client.get("/api/v1/customers", params={"q": "(010) 8888-6666"})) == [
        "赵丽"]
    page = stack.client.get("/customers", params={"q": "+86 138 0013 8000"})
    assert page.status_code == 200
    assert "王小明" in page.text and "赵丽" not in page.text
    assert "共 1 位客户" in page.text


def test_search_is_paged(stack: Stack) -> None:
    for i in range(25):
        add_customer(stack, f"客户{i:02d}", f"139{i:08d}")
    stack.login_as("agent")
    first = stack.client.get("/api/v1/customers", params={"limit": 10}).json()
    second = stack.client.get("/api/v1/customers", params={"limit": 10, "offset": 10}).json()
    assert first["total"] == second["total"] == 25
    assert [c["name"] for c in first["customers"]] == [f"客户{i:02d}" for i in range(10)]
    assert [c["name"] for c in second["customers"]] == [f"客户{i:02d}" for i in range(10, 20)]
    assert stack.client.get("/api/v1/customers", params={"limit": 0}).status_code == 400
    page2 = stack.client.get("/customers", params={"page": 2})
    assert "客户20" in page2.text and "客户19" not in page2.text
    assert "第 2 页，共 2 页" in page2.text and 'aria-current="page">2</a>' in page2.text
    empty = stack.client.get("/customers", params={"q": "没有这个人"})
    assert '<p class="empty mb-0">没有找到客户</p>' in empty.text


# ---- view -----------------------------------------------------------------------------------


def test_view_shows_group_phones_vip_manager_custom_fields_and_last_contacts(
        stack: Stack) -> None:
    manager = stack.users["account_manager"]
    group = stack.run(stack.customers.create_group, "G001", "华信集团", vip_level=3,
                      account_manager_id=manager.id)
    customer = add_customer(stack, "王小明", "13800138000", "01088886666", group_id=group.id,
                            title="采购经理", vip_level=1, custom_fields={"合同号": "HT-7"})
    for i in range(12):
        stack.run(stack.contacts.add, customer.id, "phone", f"第{i}次通话",
                  agent_id=stack.users["agent"].id)
    stack.login_as("agent")
    body = stack.client.get(f"/api/v1/customers/{customer.id}").json()
    assert body["group"]["name"] == "华信集团"
    # One level everywhere: the group's 钻石卡 (3) outranks the member's own 银卡 (1).
    assert (body["vip_level"], body["vip_level_name"], body["own_vip_level"]) \
        == (3, "钻石卡", 1)
    assert (body["group"]["vip_level"], body["group"]["vip_level_name"]) == (3, "钻石卡")
    assert body["account_manager"]["username"] == "account_manager"
    assert [p["number"] for p in body["phones"]] == ["01088886666", "13800138000"]
    assert body["custom_fields"] == {"合同号": "HT-7"}
    assert len(body["contacts"]) == customer_routes.LAST_CONTACTS
    assert body["contacts"][0]["text"] == "第11次通话"
    assert body["can_edit"] is False
    page = stack.client.get(f"/customers/{customer.id}")
    assert page.status_code == 200
    for shown in ("华信集团 (G001)", "采购经理", "HT-7", "第11次通话", "13800138000"):
        assert shown in page.text
    assert "第1次通话" not in page.text  # only the last ten
    # Times as the staff read them: Beijing time to the minute, never a raw ISO string.
    first_shown = datetime.fromisoformat(body["contacts"][0]["at"])
    local = first_shown.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert f'>{local}</time>' in page.text
    assert f'>{body["contacts"][0]["at"]}<' not in page.text
    assert 'id="customer-edit"' not in page.text
    english = stack.client.get(f"/customers/{customer.id}", params={"lang": "en"})
    assert "Contact records" in english.text
    assert stack.client.get("/api/v1/customers/999").status_code == 404
    assert stack.client.get("/customers/999").status_code == 404


# ---- edit -----------------------------------------------------------------------------------


def test_edit_form_changes_fields_and_phones_normalised(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000", custom_fields={"积分": 120})
    token = stack.login_as("service_manager")
    form = stack.client.get(f"/customers/{customer.id}/edit")
    assert form.status_code == 200 and "积分=120" in form.text
    # The level is chosen by name; the form sends its rank.
    assert re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', form.text)[:4] == [
        ("3", "钻石卡"), ("2", "金卡"), ("1", "银卡"), ("0", "普通")]
    response = stack.client.post(f"/customers/{customer.id}/edit", data={
        "csrf_token": token, "name": "王晓明", "title": "总经理", "vip_level": "2",
        "account_manager_id": str(stack.users["am2"].id),
        "remove_phone": "13800138000", "new_phone": "+86 (10) 8888-6666",
        "new_phone_label": "办公", "custom_fields": "积分=120\n行业=制造"})
    assert response.status_code == 303, response.text
    after = stack.run(stack.customers.get_customer, customer.id)
    assert after is not None
    assert (after.name, after.title, after.vip_level) == ("王晓明", "总经理", 2)
    assert after.account_manager_id == stack.users["am2"].id
    assert [(p.number, p.label) for p in after.phones] == [("01088886666", "办公")]
    assert dict(after.custom_fields) == {"积分": 120, "行业": "制造"}  # 120 stays a number
    shown = stack.client.get(response.headers["location"])
    assert '<div class="toast-body">已保存</div>' in shown.text  # a toast says it is saved
    assert re.search(r'id="customer-vip"[^>]*>金卡<', shown.text)


def test_a_bad_number_is_shown_and_nothing_changes(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    token = stack.login_as("admin")
    response = stack.client.post(f"/customers/{customer.id}/edit", data={
        "csrf_token": token, "name": "改了名", "vip_level": "0", "new_phone": "10086"})
    assert response.status_code == 400
    assert ("保存失败：invalid phone number &#39;10086&#39;: a short service number is no "
            "customer&#39;s number") in response.text
    api = stack.client.patch(f"/api/v1/customers/{customer.id}",
                             json={"name": "又改了", "add_phones": ["12ab"]},
                             headers={"X-CSRF-Token": token})
    assert api.status_code == 400
    assert api.json()["message"].startswith("invalid phone number '12ab'")
    after = stack.run(stack.customers.get_customer, customer.id)
    assert after is not None and after.name == "王小明"
    assert [p.number for p in after.phones] == ["13800138000"]


def test_api_edit_adds_and_removes_phones(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    token = stack.login_as("admin")
    response = stack.client.patch(
        f"/api/v1/customers/{customer.id}",
        json={"vip_level": 5, "add_phones": [{"number": "139 0000 1111", "label": "手机"}],
              "remove_phones": ["+8613800138000"]},
        headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.text
    assert response.json()["phones"] == [{"number": "13900001111", "label": "手机"}]
    assert response.json()["vip_level"] == 5
    refused = stack.client.patch(f"/api/v1/customers/{customer.id}", json={"vip_level": 1})
    assert refused.status_code == 403  # no CSRF token


# ---- who may do what --------------------------------------------------------------------------

# role -> (may view, may edit any customer, may edit their own customers)
ROLE_TABLE = {
    Role.admin: (True, True, True),
    Role.service_manager: (True, True, True),
    Role.shift_leader: (True, False, False),
    Role.supervisor: (True, False, False),
    Role.agent: (True, False, False),
    Role.account_manager: (True, False, True),
}


@pytest.mark.parametrize("role", list(Role))
def test_view_and_edit_by_role(stack: Stack, role: Role) -> None:
    may_view, may_edit_any, may_edit_own = ROLE_TABLE[role]
    user = stack.users[role.value]
    own = add_customer(stack, "自己的客户", "13800000001", account_manager_id=user.id)
    other = add_customer(stack, "别人的客户", "13800000002",
                         account_manager_id=stack.users["am2"].id)
    token = stack.login_as(role.value)
    headers = {"X-CSRF-Token": token}
    for customer, allowed in ((own, may_edit_own), (other, may_edit_any)):
        view = stack.client.get(f"/api/v1/customers/{customer.id}")
        assert view.status_code == (200 if may_view else 403)
        assert stack.client.get(f"/customers/{customer.id}").status_code == (
            200 if may_view else 403)
        if may_view:
            assert view.json()["can_edit"] is allowed
        expected = 200 if allowed else 403
        assert stack.client.get(f"/customers/{customer.id}/edit").status_code == expected
        patch = stack.client.patch(f"/api/v1/customers/{customer.id}",
                                   json={"title": f"by {role.value}"}, headers=headers)
        assert patch.status_code == expected, patch.text
        form = stack.client.post(f"/customers/{customer.id}/edit", data={
            "csrf_token": token, "name": customer.name, "title": f"by {role.value}",
            "vip_level": "0"})
        assert form.status_code == (303 if allowed else 403)
        after = stack.run(stack.customers.get_customer, customer.id)
        assert after is not None
        assert (after.title == f"by {role.value}") is allowed


def test_an_account_manager_cannot_give_their_customer_away(stack: Stack) -> None:
    me = stack.users["account_manager"]
    customer = add_customer(stack, "自己的客户", "13800000001", account_manager_id=me.id)
    token = stack.login_as("account_manager")
    response = stack.client.patch(f"/api/v1/customers/{customer.id}",
                                  json={"account_manager_id": stack.users["am2"].id},
                                  headers={"X-CSRF-Token": token})
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden",
                               "message": "只有可编辑全部客户的用户才能更换客户经理"}
    form = stack.client.get(f"/customers/{customer.id}/edit")
    assert 'name="account_manager_id"' not in form.text
    after = stack.run(stack.customers.get_customer, customer.id)
    assert after is not None and after.account_manager_id == me.id


def test_only_editors_of_every_customer_change_the_vip_level(stack: Stack) -> None:
    # The screen pop of a number two customers share shows the higher VIP level: an
    # account manager raising their own customer's would take the other's calls.
    me = stack.users["account_manager"]
    customer = add_customer(stack, "自己的客户", "13800000001", account_manager_id=me.id,
                            vip_level=1)
    token = stack.login_as("account_manager")
    headers = {"X-CSRF-Token": token}
    url = f"/api/v1/customers/{customer.id}"
    raised = stack.client.patch(url, json={"vip_level": 9, "title": "董事"}, headers=headers)
    assert raised.status_code == 403
    assert raised.json() == {"error": "forbidden",
                             "message": "只有可编辑全部客户的用户才能修改VIP等级"}
    lowered = stack.client.patch(f"{url}?lang=en", json={"vip_level": 0}, headers=headers)
    assert lowered.json()["message"] == (
        "Only users who may edit every customer can change the VIP level")
    # The level it has, sent back as it is, is no change.
    same = stack.client.patch(url, json={"vip_level": 1, "title": "董事"}, headers=headers)
    assert same.status_code == 200, same.text
    form = stack.client.get(f"/customers/{customer.id}/edit")
    assert 'name="vip_level"' not in form.text
    assert re.search(r'id="customer-vip-level">银卡<', form.text)
    saved = stack.client.post(f"/customers/{customer.id}/edit", data={
        "csrf_token": token, "name": "自己的客户", "title": "总监"})
    assert saved.status_code == 303  # the form without the field keeps the level
    forged = stack.client.post(f"/customers/{customer.id}/edit", data={
        "csrf_token": token, "name": "改名", "vip_level": "9"})
    assert forged.status_code == 403
    assert "只有可编辑全部客户的用户才能修改VIP等级" in forged.text
    after = stack.run(stack.customers.get_customer, customer.id)
    assert after is not None
    assert (after.name, after.title, after.vip_level) == ("自己的客户", "总监", 1)
    token = stack.login_as("service_manager")  # customers.edit
    assert stack.client.patch(url, json={"vip_level": 9},
                              headers={"X-CSRF-Token": token}).json()["vip_level"] == 9


@pytest.mark.parametrize("role", ["account_manager", "admin"])
def test_a_number_of_another_customer_is_refused_and_nothing_changes(stack: Stack,
                                                                     role: str) -> None:
    # The same rule as the customer import: a number belongs to one customer, so an
    # account manager cannot make another manager's customer's calls pop as theirs.
    mine = add_customer(stack, "自己的客户", "13800000001",
                        account_manager_id=stack.users["account_manager"].id)
    theirs = add_customer(stack, "别人的客户", "13900000002",
                          account_manager_id=stack.users["am2"].id)
    token = stack.login_as(role)
    taken = f"号码 13900000002 已属于客户“别人的客户”（编号 {theirs.id}），不能添加给其他客户"
    response = stack.client.patch(
        f"/api/v1/customers/{mine.id}",
        json={"name": "改名", "remove_phones": ["13800000001"],
              "add_phones": ["13700000003", "+86 139 0000 0002"]},
        headers={"X-CSRF-Token": token})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid", "message": taken}
    english = stack.client.patch(f"/api/v1/customers/{mine.id}?lang=en",
                                 json={"add_phones": ["13900000002"]},
                                 headers={"X-CSRF-Token": token})
    assert english.json()["message"] == (
        f"The number 13900000002 already belongs to customer “别人的客户” (id {theirs.id}); "
        "it cannot be added to another customer")
    form = stack.client.post(f"/customers/{mine.id}/edit", data={
        "csrf_token": token, "name": "改名", "new_phone": "139-0000-0002"})
    assert form.status_code == 400
    assert f"保存失败：{taken}" in form.text
    for before in (mine, theirs):
        after = stack.run(stack.customers.get_customer, before.id)
        assert after is not None
        assert (after.name, after.phones) == (before.name, before.phones)
    match = stack.run(stack.customers.lookup_by_number, "13900000002")
    assert match is not None and match.customer_id == theirs.id


def test_account_manager_of_the_group_edits_its_members(stack: Stack) -> None:
    me = stack.users["account_manager"]
    group = stack.run(stack.customers.create_group, "G9", "集团九", account_manager_id=me.id)
    customer = add_customer(stack, "成员", "13800000003", group_id=group.id)
    token = stack.login_as("account_manager")
    response = stack.client.patch(f"/api/v1/customers/{customer.id}", json={"title": "董事"},
                                  headers={"X-CSRF-Token": token})
    assert response.status_code == 200


def test_anonymous_callers_are_refused(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    stack.client.cookies.clear()
    assert stack.client.get("/api/v1/customers").status_code == 401
    assert stack.client.get(f"/api/v1/customers/{customer.id}").status_code == 401
    page = stack.client.get(f"/customers/{customer.id}")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_group_revoke_takes_viewing_and_writing_away(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    agent = stack.users["agent"]
    group = stack.run(stack.groups.create, SYSTEM, "实习座席")
    stack.run(stack.groups.add_member, SYSTEM, group.id, agent.id)
    stack.run(stack.permissions.revoke, SYSTEM, group.id, "contacts.write")
    token = stack.login_as("agent")
    headers = {"X-CSRF-Token": token}
    assert stack.client.get(f"/api/v1/customers/{customer.id}").status_code == 200
    assert 'id="contact-add"' not in stack.client.get(f"/customers/{customer.id}").text
    assert stack.client.post(f"/api/v1/customers/{customer.id}/contacts",
                             json={"text": "hi"}, headers=headers).status_code == 403
    stack.run(stack.permissions.revoke, SYSTEM, group.id, "customers.view")
    assert stack.client.get("/api/v1/customers").status_code == 403
    assert stack.client.get(f"/customers/{customer.id}").status_code == 403
    assert stack.client.get("/customers").status_code == 403


# ---- contact records --------------------------------------------------------------------------


def test_add_a_contact_record(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    token = stack.login_as("agent")
    created = stack.client.post(f"/api/v1/customers/{customer.id}/contacts",
                                json={"channel": "sms", "text": "已发送报价"},
                                headers={"X-CSRF-Token": token})
    assert created.status_code == 201
    assert created.json()["agent_username"] == "agent"
    form = stack.client.post(f"/customers/{customer.id}/contacts",
                             data={"csrf_token": token, "channel": "visit", "text": "上门拜访"})
    assert form.status_code == 303
    entries = stack.run(stack.contacts.last, customer.id, 5)
    assert [(e.channel.value, e.text) for e in entries] == [
        ("visit", "上门拜访"), ("sms", "已发送报价")]
    bad = stack.client.post(f"/api/v1/customers/{customer.id}/contacts",
                            json={"channel": "fax", "text": "x"},
                            headers={"X-CSRF-Token": token})
    assert bad.status_code == 400
    assert bad.json()["message"] == (
        "unknown channel 'fax' (choose from phone, sms, visit, email, other)")
    missing = stack.client.post("/api/v1/customers/999/contacts", json={"text": "x"},
                                headers={"X-CSRF-Token": token})
    assert missing.status_code == 404
    assert stack.client.post(f"/api/v1/customers/{customer.id}/contacts",
                             json={"text": "no token"}).status_code == 403


def test_navigation_shows_customers_and_import_by_capability(stack: Stack) -> None:
    stack.login_as("agent")
    page = stack.client.get("/customers").text
    assert 'href="/customers"' in page and 'href="/customers/import"' not in page
    stack.login_as("service_manager")
    assert 'href="/customers/import"' in stack.client.get("/customers").text



def test_pages_render_in_english_and_the_api_is_described(stack: Stack) -> None:
    customer = add_customer(stack, "王小明", "13800138000")
    token = stack.login_as("admin")
    assert "Name or phone number" in stack.client.get("/customers?lang=en").text
    assert "Edit customer: 王小明" in stack.client.get(
        f"/customers/{customer.id}/edit?lang=en").text
    assert "编辑客户：王小明" in stack.client.get(f"/customers/{customer.id}/edit?lang=zh").text
    assert "Excel file (.xlsx)" in stack.client.get("/customers/import?lang=en").text
    bad = stack.client.post(f"/customers/{customer.id}/edit?lang=en", data={
        "csrf_token": token, "name": "", "vip_level": "x"})
    assert bad.status_code == 400
    assert ("Not saved: The VIP level “x” is unknown: choose one of 钻石卡、金卡、银卡、普通, "
            "or give a whole number from 0 to 99") in bad.text
    paths = stack.client.get("/api/v1/openapi.json").json()["paths"]
    assert paths["/api/v1/customers/{id}"]["patch"]["x-capabilities"] == ["customers.view"]
    assert paths["/api/v1/customer-imports"]["post"]["x-capabilities"] == ["customers.import"]
    assert paths["/api/v1/customers/{id}/contacts"]["post"]["x-capabilities"] == [
        "contacts.write", "customers.view"]


_LINE_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                                   blacklist_characters="="), min_size=1, max_size=12)
_CUSTOM_FIELDS = st.dictionaries(
    _LINE_TEXT.map(str.strip).filter(bool),
    st.one_of(_LINE_TEXT.map(str.strip), st.integers(-10**6, 10**6), st.booleans()),
    max_size=6)


@given(_CUSTOM_FIELDS)
def test_custom_fields_survive_the_edit_form_unchanged(fields: dict[str, Any]) -> None:
    # The edit form shows name=value lines; saving them untouched gives the same fields,
    # numbers and true/false included.
    shown = "\n".join(f"{k}={v}" for k, v in fields.items())
    assert customer_routes._parse_custom_fields(shown, fields) == fields


def test_custom_fields_text_refuses_a_line_without_a_name() -> None:
    with pytest.raises(customer_routes.BadInput, match="custom fields line 2: write it as "
                                                       "name=value"):
        customer_routes._parse_custom_fields("a=1\nno equals sign", {})


# ---- the list: group, VIP level, account manager; my customers ----------------------------


def test_the_list_shows_group_level_name_and_manager_as_the_customer_page_does(
        stack: Stack) -> None:
    manager = stack.users["account_manager"]
    group = stack.run(stack.customers.create_group, "G001", "华信集团", vip_level="钻石卡",
                      account_manager_id=manager.id)
    member = add_customer(stack, "王小明", "13800138000", group_id=group.id, vip_level=0)
    add_customer(stack, "散客", "13900139000", vip_level="银卡")
    stack.login_as("agent")
    listed = {c["name"]: c for c in stack.client.get("/api/v1/customers").json()["customers"]}
    shown = {name: (c["group"] and c["group"]["name"], c["vip_level"], c["vip_level_name"],
                    c["account_manager"] and c["account_manager"]["name"])
             for name, c in listed.items()}
    assert shown == {"王小明": ("华信集团", 3, "钻石卡", manager.name),
                     "散客": (None, 1, "银卡", None)}
    one = stack.client.get(f"/api/v1/customers/{member.id}").json()
    assert (one["vip_level"], one["vip_level_name"]) == (3, "钻石卡")  # the same one level

    page = stack.client.get("/customers")
    row = re.search(rf'<tr data-customer-id="{member.id}".*?</tr>', page.text, re.S)
    assert row is not None
    cells = [re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)]
    assert cells[:6] == ["王小明", "", "13800138000", "华信集团", "钻石卡", manager.name]
    view = stack.client.get(f"/customers/{member.id}")
    assert re.search(r'id="customer-vip"[^>]*>钻石卡<', view.text)


def test_an_account_manager_filters_to_my_customers_on_the_page_and_in_the_api(
        stack: Stack) -> None:
    me, other = stack.users["account_manager"], stack.users["am2"]
    group = stack.run(stack.customers.create_group, "G001", "华信集团",
                      account_manager_id=me.id)
    add_customer(stack, "自己的", "13800000001", account_manager_id=me.id)
    add_customer(stack, "集团成员", "13800000002", group_id=group.id)
    add_customer(stack, "别人的", "13800000003", account_manager_id=other.id)
    stack.login_as("account_manager")
    assert names(stack.client.get("/api/v1/customers?mine=1")) == ["自己的", "集团成员"]
    assert names(stack.client.get("/api/v1/customers")) == ["别人的", "自己的", "集团成员"]
    assert names(stack.client.get("/api/v1/customers?mine=1&q=集团")) == ["集团成员"]
    bad = stack.client.get("/api/v1/customers?mine=maybe")
    assert (bad.status_code, bad.json()["message"]) == (400, "“mine”必须是 1 或 0")

    page = stack.client.get("/customers?mine=1")
    assert 'id="customers-mine"' in page.text
    assert re.findall(r'<tr data-customer-id="\d+">\s*<td><a href="/customers/\d+">([^<]+)</a>',
                      page.text) == ["自己的", "集团成员"]
    assert "共 2 位客户" in page.text
    stack.login_as("am2")
    assert names(stack.client.get("/api/v1/customers?mine=1")) == ["别人的"]
