"""Customers in the browser: import a spreadsheet (mapping, preview, progress over the
WebSocket, counts, the error report), conflicts shown with both names and resolved by
the operator, find a customer by a number written another way, add a contact record
(沟通记录, its time in Beijing time), VIP levels by name on the list, and an account
manager's 我的客户."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook, load_workbook
from playwright.sync_api import Browser, Page, WebSocket

from apps import Role
from apps.customer_import import BATCH_ROWS, REPORT_HEADERS
from apps.permissions import ROLE_DEFAULTS
from tests.browser.conftest import WebSwitch, log_in, new_page, username_of
from web.customer_messages import CUSTOMER_MESSAGES

pytestmark = pytest.mark.integration

HEADERS = ("客户名称", "手机", "职务", "VIP等级")
# Enough rows for several progress events (one per batch) and an import that is still
# running when its page opens the WebSocket.
GOOD_ROWS = 3 * BATCH_ROWS
IMPORT_WAIT_MS = 30_000


def zh(key: str) -> str:
    # The customer pages' own catalogue: web.i18n has it only once web.customers is
    # imported, which this module (run alone) does not do.
    return CUSTOMER_MESSAGES[key]["zh"]


def role_with(*capabilities: str) -> Role:
    """A role other than admin holding ``capabilities`` by default: the test proves the
    pages work for an ordinary role, not only for the all-powerful one."""
    return next(role for role in Role
                if role is not Role.admin and set(capabilities) <= ROLE_DEFAULTS[role])


IMPORTER = role_with("customers.import", "customers.edit", "contacts.write")


@pytest.fixture
def importer(page: Page) -> Iterator[Page]:
    log_in(page, username_of(IMPORTER))
    yield page


def write_sheet(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    sheet.append(list(HEADERS))
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def upload(page: Page, sheet: Path) -> None:
    """Upload the sheet and wait for its preview (a long check reloads the page when it
    is done)."""
    page.goto("/customers/import")
    page.set_input_files("#import-upload input[type=file]", sheet)
    with page.expect_navigation():
        page.click("#import-upload button[type=submit]")
    page.wait_for_selector("#import-form", timeout=IMPORT_WAIT_MS)


def start_and_wait(page: Page) -> None:
    with page.expect_navigation():
        page.click("#import-start")
    page.wait_for_selector("#import-result", timeout=IMPORT_WAIT_MS)


def count(page: Page, key: str) -> int:
    return int(page.locator(f"#import-{key}").inner_text())


def test_find_a_customer_by_another_spelling_of_the_number_and_add_a_contact_record(
        importer: Page, tmp_path: Path) -> None:
    page = importer
    upload(page, write_sheet(tmp_path / "one.xlsx",
                             [("王芳", "+86 138 0013 8000", "采购经理", 2)]))
    start_and_wait(page)
    assert count(page, "imported") == 1

    page.goto("/customers")
    page.fill("#customer-search input[name=q]", "138-0013-8000")
    with page.expect_navigation():
        page.click("#customer-search button[type=submit]")
    rows = page.locator("#customers tbody tr[data-customer-id]")
    assert rows.count() == 1
    assert rows.first.locator("td").first.inner_text() == "王芳"
    assert rows.first.locator(".phone").inner_text() == "13800138000"

    with page.expect_navigation():
        rows.first.locator("a").first.click()
    assert page.locator("#customer-name").inner_text() == "王芳"
    assert page.locator("#customer-title").inner_text() == "采购经理"
    assert page.locator("#customer-phones .phone").inner_text() == "13800138000"
    assert page.locator("#contacts tr.contact").count() == 0

    form = page.locator("#contact-add")
    form.locator("select[name=channel]").select_option("visit")
    form.locator("textarea[name=text]").fill("上门拜访，客户要求下周回电")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()

    records = page.locator("#contacts tr.contact")
    assert records.count() == 1
    cells = [cell.strip() for cell in records.first.locator("td").all_inner_texts()]
    assert cells[1:] == [zh("customers.channel.visit"), username_of(IMPORTER),
                         "上门拜访，客户要求下周回电"]

    # Its time reads as Beijing time to the minute ([web] timezone's default), while the
    # machine-readable attribute keeps the stored UTC time.
    stamp = records.first.locator("time")
    stored = datetime.fromisoformat(stamp.get_attribute("datetime") or "")
    assert stored.utcoffset() == timedelta(0)
    shown = stored.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert cells[0] == stamp.inner_text().strip() == shown

    # The record is there on a fresh load too, not only on the page the POST returned.
    page.reload()
    assert page.locator("#contacts tr.contact").count() == 1


def test_excel_import_preview_progress_counts_and_error_report(importer: Page,
                                                               tmp_path: Path) -> None:
    page = importer
    good = [(f"导入客户{i}", f"139{i:08d}", "经理", i % 5) for i in range(GOOD_ROWS)]
    bad: dict[int, tuple[object, ...]] = {
        # Excel row number (the header is row 1) -> a row the import must refuse
        4: ("", "13912340000", "经理", 1),  # no name
        7: ("坏号码", "12345", "经理", 1),  # not a phone number
        9: ("坏等级", "13912340001", "经理", "很高"),  # no VIP level
    }
    fill = iter(good)
    rows = [bad[excel_row] if excel_row in bad else next(fill)
            for excel_row in range(2, GOOD_ROWS + len(bad) + 2)]
    upload(page, write_sheet(tmp_path / "customers.xlsx", rows))

    # The mapping found from the headers, and a preview with the bad rows marked.
    selects = page.locator("#import-mapping select")
    assert [selects.nth(i).get_attribute("aria-label") for i in range(selects.count())] \
        == list(HEADERS)
    assert [selects.nth(i).input_value() for i in range(selects.count())] \
        == ["name", "phone", "title", "vip_level"]
    preview = page.locator("#import-preview tbody tr")
    rejected_preview = [int(row.locator("td").first.inner_text())
                        for row in preview.all() if "rejected" in (row.get_attribute("class")
                                                                  or "")]
    assert rejected_preview == sorted(bad)

    events: list[dict[str, Any]] = []

    def listen(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: events.append(json.loads(payload)))

    page.on("websocket", listen)
    start_and_wait(page)

    assert count(page, "imported") == GOOD_ROWS
    assert count(page, "rejected") == len(bad)
    bar = page.locator("#import-progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(GOOD_ROWS + len(bad))

    job = page.locator("#import-job").get_attribute("data-job")
    mine = [event for event in events if event.get("job") == job]
    progress = [event for event in mine if event["type"] == "customer_import.progress"]
    assert progress, f"no progress over the WebSocket; events: {events}"
    assert progress[-1]["rows_done"] == progress[-1]["rows_total"] == GOOD_ROWS + len(bad)
    assert [event["rows_done"] for event in progress] == sorted(
        event["rows_done"] for event in progress)
    assert mine[-1]["type"] == "customer_import.finished"

    with page.expect_download() as download_info:
        page.click("#import-report")
    report_path = tmp_path / "errors.xlsx"
    download_info.value.save_as(report_path)
    report = load_workbook(report_path, read_only=True).active
    assert report is not None
    lines = [tuple(row) for row in report.iter_rows(values_only=True)]
    assert lines[0][:3] == REPORT_HEADERS
    by_row = {line[0]: line for line in lines[1:]}
    assert sorted(by_row) == sorted(bad)
    # Columns by their header, reasons in the page's language (Chinese here).
    assert {row: line[1:3] for row, line in by_row.items()} == {
        4: ("「客户名称」列 (A)", "缺少客户名称"),
        7: ("「手机」列 (B)", "号码“12345”是短号码（服务号），不是客户的号码"),
        9: ("「VIP等级」列 (D)",
            "“很高”不是VIP等级：请填写 钻石卡, 金卡, 银卡, 普通 之一，或 0 到 99 的整数"),
    }
    for excel_row, line in by_row.items():
        assert line[3:3 + len(HEADERS)] == tuple(v if v != "" else None
                                                 for v in bad[excel_row]), excel_row


def search(page: Page, query: str) -> list[str]:
    """The names the customers page lists for ``query``."""
    page.goto("/customers")
    page.fill("#customer-search input[name=q]", query)
    with page.expect_navigation():
        page.click("#customer-search button[type=submit]")
    rows = page.locator("#customers tbody tr[data-customer-id]")
    return sorted(row.locator("td").first.inner_text() for row in rows.all())


def test_a_conflict_shows_both_names_and_the_operator_chooses_what_it_does(
        importer: Page, tmp_path: Path) -> None:
    page = importer
    # Numbers no other test of the session uses.
    liu, wang, new = "13788880001", "13788880002", "13788880003"
    upload(page, write_sheet(tmp_path / "first.xlsx",
                             [("刘建国", liu, "总经理", 3), ("王强", wang, None, None)]))
    start_and_wait(page)
    assert count(page, "imported") == 2

    upload(page, write_sheet(tmp_path / "second.xlsx", [
        ("黄晓明", liu, "IT主管", None),  # row 2: 刘建国's number
        ("王小强", wang, None, None),  # row 3: 王强's number
        ("新客户", new, None, None),  # row 4
    ]))

    assert page.locator("#import-counts").inner_text() == (
        "共 3 行：新增 1，更新 0，无变化 0，冲突 2，拒绝 0")
    outcomes = {int(row.get_attribute("data-row") or 0): (row.get_attribute("class"),
                                                          row.locator("td.outcome").inner_text())
                for row in page.locator("#import-preview tbody tr").all()}
    assert outcomes == {
        2: ("conflict", f"冲突：号码 {liu} 属于已有客户“刘建国”，表中的名称是“黄晓明”"),
        3: ("conflict", f"冲突：号码 {wang} 属于已有客户“王强”，表中的名称是“王小强”"),
        4: ("new", "新增客户"),
    }
    # 王强 becomes 王小强 (the choice for all conflicts); 黄晓明 is someone else.
    page.select_option("#import-conflicts-all", "update")
    page.select_option("select[name=conflict-2]", "add")
    with page.expect_navigation():
        page.click("#import-save-choices")
    assert page.locator("#import-conflicts-all").input_value() == "update"
    assert page.locator("select[name=conflict-2]").input_value() == "add"
    assert page.locator("select[name=conflict-3]").input_value() == ""  # as for all
    start_and_wait(page)

    assert (count(page, "imported"), count(page, "updated"), count(page, "skipped")) == (2, 1, 0)
    assert count(page, "conflict-rows") == 2
    assert search(page, liu) == ["刘建国", "黄晓明"]
    assert search(page, wang) == ["王小强"]


def list_rows(page: Page) -> dict[str, list[str]]:
    """The customer list as shown: name -> the row's cells."""
    rows = page.locator("#customers tbody tr[data-customer-id]")
    return {cells[0]: cells for cells in (
        [cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all())}


def test_a_sheet_with_named_vip_levels_lands_and_the_list_shows_the_names(
        importer: Page, tmp_path: Path) -> None:
    page = importer
    upload(page, write_sheet(tmp_path / "levels.xlsx", [
        ("名卡钻石", "13766660001", "董事长", "钻石卡"),
        ("名卡金", "13766660002", None, "金卡"),
        ("名卡银", "13766660003", None, "银卡"),
        ("名卡白金", "13766660004", None, "白金卡"),
    ]))
    rejected = page.locator("#import-preview tr.rejected td.outcome")
    assert rejected.all_inner_texts() == [
        "拒绝：「VIP等级」列 (D)：“白金卡”不是VIP等级：请填写 钻石卡, 金卡, 银卡, 普通 之一，"
        "或 0 到 99 的整数"]
    start_and_wait(page)
    assert (count(page, "imported"), count(page, "rejected")) == (3, 1)

    page.goto("/customers")
    page.fill("#customer-search input[name=q]", "名卡")
    with page.expect_navigation():
        page.click("#customer-search button[type=submit]")
    headers = [h.strip() for h in page.locator("#customers thead th").all_inner_texts()]
    assert headers[:6] == ["客户名称", "职务", "电话", "集团", "VIP等级", "客户经理"]
    shown = {name: cells[4] for name, cells in list_rows(page).items()}
    assert shown == {"名卡钻石": "钻石卡", "名卡金": "金卡", "名卡银": "银卡"}
    with page.expect_navigation():
        page.locator("#customers a", has_text="名卡钻石").first.click()
    assert page.locator("#customer-vip").inner_text() == "钻石卡"  # the same one level


def test_an_account_manager_filters_the_list_to_my_customers(
        importer: Page, tmp_path: Path, browser: Browser, web_switch: WebSwitch) -> None:
    manager = username_of(Role.account_manager)
    path = tmp_path / "managed.xlsx"
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    sheet.append(["客户名称", "手机", "客户经理", "集团名称", "集团编号"])
    sheet.append(["经管客户甲", "13755550001", manager, None, None])
    sheet.append(["经管客户乙", "13755550002", manager, "经理集团", "MG01"])
    sheet.append(["经管无人", "13755550003", None, None, None])
    workbook.save(path)
    upload(importer, path)
    start_and_wait(importer)
    assert count(importer, "imported") == 3

    context, page = new_page(browser, web_switch.url)
    try:
        log_in(page, manager)
        page.goto("/customers?q=经管")
        everyone = list_rows(page)
        assert {"经管客户甲", "经管客户乙", "经管无人"} <= set(everyone)
        assert everyone["经管客户乙"][3] == "经理集团"
        assert everyone["经管客户甲"][5] == everyone["经管客户乙"][5] != ""
        page.check("#customers-mine")
        with page.expect_navigation():
            page.click("#customer-search button[type=submit]")
        assert sorted(list_rows(page)) == ["经管客户乙", "经管客户甲"]
        assert page.locator("#customers-mine").is_checked()
    finally:
        context.close()
