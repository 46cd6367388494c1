"""`callcenter customers import`, run for real in subprocesses on a temporary data dir."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from openpyxl import Workbook, load_workbook

from apps import (
    AuditLog,
    ContactRecordService,
    CustomerService,
    Database,
    UserService,
    seed_demo_data,
    upgrade_database,
)
from apps.demo import seed_demo_customers

pytestmark = pytest.mark.integration  # real SQLite files, real processes

REPO = Path(__file__).resolve().parent.parent


def callcenter(data_dir: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CALLCENTER_")}
    environ["CALLCENTER_DATA_DIR"] = str(data_dir)
    environ["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "callcenter", *args],
        cwd=data_dir.parent,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == expect, result.stderr
    assert "Traceback" not in result.stderr
    return result


def sheet(path: Path, *rows: list[Any]) -> Path:
    workbook = Workbook()
    worksheet = workbook.active
    assert worksheet is not None
    for row in rows:
        worksheet.append(row)
    workbook.save(path)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    return sheet(
        tmp_path / "customers.xlsx",
        ["客户编号", "客户名称", "手机", "VIP等级"],
        ["C1", "张三", "13800138000", 1],
        ["C2", None, "13900139000", 2],
        ["C3", "李四", "13700137000, 12", 3],
        ["C4", "王五", "13600136000", 4],
    )


def test_import_prints_counts_and_row_errors_and_repeats_harmlessly(
        data_dir: Path, customers: Path) -> None:
    first = callcenter(data_dir, "customers", "import", str(customers))
    assert first.stdout == (
        "imported 2, updated 0, unchanged 0, skipped 0, rejected 2\n"
        "row 3, column B (客户名称): missing name\n"
        "row 4, column C (手机): invalid phone number '12': not a mobile, fixed-line, "
        "400/800 or international number\n"
    )

    again = callcenter(data_dir, "customers", "import", str(customers), "--update")
    assert again.stdout.splitlines()[0] == (
        "imported 0, updated 0, unchanged 2, skipped 0, rejected 2")

    skipped = callcenter(data_dir, "customers", "import", str(customers), "--skip-existing")
    assert skipped.stdout.splitlines()[0] == (
        "imported 0, updated 0, unchanged 0, skipped 2, rejected 2")


def test_an_import_is_audited_as_the_system_from_the_command_line(
        data_dir: Path, customers: Path) -> None:
    callcenter(data_dir, "customers", "import", str(customers))

    async def entries() -> list[Any]:
        db = await Database.connect(f"sqlite+aiosqlite:///{data_dir}/callcenter.sqlite3")
        try:
            return await AuditLog(db).recent(10)
        finally:
            await db.close()

    [entry] = asyncio.run(entries())
    assert (entry.action, entry.actor, entry.source_ip) == (
        "customers.import", "system", "command-line")
    assert entry.detail == {"file": "customers.xlsx", "imported": 2, "updated": 0,
                            "unchanged": 0, "skipped": 0, "rejected": 2, "conflicts": 0,
                            "conflicts_choice": "skip"}


def test_errors_option_writes_the_rejected_rows(
        data_dir: Path, customers: Path, tmp_path: Path) -> None:
    report = tmp_path / "rejected.xlsx"

    result = callcenter(data_dir, "customers", "import", str(customers), "--errors", str(report))

    assert result.stdout.splitlines()[-1] == f"rejected rows written to {report}"
    rows = list(load_workbook(report).worksheets[0].iter_rows(values_only=True))
    assert [row[:3] for row in rows[1:]] == [
        (3, "column B \"客户名称\"", "missing name"),
        (4, "column C \"手机\"", "invalid phone number '12': not a mobile, fixed-line, 400/800 or "
                      "international number"),
    ]
    assert rows[2][3:] == ("C3", "李四", "13700137000, 12", 3)


def test_only_the_first_twenty_row_errors_are_printed(data_dir: Path, tmp_path: Path) -> None:
    path = sheet(tmp_path / "bad.xlsx", ["name", "phone"], *[["x", "1"] for _ in range(25)])
    lines = callcenter(data_dir, "customers", "import", str(path)).stdout.splitlines()
    assert lines[0] == "imported 0, updated 0, unchanged 0, skipped 0, rejected 25"
    assert len(lines) == 22 and lines[-1] == "... and 5 more"


@pytest.mark.parametrize(("content", "message"), [
    (b"name,phone\n", "not an .xlsx spreadsheet (not a zip file)"),
    (b"", "the file is empty"),
])
def test_a_file_that_is_no_spreadsheet_fails_with_one_line(
        data_dir: Path, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "customers.xlsx"
    path.write_bytes(content)
    result = callcenter(data_dir, "customers", "import", str(path), expect=1)
    assert result.stdout == ""
    assert result.stderr == f"callcenter: cannot import {path}: {message}\n"


def test_a_sheet_without_headers_or_name_column_fails(data_dir: Path, tmp_path: Path) -> None:
    empty = sheet(tmp_path / "empty.xlsx")
    result = callcenter(data_dir, "customers", "import", str(empty), expect=1)
    assert result.stderr == (
        f"callcenter: cannot import {empty}: no header row: the first sheet is empty\n")

    nameless = sheet(tmp_path / "nameless.xlsx", ["phone"], ["13800138000"])
    result = callcenter(data_dir, "customers", "import", str(nameless), expect=1)
    assert result.stderr == (
        f"callcenter: cannot import {nameless}: no column for the customer name "
        "(a header such as 客户名称, 姓名 or name)\n")


def test_a_missing_file_fails_with_one_line(data_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.xlsx"
    result = callcenter(data_dir, "customers", "import", str(missing), expect=1)
    assert result.stderr == f"callcenter: cannot import {missing}: No such file or directory\n"


def test_update_and_skip_existing_exclude_each_other(data_dir: Path, customers: Path) -> None:
    result = callcenter(data_dir, "customers", "import", str(customers), "--update",
                        "--skip-existing", expect=2)
    assert "not allowed with argument" in result.stderr


def test_the_configured_area_code_places_local_numbers(data_dir: Path, tmp_path: Path) -> None:
    local = sheet(tmp_path / "local.xlsx", ["客户名称", "电话"], ["深圳分公司", "88886666"])
    refused = callcenter(data_dir, "customers", "import", str(local))
    assert refused.stdout.startswith("imported 0, updated 0, unchanged 0, skipped 0, rejected 1")
    config = tmp_path / "callcenter.toml"
    config.write_text('[customers]\ndefault_area_code = "0755"\n', encoding="utf-8")
    placed = callcenter(data_dir, "customers", "import", str(local), "--config", str(config))
    assert placed.stdout.startswith("imported 1,")


# ---- conflicts: a known number under another name (issue 9) -------------------------------


def seed_liu(data_dir: Path) -> None:
    """The demo customers in the data dir's database, 刘建国 (13900000001) with ten
    contact records."""
    async def seed() -> None:
        url = f"sqlite:///{data_dir / 'callcenter.sqlite3'}"
        await upgrade_database(url)
        db = await Database.connect(url)
        try:
            users = UserService(db, "callcenter", password_hasher=PasswordHasher(
                time_cost=1, memory_cost=1024, parallelism=1))
            await seed_demo_data(users)
            async with CustomerService(db) as customers:
                contacts = ContactRecordService(db)
                await seed_demo_customers(customers, contacts, users)
                liu = await customers.lookup_by_number("13900000001")
                assert liu is not None
                for n in range(9):
                    await contacts.add(liu.customer_id, "phone", f"第{n + 2}次来电")
        finally:
            await db.close()

    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(seed())


def holders(data_dir: Path, number: str) -> list[tuple[str, int]]:
    """(name, contact records) of the customers with ``number``, oldest first."""
    with sqlite3.connect(data_dir / "callcenter.sqlite3") as connection:
        return list(connection.execute(
            "SELECT c.name, (SELECT count(*) FROM contact_records r WHERE r.customer_id = c.id)"
            " FROM customers c JOIN customer_phones p ON p.customer_id = c.id"
            " WHERE p.number = ? ORDER BY c.id", (number,)))


@pytest.fixture
def huang(tmp_path: Path) -> Path:
    return sheet(tmp_path / "huang.xlsx", ["客户名称", "手机"], ["黄晓明", "13900000001"])


@pytest.mark.parametrize("options", [(), ("--update",)])
def test_a_conflict_changes_nothing_by_default_and_exits_3(
        data_dir: Path, huang: Path, options: tuple[str, ...]) -> None:
    seed_liu(data_dir)

    result = callcenter(data_dir, "customers", "import", str(huang), *options, expect=3)

    assert result.stdout == (
        "imported 0, updated 0, unchanged 0, skipped 1, rejected 0\n"
        "row 2: number 13900000001 belongs to 刘建国, the sheet says 黄晓明 (skipped)\n")
    assert result.stderr == (
        "callcenter: 1 conflict left unchanged; choose with --conflicts skip|update|add\n")
    assert holders(data_dir, "13900000001") == [("刘建国", 10)]


@pytest.mark.parametrize(("choice", "summary", "resolved", "after"), [
    ("skip", "imported 0, updated 0, unchanged 0, skipped 1", "skipped", [("刘建国", 10)]),
    ("update", "imported 0, updated 1, unchanged 0, skipped 0", "updated", [("黄晓明", 10)]),
    ("add", "imported 1, updated 0, unchanged 0, skipped 0", "added",
     [("刘建国", 10), ("黄晓明", 0)]),
])
def test_conflicts_option_does_what_it_says(
        data_dir: Path, huang: Path, choice: str, summary: str, resolved: str,
        after: list[tuple[str, int]]) -> None:
    seed_liu(data_dir)

    result = callcenter(data_dir, "customers", "import", str(huang), "--conflicts", choice)

    assert result.stdout == (
        f"{summary}, rejected 0\n"
        f"row 2: number 13900000001 belongs to 刘建国, the sheet says 黄晓明 ({resolved})\n")
    assert result.stderr == ""
    assert holders(data_dir, "13900000001") == after
    # Applied once, the sheet and the database agree: nothing is a conflict any more
    # (except what was skipped).
    again = callcenter(data_dir, "customers", "import", str(huang), "--conflicts", choice)
    assert again.stdout.startswith(
        "imported 0, updated 0, unchanged 0, skipped 1" if choice == "skip"
        else "imported 0, updated 0, unchanged 1, skipped 0")
    assert holders(data_dir, "13900000001") == after


def test_conflicts_option_takes_only_the_three_choices(data_dir: Path, huang: Path) -> None:
    result = callcenter(data_dir, "customers", "import", str(huang), "--conflicts", "rename",
                        expect=2)
    assert "argument --conflicts: invalid choice: 'rename'" in result.stderr
