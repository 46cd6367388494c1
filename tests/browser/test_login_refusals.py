"""Wrong passwords in the browser: one message whether or not the user exists, then the
throttle for that username from this address. A switch of its own: every browser here
is 127.0.0.1, so a shared switch would lock out the other tests."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from apps import Role
from tests.browser.conftest import (
    PASSWORD,
    WebSwitch,
    log_in,
    new_page,
    start_web_switch,
    username_of,
)
from web.i18n import MESSAGES

pytestmark = pytest.mark.integration

MAX_FAILURES = 3


@pytest.fixture(scope="module")
def strict_switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSwitch]:
    switch = start_web_switch(tmp_path_factory.mktemp("browser-throttle"),
                              f"[web]\nlogin_max_failures = {MAX_FAILURES}\n"
                              "login_window_s = 300\n")
    yield switch
    switch.stop()


@pytest.fixture
def login_page(browser: Browser, strict_switch: WebSwitch) -> Iterator[Page]:
    context, page = new_page(browser, strict_switch.url)
    yield page
    context.close()


def refusal(page: Page) -> str:
    return page.locator("#login-error").inner_text()


def test_wrong_password_then_throttled(login_page: Page) -> None:
    page = login_page
    failed = MESSAGES["login.failed"]["zh"]
    agent = username_of(Role.agent)

    log_in(page, agent, "not the password")
    assert refusal(page) == failed
    assert page.url.endswith("/login")
    # The username stays typed in, the password does not.
    assert page.input_value("#username") == agent
    assert page.input_value("#password") == ""

    # A user that does not exist gets word for word the same answer.
    log_in(page, "nobody_here", "not the password")
    assert refusal(page) == failed

    for _ in range(MAX_FAILURES - 1):
        log_in(page, agent, "still wrong")
        assert refusal(page) == failed

    # One failure too many: the throttle answers, and says for how long.
    throttled = re.escape(MESSAGES["login.throttled"]["zh"]).replace(
        re.escape("{seconds}"), r"(\d+)")
    log_in(page, agent, "still wrong")
    match = re.fullmatch(throttled, refusal(page))
    assert match is not None, refusal(page)
    assert 0 < int(match.group(1)) <= 300

    # Even the right password is refused while throttled: no session, no navigation.
    log_in(page, agent, PASSWORD)
    assert re.fullmatch(throttled, refusal(page))
    assert page.locator("#logout").count() == 0
    response = page.goto("/desktop")
    assert response is not None
    assert "/login" in page.url
