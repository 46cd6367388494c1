"""Every page in the one visual system: each role logs in and opens every page its
navigation offers, and an unknown address; an administrator also opens the pages behind
them (a customer, its edit form, a user, a group, its permissions, an import's preview
and result). Each page has the layout (the navbar, our stylesheet on top of
Bootstrap's, Chinese fonts first), no control in the browser's default look, and a
full-page screenshot of it is kept for a reviewer in
test-artifacts/screenshots/<role>-<page>.png."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from apps import Role
from apps.permissions import ROLE_DEFAULTS
from tests.browser.conftest import log_in, screenshot, username_of
from tests.browser.test_csp import first_id
from tests.browser.test_customers import start_and_wait, upload, write_sheet
from tests.browser.test_login_navigation import ALL_NAV
from web.i18n import MESSAGES

pytestmark = pytest.mark.integration

BRAND_BLUE = "rgb(29, 79, 145)"  # web/static/style.css --cc-brand
MISSING = "/no-such-page"
DESK_SCREEN = ViewportSize(width=1366, height=768)  # a common agent desk screen


def chinese_fonts() -> list[str]:
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True,
                            text=True, check=False)
    return [line for line in listed.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module", autouse=True)
def readable_chinese() -> None:
    """Screenshots of Chinese pages need a Chinese font (test.sh installs
    fonts-wqy-microhei); without one every character is a box."""
    if not chinese_fonts():
        message = "no Chinese font (apt-get install fonts-wqy-microhei)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def assert_in_the_layout(page: Page) -> None:
    """What a user sees when the styles are there: the blue header bar with the brand,
    our Chinese-first fonts (not the browser's default serif), a Bootstrap page."""
    header = page.locator("header.navbar")
    assert header.is_visible()
    assert page.locator("#brand").inner_text() == MESSAGES["app.title"]["zh"]
    looks = page.evaluate("""() => {
        const header = getComputedStyle(document.querySelector("header.navbar"));
        const body = getComputedStyle(document.body);
        return {header: header.backgroundColor, display: header.display,
                font: body.fontFamily, margin: body.margin,
                height: document.querySelector("header.navbar").offsetHeight,
                bootstrap: getComputedStyle(document.documentElement)
                    .getPropertyValue("--bs-blue").trim()};
    }""")
    assert looks["bootstrap"] == "#0d6efd", looks  # Bootstrap's stylesheet is applied
    assert looks["header"] == BRAND_BLUE and looks["display"] == "flex", looks
    assert "Microsoft YaHei" in looks["font"] and "WenQuanYi Micro Hei" in looks["font"]
    assert looks["margin"] == "0px", looks  # not the browser's default 8px body margin
    assert 48 <= looks["height"] <= 80, looks  # one bar, not a stack of unstyled links


# Form controls and tables in the page's content that the browser would draw with its
# own default look: each must carry its Bootstrap class (see web/templates/_macros.html);
# a card's content inside its card-body, not against its edge.
UNSTYLED = """() => {
    const needs = [
        ["table", "table"],
        ["button:not(.btn-close), input[type=submit], input[type=button]", "btn"],
        ["input:not([type=hidden]):not([type=checkbox]):not([type=radio])" +
         ":not([type=submit]):not([type=button]), textarea", "form-control"],
        ["input[type=checkbox], input[type=radio]", "form-check-input"],
        ["select", "form-select"],
    ];
    const found = [];
    for (const [selector, wanted] of needs) {
        for (const element of document.querySelectorAll("main " + selector.split(", ")
                .join(", main "))) {
            if (!element.classList.contains(wanted)) {
                const name = element.id || element.name || element.textContent.trim();
                found.push(`${element.tagName.toLowerCase()} ${name.slice(0, 30)}: ${wanted}`);
            }
        }
    }
    for (const card of document.querySelectorAll("main .card")) {
        if (!card.querySelector(":scope > .card-body, :scope > .card-header, " +
                                ":scope > .list-group, :scope > .table-responsive")) {
            found.push(`card ${card.id}: card-body`);  // content against the card's edge
        }
    }
    return found;
}"""


def visit(page: Page, name: str, unstyled: dict[str, list[str]]) -> None:
    """Check the page now open, keep its screenshot, note its unstyled controls."""
    assert_in_the_layout(page)
    screenshot(page, name)
    if found := page.evaluate(UNSTYLED):
        unstyled[name] = found


def assert_all_styled(unstyled: dict[str, list[str]]) -> None:
    """Checked after every screenshot is taken, so that a reviewer sees them all."""
    assert not unstyled, "controls in the browser's default look, without the class:\n" + \
        "\n".join(f"{page}: {'; '.join(found)}" for page, found in unstyled.items())


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_every_page_of_each_role_is_in_the_layout(page: Page, role: Role) -> None:
    allowed = [item.path for item in ALL_NAV if item.capability in ROLE_DEFAULTS[role]]
    page.set_viewport_size(DESK_SCREEN)
    unstyled: dict[str, list[str]] = {}
    page.goto("/login")
    visit(page, "login", unstyled)
    log_in(page, username_of(role))
    for path in [*allowed, MISSING]:
        response = page.goto(path)
        assert response is not None
        assert response.status == (404 if path == MISSING else 200), path
        current = page.locator("header nav a[aria-current=page]")
        if path == MISSING:
            assert current.count() == 0
        else:
            assert current.get_attribute("href") == path
        visit(page, f"{role.value}-{slug(path)}", unstyled)
    assert_all_styled(unstyled)


def test_the_pages_behind_the_navigation_are_in_the_layout(page: Page,
                                                           tmp_path: Path) -> None:
    page.set_viewport_size(DESK_SCREEN)
    unstyled: dict[str, list[str]] = {}
    log_in(page, username_of(Role.admin))
    upload(page, write_sheet(tmp_path / "客户.xlsx", [("截图客户", "13600136001", "经理", 1),
                                                      ("", "12", "", 1)]))
    visit(page, "admin-customers-import-preview", unstyled)
    start_and_wait(page)
    visit(page, "admin-customers-import-result", unstyled)

    token = page.get_attribute('meta[name="csrf-token"]', "content")
    assert token
    created = page.request.post("/api/v1/groups", data={"name": "截图分组"},
                                headers={"X-CSRF-Token": token})
    assert created.ok, created.text()
    group = created.json()["id"]
    queue = page.request.post("/api/v1/queues", data={
        "name": "screenshot", "display_name": "截图队列", "members": [username_of(Role.agent)]},
        headers={"X-CSRF-Token": token})
    assert queue.ok or "已存在" in queue.text(), queue.text()
    customer = first_id(page, "/api/v1/customers?q=13600136001", "customers")
    user = first_id(page, "/api/v1/users", "users")
    for path, name in [(f"/customers/{customer}", "customers-view"),
                       (f"/customers/{customer}/edit", "customers-edit"),
                       (f"/admin/users/{user}", "admin-user"),
                       (f"/admin/groups/{group}", "admin-group"),
                       (f"/admin/permissions/{group}", "admin-group-permissions"),
                       ("/admin/queues/screenshot", "admin-queue")]:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        visit(page, f"admin-{name}", unstyled)
    assert_all_styled(unstyled)


def test_the_404_page_is_in_chinese_inside_the_layout(page: Page) -> None:
    log_in(page, username_of(Role.agent))
    response = page.goto("/desktop/no-such-thing")
    assert response is not None and response.status == 404
    assert_in_the_layout(page)
    assert page.locator("h1").inner_text() == "页面不存在"
    assert page.locator("#error").inner_text() == MESSAGES["error.not_found"]["zh"]
    assert page.locator("#user-role").inner_text() == MESSAGES["role.agent"]["zh"]
    assert page.locator("header nav a").first.inner_text() == MESSAGES["nav.desktop"]["zh"]
    with page.expect_navigation():
        page.click("#error-home")
    assert page.url.endswith("/desktop")


def test_on_a_narrow_screen_the_menu_button_opens_the_navigation(page: Page) -> None:
    page.set_viewport_size(ViewportSize(width=600, height=900))
    log_in(page, username_of(Role.agent))
    desktop_link = page.locator("header nav a[href='/desktop']")
    expect(desktop_link).to_be_hidden()
    toggler = page.locator("header .navbar-toggler")
    assert toggler.get_attribute("aria-label") == MESSAGES["header.menu"]["zh"]
    toggler.click()
    # Open once Bootstrap's sliding is over: "collapsing" while it moves, then "show".
    expect(page.locator("#app-navbar")).to_have_class(re.compile(r"(^|\s)show(\s|$)"))
    expect(desktop_link).to_be_visible()
    expect(page.locator("#logout")).to_be_visible()
    screenshot(page, "agent-desktop-narrow-menu")
