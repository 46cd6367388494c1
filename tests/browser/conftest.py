"""Browser tests: Debian's chromium, driven by Playwright, against the real
`callcenter serve` in a subprocess on loopback.

One switch serves the whole session (users of all six roles are made before it starts);
a test that must wreck shared state (the login throttle counts per source address, and
every browser here is 127.0.0.1) starts a switch of its own with ``start_web_switch``.
Each test gets a fresh browser context: no cookies, no language choice.

Screenshots go to test-artifacts/screenshots/ in the repository (ignored by git): the
pages' own (test_pages.py) and, when a test that used ``page`` fails, the page as it was
then (failures/<test>.png). test.sh installs a Chinese font so they are readable.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from apps import Role
from tests.integration.switch_process import READY_TIMEOUT_S, SwitchProcess

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never a downloaded browser
PASSWORD = "browser-test-pw-1"
WAIT_MS = 10_000  # longest any page event may take before a test fails
_WEB_URL = re.compile(r"Web UI on (http://\S+)")


def username_of(role: Role) -> str:
    return f"b_{role.value}"


@dataclass
class WebSwitch:
    process: SwitchProcess
    url: str

    def stop(self) -> None:
        self.process.stop()


def start_web_switch(workdir: Path, config_text: str = "") -> WebSwitch:
    """`callcenter serve` with one user per role (username ``b_<role>``, PASSWORD),
    running until ``stop()``; its web UI's URL is read from its "Web UI on" line."""
    process = SwitchProcess(workdir, config_text=config_text)
    for number, role in enumerate(Role, start=2001):
        process.add_user(username_of(role), PASSWORD, str(number), role.value)
    process.start()
    try:
        return WebSwitch(process, _web_url(process))
    except BaseException:
        process.stop()
        raise


def _web_url(process: SwitchProcess) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    assert process.reader is not None
    for seen in process.stdout_lines:
        if match := _WEB_URL.search(seen):
            return match.group(1)
    while True:
        line = process.reader.read_line(deadline)
        if line is None:
            raise RuntimeError(f"switch exited before its web UI; log:\n{process.log()}")
        process.stdout_lines.append(line)
        if match := _WEB_URL.search(line):
            return match.group(1)


@pytest.fixture(scope="session")
def web_switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSwitch]:
    switch = start_web_switch(tmp_path_factory.mktemp("browser-switch"))
    yield switch
    switch.stop()


# Playwright's sync API runs an event loop of its own in this thread for as long as it
# is open; pytest-asyncio cannot start another while it is. Module scope closes it
# before the next test module (and its async tests) runs.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # test.sh installs it: missing in CI is a broken setup
        pytest.skip(message)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield chromium
    chromium.close()


def new_page(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=url, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    return context, context.new_page()


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot kept as a test artifact: test-artifacts/screenshots/NAME.png."""
    target = SCREENSHOTS / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    print(f"screenshot: {target}")
    return target


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def page(browser: Browser, web_switch: WebSwitch,
         request: pytest.FixtureRequest) -> Iterator[Page]:
    context, fresh = new_page(browser, web_switch.url)
    yield fresh
    if request.node.stash.get(_FAILED, False):
        name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
        screenshot(fresh, f"failures/{name}")
    context.close()


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Type into the login form and submit it, as a person would; waits for the next
    page to load."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#login")
