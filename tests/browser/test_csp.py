"""The Content-Security-Policy holds in a real browser: an administrator opens every page
(the desktop with its live WebSocket, an import running with its progress script, a
customer, a user, a group, its permissions...) and chromium reports no violation and no
script error; and an inline script, which the policy must refuse, is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page

from apps import Role
from tests.browser.conftest import log_in, username_of
from tests.browser.test_customers import start_and_wait, upload, write_sheet

pytestmark = pytest.mark.integration

CSP = "Content Security Policy"


def first_id(page: Page, path: str, key: str) -> int:
    response = page.request.get(path)
    assert response.ok, response.text()
    found: int = response.json()[key][0]["id"]
    return found


def test_no_page_breaks_the_content_security_policy(page: Page, tmp_path: Path) -> None:
    violations: list[str] = []
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if CSP in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    log_in(page, username_of(Role.admin))
    response = page.goto("/desktop")
    assert response is not None and "script-src 'self'" in response.headers[
        "content-security-policy"]
    page.wait_for_selector("#live-status[data-state=connected]")  # connect-src allows it
    upload(page, write_sheet(tmp_path / "客户.xlsx", [("CSP客户", "13700137000", "经理", 1)]))
    start_and_wait(page)  # the job page's script, fed by the WebSocket
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    assert token
    created = page.request.post("/api/v1/groups", data={"name": "CSP检查组"},
                                headers={"X-CSRF-Token": token})
    assert created.ok, created.text()
    customer = first_id(page, "/api/v1/customers?q=13700137000", "customers")
    user = first_id(page, "/api/v1/users", "users")
    group = created.json()["id"]
    for path in ("/customers", "/customers?q=CSP", f"/customers/{customer}",
                 f"/customers/{customer}/edit", "/customers/import", "/admin/users",
                 f"/admin/users/{user}", "/admin/groups", f"/admin/groups/{group}",
                 "/admin/permissions", f"/admin/permissions/{group}", "/admin/audit",
                 "/customers/999999?lang=en"):
        page.goto(path)
        page.wait_for_load_state("load")
    assert violations == [] and errors == []

    # The check sees a violation when there is one: the policy refuses inline script.
    with page.expect_console_message(lambda message: CSP in message.text) as refused:
        page.evaluate("""() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.body.append(script);
        }""")
    assert "inline script" in refused.value.text  # chromium's wording varies by version
    assert "script-src 'self'" in refused.value.text
    assert page.evaluate("() => window.inlineRan") is None
