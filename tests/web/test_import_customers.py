"""Customer import in the browser: upload, mapping and preview, a background import whose
progress arrives over the user's WebSocket, counts, the error report (only one's own,
no path traversal, audited as export), refusals of non-spreadsheets and big files, and
who may import (table-driven over the six roles)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from apps import Role
from apps.customer_sheet import REPORT_HEADERS
from apps.permissions import ROLE_DEFAULTS
from tests.web.test_customers import MAX_UPLOAD_BYTES, Stack
from tests.web.test_customers import stack as stack_fixture

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
               ) -> list[dict[str, Any]]:
    """Start the import over the API; the events of the user's WebSocket until the end."""
    with stack.client.websocket_connect("/api/v1/ws", headers=ORIGIN) as socket:
        me = stack.client.get("/api/v1/me").json()  # a round trip: the socket subscribed
        assert me["id"] in stack.web.hub.connected_users()
        started = stack.client.post(f"/api/v1/customer-imports/{job}/start",
                                    json={"existing": existing},
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
    assert "invalid phone number &#39;12ab&#39;" in page.text  # the preview shows the reasons
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
                        "report_url": f"/customers/import/{job}/errors.xlsx"}
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
    assert by_row[4][1].startswith("B ") and "12ab" in by_row[4][2]
    assert by_row[5][1].startswith("A ") and by_row[5][2] == "missing name"
    assert by_row[6][1].startswith("C ") and by_row[6][2] == "unknown account manager 'nobody'"
    exports = stack.run(stack.audit.recent, 10, action="export")
    assert [(e.actor, e.target) for e in exports] == [
        ("service_manager", f"customer_import:{job}")]
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
    preview = stack.client.get(f"/api/v1/customer-imports/{job}").json()["preview"]
    assert preview["mapping"] == {"联络人名": "name", "手机": "phone"}
    assert preview["rows"] == [{"row": 2, "ok": True, "values": ["王小明", "13800138000"],
                                "errors": []}]
    bad = stack.client.post(f"/customers/import/{job}/mapping",
                            data={"csrf_token": token, "map-0": "salary"})
    assert bad.status_code == 400


@pytest.mark.parametrize("content,reason", [
    (b"name,phone\nWang,13800138000\n", "not an .xlsx spreadsheet"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old .xls file"),
    (b"", "the file is empty"),
])
def test_a_non_spreadsheet_is_refused_and_nothing_is_imported(
        stack: Stack, content: bytes, reason: str) -> None:
    token = stack.login_as("admin")
    response = upload(stack, token, content, "customers.xlsx")
    assert response.status_code == 400
    assert "无法读取该文件，未导入任何数据" in response.text and reason in response.text
    api = stack.client.post("/api/v1/customer-imports", headers={"X-CSRF-Token": token},
                            files={"file": ("c.xlsx", content)})
    assert api.status_code == 400
    assert api.json()["error"] == "unreadable"
    assert api.json()["message"].startswith("无法读取该文件，未导入任何数据：")
    english = stack.client.post("/api/v1/customer-imports?lang=en",
                                headers={"X-CSRF-Token": token},
                                files={"file": ("c.xlsx", content)})
    assert english.json()["message"].startswith(
        "The file cannot be read; nothing was imported: ")
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
