"""Customer import in the browser: upload, mapping and preview, a background import whose
progress arrives over the user's WebSocket, counts, the error report (only one's own,
no path traversal, audited as export), refusals of non-spreadsheets and big files, and
who may import (table-driven over the six roles)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import io
import re
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from apps import Role
from apps.customer_import import CustomerImporter
from apps.customer_sheet import REPORT_HEADERS
from apps.permissions import ROLE_DEFAULTS
from tests.web.test_customers import MAX_UPLOAD_BYTES, Stack
from tests.web.test_customers import stack as stack_fixture
from web import customer_import_routes as import_routes

stack = stack_fixture  # the database-backed app fixture, under the name the tests use

ORIGIN = {"origin": "http://testserver"}  # the WebSocket's same-origin check


def xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


GOOD_AND_BAD: list[list[Any]] = [
    ["客户名称", "手机", "客户经理", "VIP等级"],
    ["王小明", "13800138000", "account_manager", 2],   # row 2: good
    ["赵丽", "+86 139-0000-1111", None, None],          # row 3: good
    ["钱多多", "12ab", None, None],                      # row 4: bad phone (column B)
    [None, "13700000000", None, None],                  # row 5: missing name (column A)
    ["孙悟空", "13600000000", "nobody", None],          # row 6: unknown manager (column C)
    ["周杰", "13500000000", None, 1],                   # row 7: good
]


def upload(stack: Stack, token: str, content: bytes, filename: str = "客户.xlsx") -> Any:
    return stack.client.post("/customers/import", data={"csrf_token": token},
                             files={"file": (filename, content, "application/octet-stream")})


def job_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/customers/import/([A-Za-z0-9_-]+)", response.headers["location"])
    assert match is not None
    return match.group(1)


def run_import(stack: Stack, token: str, job: str, existing: str = "update",
               **choices: Any) -> list[dict[str, Any]]:
    """Start the import over the API (``choices``: conflicts, conflict_rows); the events
    of the user's WebSocket until the end."""
    with stack.client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        me = stack.client.get("/api/v1/me").json()  # a round trip: the socket subscribed
        assert me["id"] in stack.web.hub.connected_users()
        started = stack.client.post(f"/api/v1/customer-imports/{job}/start",
                                    json={"existing": existing, **choices},
                                    headers={"X-CSRF-Token": token})
        assert started.status_code == 202, started.text
        events = [socket.receive_json()]
        while events[-1]["type"] == "customer_import.progress":
            events.append(socket.receive_json())
    return events


def customer_count(stack: Stack) -> int:
    return stack.run(stack.customers.search, "").total


def test_import_with_good_and_bad_rows_reports_progress_counts_and_errors(
        stack: Stack) -> None:
    token = stack.login_as("service_manager")
    job = job_of(upload(stack, token, xlsx(GOOD_AND_BAD)))
    page = stack.client.get(f"/customers/import/{job}")
    assert page.status_code == 200
    assert 'name="map-0"' in page.text and 'value="name" selected' in page.text
    # The preview shows the reasons in the page's language, columns by their header.
    assert "拒绝：「手机」列 (B)：“12ab”不是电话号码" in page.text
    assert customer_count(stack) == 0  # a preview imports nothing

    with stack.client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        me = stack.client.get("/api/v1/me").json()  # a round trip: the socket subscribed
        assert me["id"] in stack.web.hub.connected_users()
        started = stack.client.post(f"/customers/import/{job}/start",
                                    data={"csrf_token": token, "existing": "update"})
        assert started.status_code == 303
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] == "customer_import.progress":
            events.append(socket.receive_json())
    progress, finished = events[:-1], events[-1]
    assert finished == {"type": "customer_import.finished", "job": job, "imported": 3,
                        "updated": 0, "unchanged": 0, "skipped": 0, "rejected": 3,
                        "conflicts": 0, "report_url": f"/customers/import/{job}/errors.xlsx"}
    # Batches of two rows: the bar moves more than once and ends full.
    assert len(progress) >= 3
    done = [event["rows_done"] for event in progress]
    assert done == sorted(done) and done[-1] == progress[-1]["rows_total"] == 6

    result_page = stack.client.get(f"/customers/import/{job}")
    assert re.search(r'id="import-imported">3<', result_page.text)
    assert re.search(r'id="import-rejected">3<', result_page.text)
    assert f'href="/customers/import/{job}/errors.xlsx"' in result_page.text
    assert sorted(c.name for c in stack.run(stack.customers.search, "").customers) == [
        "周杰", "王小明", "赵丽"]

    report = stack.client.get(f"/customers/import/{job}/errors.xlsx")
    assert report.status_code == 200
    assert report.headers["content-disposition"].startswith("attachment")
    rows = list(load_workbook(io.BytesIO(report.content)).active.iter_rows(values_only=True))
    assert rows[0][:3] == REPORT_HEADERS
    by_row = {row[0]: row for row in rows[1:]}
    assert sorted(by_row) == [4, 5, 6]
    assert {row: line[1:3] for row, line in by_row.items()} == {
        4: ("「手机」列 (B)", "“12ab”不是电话号码"),
        5: ("「客户名称」列 (A)", "缺少客户名称"),
        6: ("「客户经理」列 (C)", "没有名为“nobody”的客户经理")}
    english = stack.client.get(f"/customers/import/{job}/errors.xlsx?lang=en")
    lines = list(load_workbook(io.BytesIO(english.content)).active.iter_rows(values_only=True))
    assert {line[0]: line[1:3] for line in lines[1:]} == {
        4: ("column B “手机”", "“12ab” is not a telephone number"),
        5: ("column A “客户名称”", "missing name"),
        6: ("column C “客户经理”", "unknown account manager “nobody”")}
    exports = stack.run(stack.audit.recent, 10, action="export")
    assert [(e.actor, e.target) for e in exports] == [
        ("service_manager", f"customer_import:{job}")] * 2  # each download
    imports = stack.run(stack.audit.recent, 10, action="customers.import")
    assert imports[0].detail["imported"] == 3


def test_importing_again_with_skip_changes_nothing(stack: Stack) -> None:
    token = stack.login_as("admin")
    headers = {"X-CSRF-Token": token}
    content = xlsx(GOOD_AND_BAD)
    for existing, expected in (("update", {"imported": 3, "skipped": 0}),
                               ("skip", {"imported": 0, "skipped": 3})):
        created = stack.client.post("/api/v1/customer-imports", headers=headers,
                                    files={"file": ("c.xlsx", content)})
        assert created.status_code == 201, created.text
        job = created.json()["id"]
        event = run_import(stack, token, job, existing)[-1]
        assert event["type"] == "customer_import.finished"
        assert {k: event[k] for k in expected} == expected
        state = stack.client.get(f"/api/v1/customer-imports/{job}").json()
        assert state["state"] == "done" and state["result"]["rejected"] == 3
        again = stack.client.post(f"/api/v1/customer-imports/{job}/start",
                                  json={"existing": "update"}, headers=headers)
        assert again.status_code == 409
    assert customer_count(stack) == 3


def test_mapping_chosen_in_the_ui_is_used(stack: Stack) -> None:
    token = stack.login_as("admin")
    job = job_of(upload(stack, token, xlsx([["联络人名", "手机"], ["王小明", "13800138000"]])))
    page = stack.client.get(f"/customers/import/{job}")
    assert 'id="import-no-name"' in page.text  # nothing maps to the name yet
    assert 'id="import-start" disabled' in page.text
    mapped = stack.client.post(f"/customers/import/{job}/mapping",
                               data={"csrf_token": token, "map-0": "name", "map-1": "phone"})
    assert mapped.status_code == 303
    page = stack.client.get(f"/customers/import/{job}")
    assert 'id="import-no-name"' not in page.text
    check = stack.client.get(f"/api/v1/customer-imports/{job}").json()["check"]
    assert check["mapping"] == {"联络人名": "name", "手机": "phone"}
    preview = stack.client.get(f"/api/v1/customer-imports/{job}/preview").json()
    assert preview["rows"] == [{
        "row": 2, "outcome": "new", "values": ["王小明", "13800138000"], "changes": [],
        "customer_id": None, "existing_name": None, "sheet_name": "王小明", "number": None,
        "errors": [], "message": "新增客户"}]
    bad = stack.client.post(f"/customers/import/{job}/mapping",
                            data={"csrf_token": token, "map-0": "salary"})
    assert bad.status_code == 400


@pytest.mark.parametrize("content,reason,english_reason", [
    (b"name,phone\nWang,13800138000\n", "这不是 .xlsx 电子表格文件",
     "this is not an .xlsx spreadsheet"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100,
     "这是旧的 .xls 文件：请先在 Excel 中另存为 .xlsx",
     "this is an old .xls file: save it as .xlsx in Excel first"),
    (b"", "文件是空的", "the file is empty"),
])
def test_a_non_spreadsheet_is_refused_and_nothing_is_imported(
        stack: Stack, content: bytes, reason: str, english_reason: str) -> None:
    token = stack.login_as("admin")
    response = upload(stack, token, content, "customers.xlsx")
    assert response.status_code == 400
    # Said in the page's language only: no English inside the Chinese page.
    assert f"无法读取该文件，未导入任何数据：{reason}" in response.text
    assert english_reason not in response.text
    api = stack.client.post("/api/v1/customer-imports", headers={"X-CSRF-Token": token},
                            files={"file": ("c.xlsx", content)})
    assert api.status_code == 400
    assert api.json()["error"] == "unreadable"
    assert api.json()["message"] == f"无法读取该文件，未导入任何数据：{reason}"
    english = stack.client.post("/api/v1/customer-imports?lang=en",
                                headers={"X-CSRF-Token": token},
                                files={"file": ("c.xlsx", content)})
    assert english.json()["message"] == (
        f"The file cannot be read; nothing was imported: {english_reason}")
    assert customer_count(stack) == 0
    assert not stack.work_dir.exists() or not any(stack.work_dir.iterdir())  # nothing kept


def test_a_file_over_the_size_limit_is_refused(stack: Stack) -> None:
    token = stack.login_as("admin")
    response = upload(stack, token, b"x" * (MAX_UPLOAD_BYTES + 70_000))
    assert response.status_code == 413
    assert "文件过大" in response.text
    just_over = upload(stack, token, b"x" * (MAX_UPLOAD_BYTES + 1))
    assert just_over.status_code == 413
    assert customer_count(stack) == 0


def test_the_error_report_is_only_the_uploaders_and_no_path_leads_elsewhere(
        stack: Stack) -> None:
    token = stack.login_as("admin")
    job = job_of(upload(stack, token, xlsx(GOOD_AND_BAD)))
    # Not yet imported: there is no report.
    assert stack.client.get(f"/customers/import/{job}/errors.xlsx").status_code == 404
    assert run_import(stack, token, job)[-1]["rejected"] == 3
    assert stack.client.get(f"/customers/import/{job}/errors.xlsx").status_code == 200
    for attempt in (f"/customers/import/..%2F{job}/errors.xlsx",
                    "/customers/import/..%2F..%2F..%2Fetc%2Fpasswd/errors.xlsx",
                    f"/customers/import/{job}%2F..%2F..%2Fcallcenter.db/errors.xlsx",
                    f"/api/v1/customer-imports/{job}%2Fupload.xlsx/errors.xlsx",
                    f"/customers/import/{job}/upload.xlsx",
                    f"/customers/import/{job}/errors.xlsx/..%2Fupload.xlsx"):
        refused = stack.client.get(attempt)
        assert refused.status_code in (404, 405), attempt
        assert not refused.content.startswith(b"PK"), attempt  # no spreadsheet came back
    # Another user with the same capability does not see it.
    stack.login_as("service_manager")
    assert stack.client.get(f"/customers/import/{job}/errors.xlsx").status_code == 404
    assert stack.client.get(f"/api/v1/customer-imports/{job}").status_code == 404
    assert [e.actor for e in stack.run(stack.audit.recent, 10, action="export")] == ["admin"]


@pytest.mark.parametrize("role", list(Role))
def test_who_may_import(stack: Stack, role: Role) -> None:
    allowed = role in (Role.admin, Role.service_manager)
    assert allowed == ("customers.import" in ROLE_DEFAULTS[role])
    token = stack.login_as(role.value)
    assert stack.client.get("/customers/import").status_code == (200 if allowed else 403)
    response = upload(stack, token, xlsx(GOOD_AND_BAD))
    assert response.status_code == (303 if allowed else 403)
    api = stack.client.post("/api/v1/customer-imports", headers={"X-CSRF-Token": token},
                            files={"file": ("c.xlsx", xlsx(GOOD_AND_BAD))})
    assert api.status_code == (201 if allowed else 403)
    assert customer_count(stack) == 0


# ---- the preview of every row, and conflicts (issue 9) --------------------------------------

HUANG: list[list[Any]] = [["客户名称", "手机"], ["黄晓明", "13900000001"]]
CONFLICT_ZH = "冲突：号码 13900000001 属于已有客户“刘建国”，表中的名称是“黄晓明”"
CONFLICT_EN = ("Conflict: 13900000001 belongs to the existing customer “刘建国”; "
               "the sheet names “黄晓明”")
NO_COUNTS = {"new": 0, "update": 0, "unchanged": 0, "skip": 0, "conflict": 0, "rejected": 0}


def add_liu(stack: Stack) -> int:
    """刘建国 (13900000001, 01088880001) with ten contact records; his id."""
    liu = stack.run(stack.customers.create_customer, "刘建国",
                    phones=["13900000001", "01088880001"], title="总经理")
    for n in range(10):
        stack.run(stack.contacts.add, liu.id, "phone", f"第{n + 1}次来电")
    return liu.id


def api_upload(stack: Stack, token: str, rows: list[list[Any]]) -> dict[str, Any]:
    created = stack.client.post("/api/v1/customer-imports", headers={"X-CSRF-Token": token},
                                files={"file": ("c.xlsx", xlsx(rows))})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def holders(stack: Stack, number: str) -> list[tuple[int, str, int]]:
    """(id, name, contact records) of the customers with ``number``."""
    found = stack.run(stack.customers.search, number).customers
    return sorted((c.id, c.name, len(stack.run(stack.contacts.last, c.id, 50))) for c in found)


def test_a_conflict_shows_both_names_and_changes_nothing_by_default(stack: Stack) -> None:
    token = stack.login_as("service_manager")
    liu = add_liu(stack)

    created = api_upload(stack, token, HUANG)

    assert created["state"] == "checked"
    assert created["check"]["counts"] == {**NO_COUNTS, "conflict": 1}
    job = created["id"]
    preview = stack.client.get(f"/api/v1/customer-imports/{job}/preview").json()
    assert preview["rows"] == [{
        "row": 2, "outcome": "conflict", "values": ["黄晓明", "13900000001"], "changes": [],
        "customer_id": liu, "existing_name": "刘建国", "sheet_name": "黄晓明",
        "number": "13900000001", "errors": [], "message": CONFLICT_ZH}]
    english = stack.client.get(f"/api/v1/customer-imports/{job}/preview?lang=en").json()
    assert english["rows"][0]["message"] == CONFLICT_EN

    finished = run_import(stack, token, job)[-1]  # nothing chosen

    assert {k: finished[k] for k in ("imported", "updated", "skipped", "conflicts")} == {
        "imported": 0, "updated": 0, "skipped": 1, "conflicts": 1}
    assert holders(stack, "13900000001") == [(liu, "刘建国", 10)]
    audit = stack.run(stack.audit.recent, 1, action="customers.import")[0]
    assert (audit.detail["conflicts"], audit.detail["conflicts_choice"]) == (1, "skip")


@pytest.mark.parametrize("how", ["for all", "for the row"])
@pytest.mark.parametrize(("choice", "counts", "after"), [
    ("skip", (0, 0, 1), [("刘建国", 10)]),
    ("update", (0, 1, 0), [("黄晓明", 10)]),  # his records go with him
    ("add", (1, 0, 0), [("刘建国", 10), ("黄晓明", 0)]),
])
def test_the_operator_chooses_what_a_conflict_does(
        stack: Stack, how: str, choice: str, counts: tuple[int, int, int],
        after: list[tuple[str, int]]) -> None:
    token = stack.login_as("admin")
    liu = add_liu(stack)
    job = api_upload(stack, token, HUANG)["id"]
    chosen = ({"conflicts": choice} if how == "for all"
              else {"conflicts": "skip", "conflict_rows": {"2": choice}})

    finished = run_import(stack, token, job, **chosen)[-1]

    assert (finished["imported"], finished["updated"], finished["skipped"]) == counts
    found = holders(stack, "13900000001")
    assert [(name, contacts) for _, name, contacts in found] == after
    assert found[0][0] == liu
    state = stack.client.get(f"/api/v1/customer-imports/{job}").json()
    assert (state["conflicts"], state["conflict_rows"]) == (
        (choice, {}) if how == "for all" else ("skip", {"2": choice}))


def test_choices_are_checked_kept_and_closed_once_the_import_starts(stack: Stack) -> None:
    token = stack.login_as("admin")
    headers = {"X-CSRF-Token": token}
    add_liu(stack)
    job = api_upload(stack, token, HUANG)["id"]
    conflicts = f"/api/v1/customer-imports/{job}/conflicts"

    for bad, zh, en in (
            ({"conflicts": "rename"}, "“conflicts”必须是以下之一：skip, update, add",
             "'conflicts' must be one of: skip, update, add"),
            ({"conflict_rows": {"2": "merge"}}, "“2”必须是以下之一：skip, update, add",
             "'2' must be one of: skip, update, add"),
            ({"conflict_rows": {"two": "add"}}, "“two”不是行号", "'two' is no row number"),
            ({"conflict_rows": {"2": "add", "0": "add"}}, "“0”不是行号", "'0' is no row number"),
            ({"conflict_rows": ["add"]},
             "“conflict_rows”必须把行号对应到以下之一：skip, update, add",
             "'conflict_rows' must map row numbers to one of: skip, update, add")):
        for lang, message in (("zh", zh), ("en", en)):
            refused = stack.client.post(f"{conflicts}?lang={lang}", json=bad, headers=headers)
            assert refused.status_code == 400, bad
            assert refused.json() == {"error": "invalid", "message": message}
    assert stack.client.get(f"/api/v1/customer-imports/{job}?lang=zh").json()[
        "conflict_rows"] == {}  # a refused request changed nothing
    kept = stack.client.post(conflicts, json={"conflicts": "update",
                                              "conflict_rows": {"2": "add", "9": "skip"}},
                             headers=headers)
    assert kept.status_code == 200
    assert (kept.json()["conflicts"], kept.json()["conflict_rows"]) == (
        "update", {"2": "add", "9": "skip"})
    cleared = stack.client.post(conflicts, json={"conflict_rows": {"9": None}}, headers=headers)
    assert cleared.json()["conflict_rows"] == {"2": "add"}

    finished = run_import(stack, token, job)[-1]  # the start body chooses nothing new

    assert finished["imported"] == 1
    late = stack.client.post(conflicts, json={"conflicts": "skip"}, headers=headers)
    assert late.status_code == 409 and late.json()["error"] == "already_started"


def test_the_page_shows_the_conflict_and_the_operator_chooses_row_by_row(
        stack: Stack) -> None:
    token = stack.login_as("service_manager")
    liu = add_liu(stack)
    job = job_of(upload(stack, token, xlsx(HUANG)))

    page = stack.client.get(f"/customers/import/{job}")
    assert CONFLICT_ZH in page.text
    assert "共 1 行：新增 0，更新 0，无变化 0，冲突 1，拒绝 0" in page.text
    assert 'name="conflict-2"' in page.text and 'id="import-conflicts-all"' in page.text
    english = stack.client.get(f"/customers/import/{job}?lang=en")
    assert CONFLICT_EN in english.text
    assert "1 rows: 0 new, 0 to update, 0 unchanged, 1 conflicts, 0 rejected" in english.text
    assert "Add a new customer sharing the number" in english.text

    saved = stack.client.post(f"/customers/import/{job}/conflicts", data={
        "csrf_token": token, "conflicts": "update", "conflict-2": "add", "page": "1",
        "outcome": "conflict"})
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/customers/import/{job}?page=1&outcome=conflict"
    page = stack.client.get(saved.headers["location"] + "&lang=zh")  # English stuck
    assert '<option value="add" selected>新增客户（共用该号码）</option>' in page.text
    assert ('<option value="update" selected>更新该客户（采用表中的名称和字段）</option>'
            in page.text)

    with stack.client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        assert stack.client.get("/api/v1/me").status_code == 200  # the socket subscribed
        started = stack.client.post(f"/customers/import/{job}/start", data={
            "csrf_token": token, "existing": "update", "conflicts": "update",
            "conflict-2": "add", "map-0": "name", "map-1": "phone"})
        assert started.status_code == 303
        while (event := socket.receive_json())["type"] == "customer_import.progress":
            pass
    assert (event["imported"], event["updated"], event["conflicts"]) == (1, 0, 1)
    result = stack.client.get(f"/customers/import/{job}")
    assert re.search(r'id="import-conflict-rows">1<', result.text)
    assert [(name, n) for _, name, n in holders(stack, "13900000001")] == [
        ("刘建国", 10), ("黄晓明", 0)]
    assert holders(stack, "13900000001")[0][0] == liu


ROWS = 120  # more than two pages of the preview


def big_sheet() -> list[list[Any]]:
    rows: list[list[Any]] = [["客户名称", "手机", "VIP等级"]]
    for i in range(ROWS):
        rows.append([f"客户{i}", "12" if i in (50, 99) else f"138{i:08d}", 3 if i == 1 else None])
    return rows


def test_the_preview_counts_and_pages_every_row(stack: Stack) -> None:
    token = stack.login_as("admin")
    stack.run(stack.customers.create_customer, "客户0", phones=["13800000000"])  # unchanged
    stack.run(stack.customers.create_customer, "客户1", phones=["13800000001"])  # VIP 0 -> 3
    stack.run(stack.customers.create_customer, "老名字", phones=["13800000002"])  # conflict
    created = api_upload(stack, token, big_sheet())
    job = created["id"]
    counts = {"new": 115, "update": 1, "unchanged": 1, "skip": 0, "conflict": 1, "rejected": 2}
    assert created["check"]["counts"] == counts
    preview = f"/api/v1/customer-imports/{job}/preview"

    first = stack.client.get(preview).json()
    assert {k: first[k] for k in ("counts", "total", "page", "per_page", "pages")} == {
        "counts": counts, "total": ROWS, "page": 1, "per_page": 50, "pages": 3}
    assert [row["row"] for row in first["rows"]] == list(range(2, 52))
    assert [row["outcome"] for row in first["rows"][:4]] == [
        "unchanged", "update", "conflict", "new"]
    assert [row["message"] for row in first["rows"][:4]] == [
        "无变化", "更新：VIP等级",
        "冲突：号码 13800000002 属于已有客户“老名字”，表中的名称是“客户2”", "新增客户"]
    last = stack.client.get(f"{preview}?page=3").json()
    assert [row["row"] for row in last["rows"]] == list(range(102, 122))
    assert stack.client.get(f"{preview}?page=4").json()["rows"] == []
    wide = stack.client.get(f"{preview}?page=2&per_page=100").json()
    assert (wide["pages"], [row["row"] for row in wide["rows"]]) == (2, list(range(102, 122)))
    rejected = stack.client.get(f"{preview}?outcome=rejected&lang=en").json()
    assert (rejected["total"], rejected["pages"]) == (2, 1)
    assert [(row["row"], row["message"]) for row in rejected["rows"]] == [
        (row, "Rejected: column B “手机”: “12” is not a mobile, fixed-line, 400/800 or "
              "international number") for row in (52, 101)]
    update = stack.client.get(f"{preview}?outcome=update&lang=en").json()["rows"]
    assert [(row["row"], row["changes"], row["message"]) for row in update] == [
        (3, ["vip_level"], "Update: VIP level")]
    for bad in ("page=0", "per_page=0", "per_page=501", "outcome=maybe", "page=x"):
        assert stack.client.get(f"{preview}?{bad}").status_code == 400, bad
    assert stack.client.get(f"{preview}?outcome=maybe").json()["message"] == (
        "“outcome”必须是以下之一：new, update, unchanged, skip, conflict, rejected")

    page = stack.client.get(f"/customers/import/{job}")
    assert "共 120 行：新增 115，更新 1，无变化 1，冲突 1，拒绝 2" in page.text
    assert "第 1 / 3 页" in page.text and 'href="?page=2"' in page.text
    assert page.text.count('<tr class="') == 50
    third = stack.client.get(f"/customers/import/{job}?page=3&lang=en")
    assert "120 rows: 115 new, 1 to update, 1 unchanged, 1 conflicts, 2 rejected" in third.text
    assert "Page 3 of 3" in third.text and 'href="?page=2"' in third.text
    assert re.findall(r'<tr class="[a-z]+" data-row="(\d+)"', third.text) == [
        str(row) for row in range(102, 122)]
    conflicts = stack.client.get(f"/customers/import/{job}?outcome=conflict")
    assert re.findall(r'<tr class="([a-z]+)" data-row="(\d+)"', conflicts.text) == [
        ("conflict", "4")]

    finished = run_import(stack, token, job)[-1]
    assert {k: finished[k] for k in ("imported", "updated", "unchanged", "skipped",
                                     "rejected", "conflicts")} == {
        "imported": 115, "updated": 1, "unchanged": 1, "skipped": 1, "rejected": 2,
        "conflicts": 1}


def test_a_new_mapping_over_the_api_checks_the_sheet_again(stack: Stack) -> None:
    token = stack.login_as("admin")
    created = api_upload(stack, token, [["联络人名", "手机"], ["王小明", "13800138000"]])
    assert created["check"]["has_name_column"] is False
    assert created["check"]["counts"] == NO_COUNTS
    job = created["id"]

    mapped = stack.client.post(f"/api/v1/customer-imports/{job}/mapping",
                               json={"mapping": {"联络人名": "name", "手机": "phone"}},
                               headers={"X-CSRF-Token": token})

    assert mapped.status_code == 200, mapped.text
    assert mapped.json()["check"]["counts"] == {**NO_COUNTS, "new": 1}
    bad = stack.client.post(f"/api/v1/customer-imports/{job}/mapping",
                            json={"mapping": {"联络人名": "salary"}},
                            headers={"X-CSRF-Token": token})
    assert bad.status_code == 400


def import_pages(stack: Stack) -> import_routes.ImportPages:
    """The app's import pages (behind their route's guard), to reach their settings."""
    for route in stack.client.app.routes:  # type: ignore[attr-defined]
        if getattr(route, "path", None) == "/api/v1/customer-imports":
            pages = inspect.unwrap(route.endpoint).__self__
            assert isinstance(pages, import_routes.ImportPages)
            return pages
    raise AssertionError("no import routes")


def test_a_long_check_runs_on_and_reports_when_it_is_done(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    token = stack.login_as("admin")
    headers = {"X-CSRF-Token": token}
    pages = import_pages(stack)
    pages.s = dataclasses.replace(pages.s, check_wait_s=0.0)
    gate = asyncio.Event()
    check_file = CustomerImporter.check_file

    async def held(self: CustomerImporter, *args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return await check_file(self, *args, **kwargs)

    monkeypatch.setattr(CustomerImporter, "check_file", held)
    with stack.client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        assert stack.client.get("/api/v1/me").status_code == 200  # the socket subscribed
        created = api_upload(stack, token, HUANG)
        job = created["id"]
        assert (created["state"], created["check"]) == ("checking", None)
        early = stack.client.get(f"/api/v1/customer-imports/{job}/preview")
        assert early.status_code == 409
        assert early.json() == {"error": "still_checking",
                                "message": "文件仍在检查中，请在检查完成后继续"}
        start = stack.client.post(f"/api/v1/customer-imports/{job}/start?lang=en", json={},
                                  headers=headers)
        assert start.status_code == 409
        assert start.json()["message"] == (
            "The file is still being checked; go on when the check is done")
        page = stack.client.get(f"/customers/import/{job}")
        assert "正在检查文件…" in page.text and "/static/import.js" in page.text

        assert stack.client.portal is not None
        stack.client.portal.call(gate.set)
        while (event := socket.receive_json())["type"] == "customer_import.checking":
            pass
    assert event == {"type": "customer_import.checked", "job": job,
                     "counts": {**NO_COUNTS, "new": 1}}
    assert stack.client.get(f"/api/v1/customer-imports/{job}").json()["state"] == "checked"


def test_named_vip_levels_import_and_an_unknown_name_is_said_in_chinese_by_header(
        stack: Stack) -> None:
    token = stack.login_as("service_manager")
    job = job_of(upload(stack, token, xlsx([
        ["客户名称", "手机", "职务", "VIP等级"],
        ["钻石客户", "13811110001", None, "钻石卡"],
        ["金卡客户", "13811110002", None, "金卡"],
        ["白金客户", "13811110003", None, "白金卡"],
        ["银卡客户", "13811110004", None, "银卡"],
    ])))
    page = stack.client.get(f"/customers/import/{job}")
    assert ("拒绝：「VIP等级」列 (D)：“白金卡”不是VIP等级：请填写 钻石卡, 金卡, 银卡, 普通 之一，"
            "或 0 到 99 的整数") in page.text
    events = run_import(stack, token, job)
    assert (events[-1]["imported"], events[-1]["rejected"]) == (3, 1)
    report = stack.client.get(f"/customers/import/{job}/errors.xlsx")
    [line] = list(load_workbook(io.BytesIO(report.content)).active.iter_rows(
        min_row=2, values_only=True))
    assert line[:3] == (4, "「VIP等级」列 (D)", "“白金卡”不是VIP等级：请填写 钻石卡, 金卡, 银卡, "
                                               "普通 之一，或 0 到 99 的整数")
    listed = stack.client.get("/api/v1/customers").json()["customers"]
    assert [(c["name"], c["vip_level"], c["vip_level_name"]) for c in listed] == [
        ("金卡客户", 2, "金卡"), ("钻石客户", 3, "钻石卡"), ("银卡客户", 1, "银卡")]
