"""Toasts: a message the server has for the next page ("您已退出登录" after logging out)
shows in the corner and goes when closed; a script's callcenter.toast shows its text as
text, never as HTML."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps import Role
from tests.browser.conftest import log_in, username_of
from web.i18n import MESSAGES

pytestmark = pytest.mark.integration


def test_logging_out_says_so_in_a_toast_that_closes(page: Page) -> None:
    log_in(page, username_of(Role.agent))
    with page.expect_navigation():
        page.click("#logout")
    toast = page.locator("#toasts .toast")
    expect(toast).to_be_visible()
    expect(toast).to_have_text(MESSAGES["logout.done"]["zh"])
    toast.locator(".btn-close").click()
    expect(toast).to_have_count(0)
    page.reload()
    expect(page.locator("#toasts .toast")).to_have_count(0)  # shown once


def test_logging_out_everywhere_counts_the_sessions_in_english(page: Page) -> None:
    page.goto("/login?lang=en")
    log_in(page, username_of(Role.supervisor))
    with page.expect_navigation():
        page.click("#logout-everywhere")
    # Other tests' sessions of this user on the shared switch end too: any count.
    said = re.escape(MESSAGES["logout.everywhere_done"]["en"]).replace(
        re.escape("{sessions}"), r"[1-9][0-9]*")
    expect(page.locator("#toasts .toast-body")).to_have_text(re.compile(f"^{said}$"))


def test_a_script_shows_a_toast_as_text(page: Page) -> None:
    log_in(page, username_of(Role.agent))
    page.evaluate("""() => window.callcenter.toast("已保存 <b>1</b> 条", "success")""")
    toast = page.locator("#toasts .toast.text-bg-success")
    expect(toast).to_be_visible()
    expect(toast.locator(".toast-body")).to_have_text("已保存 <b>1</b> 条")
    assert toast.locator("b").count() == 0
    assert toast.locator(".btn-close").get_attribute("aria-label") == \
        MESSAGES["toast.close"]["zh"]
