"""Every page in the one visual system: each role logs in and opens every page its
navigation offers, and an unknown address; each page has the layout (the navbar, our
stylesheet on top of Bootstrap's, Chinese fonts first) and a full-page screenshot of it
is kept for a reviewer in test-artifacts/screenshots/<role>-<page>.png."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from playwright.sync_api import Page

from apps import Role
from apps.permissions import ROLE_DEFAULTS
from tests.browser.conftest import log_in, screenshot, username_of
from tests.browser.test_login_navigation import ALL_NAV
from web.i18n import MESSAGES

pytestmark = pytest.mark.integration

BRAND_BLUE = "rgb(29, 79, 145)"  # web/static/style.css --cc-brand
MISSING = "/no-such-page"


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
# own default look: each must carry its Bootstrap class (see web/templates/_macros.html).
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
    return found;
}"""


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_every_page_of_each_role_is_in_the_layout(page: Page, role: Role) -> None:
    allowed = [item.path for item in ALL_NAV if item.capability in ROLE_DEFAULTS[role]]
    page.set_viewport_size({"width": 1366, "height": 768})  # a common agent desk screen
    page.goto("/login")
    assert_in_the_layout(page)
    screenshot(page, "login")
    log_in(page, username_of(role))
    unstyled: dict[str, list[str]] = {}
    for path in [*allowed, MISSING]:
        response = page.goto(path)
        assert response is not None
        assert response.status == (404 if path == MISSING else 200), path
        assert_in_the_layout(page)
        current = page.locator("header nav a[aria-current=page]")
        if path == MISSING:
            assert current.count() == 0
        else:
            assert current.get_attribute("href") == path
        screenshot(page, f"{role.value}-{slug(path)}")
        if found := page.evaluate(UNSTYLED):
            unstyled[path] = found
    # Checked after every screenshot is taken, so that a reviewer sees them all.
    assert not unstyled, "controls in the browser's default look, without the class:\n" + \
        "\n".join(f"{path}: {'; '.join(found)}" for path, found in unstyled.items())


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
