"""The admin pages in the browser: the permission matrix changed in two cells and saved
with one click, the audit log read as sentences with where each entry came from, and the
user list showing a phone that really registered with the switch."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Locator, Page, expect

from apps import Role
from tests.browser.conftest import PASSWORD, WebSwitch, log_in, username_of
from tests.integration.test_pri_calls import register

pytestmark = pytest.mark.integration

MANAGER = username_of(Role.service_manager)  # holds permissions.manage, not users.manage
ADMIN = username_of(Role.admin)


def capability_row(page: Page, name: str) -> Locator:
    return page.locator(f'tr[data-capability="{name}"]')


def test_two_cells_of_the_matrix_are_saved_with_one_click(page: Page) -> None:
    log_in(page, MANAGER)
    page.goto("/admin/groups")
    name = f"质检-{uuid.uuid4().hex[:6]}"  # the switch is shared by the whole session
    page.fill("#new-group-name", name)
    with page.expect_navigation():
        page.click("#group-create button[type=submit]")
    group_id = re.search(r"/admin/groups/(\d+)$", page.url)
    assert group_id is not None, page.url

    page.goto(f"/admin/permissions/{group_id.group(1)}")
    expect(page.locator("#group-name")).to_have_text(name)
    expect(capability_row(page, "calls.barge")).to_have_count(0)  # not built: not offered
    expect(page.get_by_text("强插")).to_have_count(0)
    page.select_option('select[name="cap:customers.import"]', "granted")
    page.select_option('select[name="cap:contacts.write"]', "revoked")
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url)
            if request.method == "POST" else None)
    with page.expect_navigation():
        page.click("#permission-save")

    assert len(posts) == 1  # one action for the whole matrix
    toast = page.locator("#toasts .toast-body")
    expect(toast).to_be_visible()
    expect(toast).to_have_text("已保存：2 项权限已更改")
    page.reload()  # what the page shows is what was stored
    expect(capability_row(page, "customers.import")).to_have_attribute("data-state", "granted")
    expect(capability_row(page, "contacts.write")).to_have_attribute("data-state", "revoked")
    expect(page.locator('select[name="cap:customers.import"]')).to_have_value("granted")
    expect(page.locator('select[name="cap:contacts.write"]')).to_have_value("revoked")
    expect(capability_row(page, "customers.view")).to_have_attribute("data-state", "default")
    expect(page.locator('select[name="cap:users.manage"]')).to_be_disabled()  # not theirs

    page.goto("/admin/audit?action=permission.update")
    first = page.locator("#audit tbody tr").first
    expect(first.locator(".action")).to_have_text("修改分组权限")
    expect(first.locator(".summary")).to_have_text(
        f"分组 {name}：填写沟通记录 按角色默认 → 撤销；导入客户 按角色默认 → 授予")
    expect(first.locator(".source")).to_have_text("127.0.0.1")


def test_the_audit_log_reads_as_sentences_with_each_entrys_address(page: Page) -> None:
    page.goto("/login")
    page.fill("#username", "nobody-here")
    page.fill("#password", "not a password")
    with page.expect_navigation():
        page.click("#login")
    log_in(page, ADMIN)
    page.goto("/admin/audit")
    expect(page.locator("h1")).to_have_text("审计日志")
    page.select_option("#audit-action", "login_failed")
    with page.expect_navigation():
        page.click("#audit-filter button[type=submit]")
    row = page.locator("#audit tbody tr").first
    expect(row.locator(".action")).to_have_text("登录失败")
    expect(row.locator(".actor")).to_have_text("nobody-here")
    expect(row.locator(".summary")).to_have_text("用户名或密码错误")
    expect(row.locator(".source")).to_have_text("127.0.0.1")
    expect(page.locator("#audit")).not_to_contain_text("login_failed")
    expect(page.locator("#audit")).not_to_contain_text("{")  # no raw JSON

    page.goto("/admin/audit?lang=en")
    page.select_option("#audit-action", "login")
    with page.expect_navigation():
        page.click("#audit-filter button[type=submit]")
    row = page.locator("#audit tbody tr").first
    expect(row.locator(".action")).to_have_text("Logged in")
    expect(row.locator(".actor")).to_have_text(ADMIN)
    expect(row.locator(".source")).to_have_text("127.0.0.1")


def test_the_user_list_shows_a_phone_that_really_registered(
    page: Page, web_switch: WebSwitch,
) -> None:
    extension = "2006"  # the account manager's (conftest numbers the roles from 2001)
    register(web_switch.process, extension, PASSWORD, contact_port=5099, expires_s=300)
    try:
        log_in(page, ADMIN)
        page.goto("/admin/users")
        phone = page.locator(f'tr[data-username="{username_of(Role.account_manager)}"] '
                            "td.registration")
        expect(phone).to_have_text("已注册")
        expect(page.locator(f'tr[data-username="{username_of(Role.agent)}"] '
                            "td.registration")).to_have_text("未注册")
    finally:
        register(web_switch.process, extension, PASSWORD, contact_port=5099, expires_s=0)
    page.reload()
    expect(phone).to_have_text("未注册")
