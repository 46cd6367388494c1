"""The queue page in the browser: a service manager creates a queue with two members and
a penalty, sees it listed, and the audit log says what was made."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from apps import Role
from tests.browser.conftest import log_in, username_of

pytestmark = pytest.mark.integration

MANAGER = username_of(Role.service_manager)  # holds queues.manage
AGENT = username_of(Role.agent)
SUPERVISOR = username_of(Role.supervisor)


def test_a_queue_is_created_on_the_page_with_its_members(page: Page) -> None:
    log_in(page, MANAGER)
    page.goto("/admin/queues")
    expect(page.locator("h1")).to_have_text("队列管理")
    name = f"desk-{uuid.uuid4().hex[:6]}"  # the switch is shared by the whole session
    page.fill("#queue-name", name)
    page.fill("#queue-display-name", "投诉专席")
    page.select_option("#queue-strategy", "round_robin")
    page.fill("#queue-ring-timeout", "20")
    page.check(f"#member-{AGENT}")
    page.check(f"#member-{SUPERVISOR}")
    page.fill(f'input[name="penalty.{SUPERVISOR}"]', "1")
    with page.expect_navigation():
        page.click("#queue-create button[type=submit]")

    assert page.url.endswith(f"/admin/queues/{name}"), page.url
    expect(page.locator("#toasts .toast-body")).to_have_text("已保存")
    expect(page.locator("#queue-display")).to_have_text("投诉专席")
    expect(page.locator("#queue-strategy")).to_have_value("round_robin")
    expect(page.locator(f"#member-{AGENT}")).to_be_checked()
    expect(page.locator(f'input[name="penalty.{SUPERVISOR}"]')).to_have_value("1")

    page.goto("/admin/queues")
    row = page.locator(f'#queues tr[data-queue="{name}"]')
    expect(row.locator(".member-count")).to_have_text("2")
    api = page.request.get(f"/api/v1/queues/{name}").json()
    assert [(m["username"], m["penalty"]) for m in api["members"]] == [
        (AGENT, 0), (SUPERVISOR, 1)]

    page.goto("/admin/audit?action=queue.create")
    first = page.locator("#audit tbody tr").first
    expect(first.locator(".action")).to_have_text("新建队列")
    expect(first.locator(".summary")).to_have_text(
        f"新建队列 {name}（投诉专席）：策略 轮询，成员 {AGENT}, {SUPERVISOR}")
