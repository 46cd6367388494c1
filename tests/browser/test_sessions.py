"""Sessions end everywhere at once: "log out everywhere" in one browser logs the same
user out in another, whose live connection drops at once and whose next page is the
login page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from apps import Role
from tests.browser.conftest import WAIT_MS, WebSwitch, log_in, new_page, username_of
from web.i18n import MESSAGES

pytestmark = pytest.mark.integration


def test_log_out_everywhere_ends_the_other_browsers_session(browser: Browser,
                                                            web_switch: WebSwitch) -> None:
    agent = username_of(Role.agent)
    desk_context, desk = new_page(browser, web_switch.url)
    phone_context, phone = new_page(browser, web_switch.url)
    try:
        log_in(desk, agent)
        desk.goto("/desktop")
        status = desk.locator("#live-status")
        expect(status).to_have_text(MESSAGES["desktop.connected"]["zh"], timeout=WAIT_MS)

        log_in(phone, agent)
        button = phone.locator("#logout-everywhere")
        assert button.inner_text() == MESSAGES["header.logout_everywhere"]["zh"]
        with phone.expect_navigation():
            button.click()
        assert phone.url.endswith("/login")

        # The desk's socket was closed by the server (1008), so it does not reconnect ...
        expect(status).to_have_text(MESSAGES["desktop.disconnected"]["zh"], timeout=WAIT_MS)
        # ... and its next page is the login page.
        desk.reload()
        assert "/login?next=" in desk.url
        assert desk.locator("#logout").count() == 0
    finally:
        desk_context.close()
        phone_context.close()
