"""Logging in through the login page as each role: where one lands, the navigation the
role's permissions allow, refusal of the other pages by URL, logging out; the language
switch."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from apps import Role
from apps.permissions import ROLE_DEFAULTS
from tests.browser.conftest import log_in, username_of
from web import NavItem, admin, customer_import_routes, customers, pages
from web.i18n import HTML_LANG, MESSAGES

pytestmark = pytest.mark.integration

# Every page with a navigation entry; `callcenter serve` is expected to mount them all.
ALL_NAV: tuple[NavItem, ...] = (*pages.NAV, *admin.NAV, *customers.NAV,
                                *customer_import_routes.NAV)


def zh(key: str) -> str:
    return MESSAGES[key]["zh"]


def en(key: str) -> str:
    return MESSAGES[key]["en"]


def nav_entries(page: Page) -> dict[str, str]:
    """The header's navigation as {path: label}."""
    links = page.locator("header nav a")
    return {links.nth(i).get_attribute("href") or "": links.nth(i).inner_text().strip()
            for i in range(links.count())}


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_each_role_sees_exactly_its_pages_and_is_refused_the_rest(page: Page,
                                                                  role: Role) -> None:
    allowed = [item for item in ALL_NAV if item.capability in ROLE_DEFAULTS[role]]
    refused = [item for item in ALL_NAV if item.capability not in ROLE_DEFAULTS[role]]
    assert allowed, "every role has at least one page"

    log_in(page, username_of(role))

    entries = nav_entries(page)
    assert entries == {item.path: zh(item.label_key) for item in allowed}
    # Logging in lands on the first page the role may see, in navigation order.
    assert urlsplit(page.url).path == next(iter(entries))
    assert page.locator("#user-role").inner_text() == zh(f"role.{role.value}")

    for item in refused:
        response = page.goto(item.path)
        assert response is not None and response.status == 403, item.path
        assert page.locator("#error").inner_text() == zh("error.forbidden")

    with page.expect_navigation():
        page.click("#logout")
    assert page.url.endswith("/login")
    # Logged out, the first allowed page sends one back to the login page.
    page.goto(allowed[0].path)
    assert "/login?next=" in page.url
    assert page.locator("#login").is_visible()


def test_chinese_by_default_english_on_request_and_it_sticks(page: Page) -> None:
    page.goto("/login")
    assert page.locator("html").get_attribute("lang") == HTML_LANG["zh"]
    assert page.locator("#login").inner_text() == zh("login.submit")
    assert page.locator("h1").inner_text() == zh("login.title")

    with page.expect_navigation():
        page.click("a[data-lang=en]")
    assert page.locator("html").get_attribute("lang") == HTML_LANG["en"]
    assert page.locator("#login").inner_text() == en("login.submit")

    page.reload()
    assert page.locator("html").get_attribute("lang") == HTML_LANG["en"]
    assert page.locator("h1").inner_text() == en("login.title")

    # Still English after logging in, without ?lang= in any address.
    log_in(page, username_of(Role.agent))
    assert "lang=" not in page.url
    assert page.locator("html").get_attribute("lang") == HTML_LANG["en"]
    assert nav_entries(page)["/desktop"] == en("nav.desktop")
    assert page.locator("#user-role").inner_text() == en("role.agent")

    # And back to Chinese with the same switch.
    with page.expect_navigation():
        page.click("a[data-lang=zh]")
    page.reload()
    assert page.locator("html").get_attribute("lang") == HTML_LANG["zh"]
    assert nav_entries(page)["/desktop"] == zh("nav.desktop")
