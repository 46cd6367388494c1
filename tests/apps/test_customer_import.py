"""Importing customer sheets into the database (SQLite, and PostgreSQL under ./test.sh):
counts, matching existing customers, groups, idempotence, the error report."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select, text

from apps import Database, Role, UserService, VipLevels, upgrade_database
from apps.customer_import import (
    REPORT_HEADERS,
    Change,
    ConflictChoice,
    CustomerImporter,
    ImportResult,
    RowOutcome,
    RowPlan,
    neutralise,
    write_error_report,
)
from apps.customer_sheet import SheetError
from apps.models import Customer, CustomerGroup, CustomerPhone

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
T1 = datetime(2024, 6, 1, 0, 0, 0, tzinfo=UTC)
HEADERS = ["客户编号", "客户名称", "手机", "集团编号", "集团名称", "VIP等级", "客户经理", "职务",
           "备注"]


class Literal(str):
    """Text kept as text in the sheet even when it starts with "=" (a user typed '=...)."""


def xlsx(*rows: Sequence[Any]) -> io.BytesIO:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
        for cell, value in zip(sheet[sheet.max_row], row, strict=False):
            if isinstance(value, Literal):
                cell.value, cell.data_type = str(value), "s"
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    return out


def importer(db: Database, now: datetime = T0, batch_rows: int = 1000) -> CustomerImporter:
    return CustomerImporter(db, clock=lambda: now, batch_rows=batch_rows)


def counts(result: ImportResult) -> tuple[int, int, int, int, int]:
    return (result.imported, result.updated, result.unchanged, result.skipped, result.rejected)


async def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every customer table, row by row, timestamps included."""
    async with db.engine.connect() as connection:
        return {
            table: [tuple(row) for row in await connection.execute(
                text(f"SELECT * FROM {table} ORDER BY id"))]
            for table in ("customer_groups", "customers", "customer_phones")
        }


async def customers(db: Database) -> list[tuple[Any, ...]]:
    """(external key, name, vip, manager id, title, group code, custom, sorted numbers)."""
    async with db.session() as session:
        rows = (await session.execute(
            select(Customer, CustomerGroup.code).outerjoin(CustomerGroup)
            .order_by(Customer.id))).all()
        phones = (await session.execute(select(CustomerPhone.customer_id,
                                               CustomerPhone.number))).all()
    numbers: dict[int, list[str]] = {}
    for customer_id, number in phones:
        numbers.setdefault(customer_id, []).append(number)
    return [(c.external_key, c.name, c.vip_level, c.account_manager_id, c.title, code,
             c.custom_fields, sorted(numbers.get(c.id, []))) for c, code in rows]


SHEET: list[list[Any]] = [
    HEADERS,
    ["C1", "张三", "13800138000,010-88886666", "G1", "某某集团", 3, "wang", "总经理", "老客户"],
    ["C2", "李四", "13900139000", "G1", None, None, "王芳", None, None],
    [None, "王五", "13700137000", None, "无编号集团", 1, None, None, None],
    ["C4", None, "13600136000", None, None, None, None, None, None],  # no name
    ["C5", "赵六", "555", None, None, None, None, None, None],  # bad number
    ["C6", "钱七", "13500135000", None, None, None, "nobody", None, None],
]


@pytest.fixture
async def wang(service: UserService) -> int:
    record = await service.add_user("wang", "password-w", role=Role.account_manager,
                                    name="王芳")
    return record.id


async def test_good_rows_import_and_bad_rows_are_reported(db: Database, wang: int) -> None:
    result = await importer(db).import_file(xlsx(*SHEET))

    assert counts(result) == (3, 0, 0, 0, 3)
    assert result.groups_created == 2
    assert [str(error) for error in result.errors] == [
        "row 5, column B (客户名称): missing name",
        "row 6, column C (手机): invalid phone number '555': "
        "not a mobile, fixed-line, 400/800 or international number",
        "row 7, column G (客户经理): unknown account manager 'nobody'",
    ]
    assert await customers(db) == [
        ("C1", "张三", 3, wang, "总经理", "G1", {"备注": "老客户"},
         ["01088886666", "13800138000"]),
        ("C2", "李四", 0, wang, None, "G1", {}, ["13900139000"]),
        (None, "王五", 1, None, None, "无编号集团", {}, ["13700137000"]),
    ]
    async with db.session() as session:
        groups = (await session.execute(
            select(CustomerGroup.code, CustomerGroup.name).order_by(CustomerGroup.id))).all()
    assert [tuple(group) for group in groups] == [("G1", "某某集团"), ("无编号集团", "无编号集团")]


async def test_importing_the_same_file_again_changes_nothing(db: Database, wang: int) -> None:
    await importer(db, T0).import_file(xlsx(*SHEET))
    before = await dump(db)

    again = await importer(db, T1).import_file(xlsx(*SHEET))

    assert counts(again) == (0, 0, 3, 0, 3)
    assert again.groups_created == 0
    assert await dump(db) == before  # not even updated_at moved


async def test_skip_mode_leaves_existing_customers_alone(db: Database, wang: int) -> None:
    await importer(db).import_file(xlsx(*SHEET))
    before = await dump(db)
    changed: list[list[Any]] = [
        HEADERS,
        ["C1", "张三改", "13800138000", None, None, 5, None, None, None],
        ["C9", "新客户", "13300133000", None, None, None, None, None, None],
    ]

    result = await importer(db, T1).import_file(xlsx(*changed), existing="skip")

    assert counts(result) == (1, 0, 0, 1, 0)
    after = await dump(db)
    assert after["customers"][:3] == before["customers"]
    assert len(after["customers"]) == 4


async def test_update_mode_changes_what_the_row_gives_and_adds_numbers(
        db: Database, wang: int) -> None:
    await importer(db).import_file(xlsx(*SHEET))
    changed: list[list[Any]] = [
        ["客户编号", "客户名称", "手机", "VIP等级", "爱好"],
        # Matched by external id: name and VIP change, a number is added, none removed,
        # title and group stay (no column), custom fields merge.
        ["C1", "张三丰", "13100131000", 5, "高尔夫"],
        # No external id: matched by its number; it takes this external id.
        ["C3", "王五", "13700137000", 1, None],
    ]

    result = await importer(db, T1).import_file(xlsx(*changed))

    assert counts(result) == (0, 2, 0, 0, 0)
    rows = await customers(db)
    assert rows[0] == ("C1", "张三丰", 5, wang, "总经理", "G1",
                       {"备注": "老客户", "爱好": "高尔夫"},
                       ["01088886666", "13100131000", "13800138000"])
    assert rows[2][:3] == ("C3", "王五", 1)
    async with db.session() as session:
        updated = await session.scalar(select(Customer.updated_at).where(
            Customer.external_key == "C1"))
        untouched = await session.scalar(select(Customer.updated_at).where(
            Customer.external_key == "C2"))
    assert (updated, untouched) == (T1, T0)


async def test_rows_that_conflict_with_the_database_are_refused(db: Database) -> None:
    await importer(db).import_file(xlsx(
        ["外部编号", "姓名", "手机"], ["A", "甲", "13800138000"], ["B", "乙", "13900139000"],
        [None, "丙", "13700137000 13500135000"], ["D", "丁", "13600136000"]))

    result = await importer(db).import_file(xlsx(
        ["外部编号", "姓名", "手机"],
        [None, "两个人的号码", "13800138000 13900139000"],
        ["Z", "别人的号码", "13600136000"],
        [None, "丙", "13700137000"],
        ["C", "丙", "13500135000"],  # 丙's other number
    ))

    assert counts(result) == (0, 0, 1, 0, 3)
    assert [str(error) for error in result.errors] == [
        "row 2: the phone numbers (13800138000, 13900139000) belong to 2 different "
        "customers already",
        "row 3: phone 13600136000 belongs to the customer with external id 'D'",
        "row 5: this is the same customer as row 4",
    ]
    assert result.rejected_rows[0].values == (None, "两个人的号码", "13800138000 13900139000")
    assert [name for _, name, *_ in await customers(db)] == ["甲", "乙", "丙", "丁"]


async def test_batches_share_groups_and_progress_is_reported(db: Database) -> None:
    rows: list[list[Any]] = [["姓名", "手机", "集团编号"]] + [
        [f"客户{i}", f"138{i:08d}", f"G{i % 2}"] for i in range(7)]
    seen: list[tuple[int, int]] = []

    result = await importer(db, batch_rows=3).import_file(
        xlsx(*rows), progress=lambda done, total: seen.append((done, total)))

    assert counts(result) == (7, 0, 0, 0, 0) and result.groups_created == 2
    assert seen == [(3, 7), (6, 7), (7, 7)]
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(CustomerGroup)) == 2


async def test_an_unreadable_file_imports_nothing(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "customers.xlsx"
    path.write_text("客户名称,手机\n张三,13800138000\n")

    with pytest.raises(SheetError) as error:
        await importer(db).import_file(path)

    assert str(error.value) == "not an .xlsx spreadsheet (not a zip file)"
    assert await dump(db) == {"customer_groups": [], "customers": [], "customer_phones": []}


async def test_a_check_plans_every_row_and_writes_nothing(db: Database, wang: int) -> None:
    plans: list[RowPlan] = []

    checked = await importer(db).check_file(xlsx(*SHEET), on_rows=plans.extend)

    assert [(plan.row, plan.outcome) for plan in plans] == [
        (2, RowOutcome.NEW), (3, RowOutcome.NEW), (4, RowOutcome.NEW),
        (5, RowOutcome.REJECTED), (6, RowOutcome.REJECTED), (7, RowOutcome.REJECTED)]
    assert checked.counts == {RowOutcome.NEW: 3, RowOutcome.UPDATE: 0, RowOutcome.UNCHANGED: 0,
                              RowOutcome.SKIP: 0, RowOutcome.CONFLICT: 0,
                              RowOutcome.REJECTED: 3}
    assert checked.groups_created == 2  # G1 (rows 2 and 3 share it) and 无编号集团
    assert await dump(db) == {"customer_groups": [], "customers": [], "customer_phones": []}


async def test_a_check_tells_each_row_what_it_would_change_batch_by_batch(
        db: Database, wang: int) -> None:
    await importer(db).import_file(xlsx(*SHEET))
    before = await dump(db)
    batches: list[list[tuple[int, RowOutcome, tuple[Change, ...]]]] = []
    seen: list[tuple[int, int]] = []

    checked = await importer(db, T1, batch_rows=2).check_file(
        xlsx(["客户编号", "客户名称", "手机", "VIP等级", "集团编号"],
             ["C1", "张三", "13800138000", 3, "G1"],  # as it is
             ["C2", "李四", "13900139000 13100131000", 4, None],  # VIP level and a number
             ["C7", "新人", "13200132000", None, "G9"],  # new, with a new group
             ["C8", "新人二", "13300133000", None, "G9"],  # the group it would create
             [None, "王五", "13700137000", 1, "G9"],  # by number; the new group, an id
             [None, "不是王五", "13700137000", None, None]),  # the number twice in the file
        on_rows=lambda plans: batches.append(
            [(plan.row, plan.outcome, plan.changes) for plan in plans]),
        progress=lambda done, total: seen.append((done, total)))

    assert batches == [
        [(2, RowOutcome.UNCHANGED, ()),
         (3, RowOutcome.UPDATE, (Change.VIP_LEVEL, Change.PHONES))],
        [(4, RowOutcome.NEW, ()), (5, RowOutcome.NEW, ())],
        [(6, RowOutcome.UPDATE, (Change.GROUP,)), (7, RowOutcome.REJECTED, ())],
    ]
    assert seen == [(2, 6), (4, 6), (6, 6)]
    assert checked.groups_created == 1
    assert await dump(db) == before


async def test_a_sheet_cut_off_midway_stops_the_import_where_it_breaks(db: Database) -> None:
    good = xlsx(["姓名", "手机"], *[[f"客户{i}", f"138{i:08d}"] for i in range(10)]).getvalue()
    damaged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content[:content.index(b'<row r="8"')] + b'<row r="8"><c r='
            target.writestr(item, content)
    damaged.seek(0)

    with pytest.raises(SheetError) as error:
        await importer(db, batch_rows=3).import_file(damaged)

    assert str(error.value).startswith("the sheet is damaged after row 7: ")
    async with db.session() as session:  # the whole batches before the break are in
        assert await session.scalar(select(func.count()).select_from(Customer)) == 6


# ---- error report ----------------------------------------------------------------------------


async def test_the_error_report_lists_rejected_rows_and_imports_once_corrected(
        db: Database, tmp_path: Path) -> None:
    result = await importer(db).import_file(xlsx(
        ["姓名", "手机", "备注"],
        ["好", "13800138000", None],
        [None, "13900139000", Literal("=HYPERLINK(\"http://evil\")")],
        ["坏", "+1", "@SUM(A1)"],
    ))
    report = tmp_path / "errors.xlsx"
    write_error_report(result, report)

    rows = list(load_workbook(report).worksheets[0].iter_rows(values_only=True))
    assert rows == [
        (*REPORT_HEADERS, "姓名", "手机", "备注"),
        (3, "column A \"姓名\"", "missing name", None, "13900139000",
         "'=HYPERLINK(\"http://evil\")"),
        (4, "column B \"手机\"", "invalid phone number '+1': "
         "not a mobile, fixed-line, 400/800 or international number", "坏", "'+1", "'@SUM(A1)"),
    ]

    # Fix the cells in the report and import it as it is: the report's columns are ignored.
    workbook = load_workbook(report)
    sheet = workbook.worksheets[0]
    sheet["D2"], sheet["E3"] = "改好", "13700137000"
    fixed = io.BytesIO()
    workbook.save(fixed)
    fixed.seek(0)
    again = await importer(db).import_file(fixed)
    assert counts(again) == (2, 0, 0, 0, 0)
    assert [(name, custom) for _, name, *_, custom, _ in await customers(db)] == [
        ("好", {}),
        ("改好", {"备注": "'=HYPERLINK(\"http://evil\")"}),
        ("坏", {"备注": "'@SUM(A1)"}),
    ]


@pytest.mark.parametrize(("value", "exported"), [
    ("=1+1", "'=1+1"), ("+8613800138000", "'+8613800138000"), ("-5", "'-5"),
    ("@cmd", "'@cmd"), ("\t=1", "'\t=1"), ("a=1", "a=1"), (-5, -5), (None, None),
    ("bell\x07", "bell"),
])
def test_exported_cells_never_become_formulas(value: object, exported: object) -> None:
    assert neutralise(value) == exported


# ---- properties ------------------------------------------------------------------------------

POOL_NUMBERS = [f"1380013800{i}" for i in range(6)]
sheet_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(["K1", "K2", "K3"])),  # external id
        st.one_of(st.none(), st.sampled_from(["甲", "乙", "丙"])),  # name
        st.lists(st.sampled_from([*POOL_NUMBERS, "123"]), max_size=2),  # phones
        st.one_of(st.none(), st.integers(0, 3)),  # VIP level
    ),
    max_size=8,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=sheet_rows, second=sheet_rows, choice=st.sampled_from(ConflictChoice))
def test_any_two_imports_repeated_change_nothing(
        tmp_path: Path, first: list[Any], second: list[Any], choice: ConflictChoice) -> None:
    """Whatever two sheets import one after the other, whatever is chosen for conflicts,
    importing the second again (the same choice) changes nothing, and every row is
    counted exactly once. When conflicts are skipped or added, the check before each
    import foretells its counts."""
    url = f"sqlite:///{tmp_path / 'property.db'}"

    async def scenario() -> None:
        await upgrade_database(url)
        db = await Database.connect(url)
        try:
            async with db.engine.begin() as connection:
                for table in ("customer_phones", "customers", "customer_groups"):
                    await connection.execute(text(f"DELETE FROM {table}"))
            for rows, now in ((first, T0), (second, T1)):
                sheet = [["外部编号", "姓名", "手机", "VIP"]] + [
                    [key, name, ",".join(phones) or None, vip] for key, name, phones, vip in rows]
                checked = await importer(db, now, batch_rows=3).check_file(xlsx(*sheet))
                result = await importer(db, now, batch_rows=3).import_file(
                    xlsx(*sheet), conflicts=choice)
                non_empty = sum(1 for row in sheet[1:] if any(v is not None for v in row))
                assert sum(counts(result)) == non_empty
                if choice is not ConflictChoice.UPDATE:  # which renames as it goes
                    assert foretold(checked.counts, choice) == counts(result)
                    assert len(result.conflicts) == checked.counts[RowOutcome.CONFLICT]
            before = await dump(db)
            again = await importer(db, T1 + (T1 - T0), batch_rows=3).import_file(
                xlsx(*sheet), conflicts=choice)
            assert (again.imported, again.updated) == (0, 0)
            assert await dump(db) == before
        finally:
            await db.close()

    asyncio.run(scenario())


def foretold(outcomes: Mapping[RowOutcome, int], choice: ConflictChoice,
             ) -> tuple[int, int, int, int, int]:
    """The counts an import makes of a check's outcomes, conflicts resolved by ``choice``."""
    conflicts = outcomes[RowOutcome.CONFLICT]
    return (outcomes[RowOutcome.NEW] + (conflicts if choice is ConflictChoice.ADD else 0),
            outcomes[RowOutcome.UPDATE] + (conflicts if choice is ConflictChoice.UPDATE else 0),
            outcomes[RowOutcome.UNCHANGED],
            outcomes[RowOutcome.SKIP] + (conflicts if choice is ConflictChoice.SKIP else 0),
            outcomes[RowOutcome.REJECTED])


# ---- named VIP levels -----------------------------------------------------------------------


async def test_named_vip_levels_land_as_ranks_and_an_unknown_name_is_reported(
        db: Database) -> None:
    # A real list writes its cards by name; before, every such row was refused.
    result = await importer(db).import_file(xlsx(
        ["客户名称", "手机", "VIP等级"],
        ["钻石客户", "13800000001", "钻石卡"],
        ["金卡客户", "13800000002", "金卡"],
        ["银卡客户", "13800000003", "银卡"],
        ["普通客户", "13800000004", "普通"],
        ["白金客户", "13800000005", "白金卡"],
        ["旧表客户", "13800000006", 2],
        ["没等级", "13800000007", None],
    ))
    assert counts(result) == (6, 0, 0, 0, 1)
    assert [(name, vip) for _, name, vip, *_ in await customers(db)] == [
        ("钻石客户", 3), ("金卡客户", 2), ("银卡客户", 1), ("普通客户", 0), ("旧表客户", 2),
        ("没等级", 0)]
    [error] = result.errors
    assert (error.row, error.column, error.header, error.reason.key) == (
        6, "C", "VIP等级", "bad_vip_level")
    assert dict(error.reason.params) == {"value": "白金卡", "names": "钻石卡, 金卡, 银卡, 普通",
                                         "max": 99}


async def test_configured_vip_levels_are_the_names_a_sheet_may_use(db: Database) -> None:
    levels = VipLevels(["黑金", "白金", "普通"])
    result = await CustomerImporter(db, clock=lambda: T0, vip_levels=levels).import_file(xlsx(
        ["客户名称", "手机", "客户等级"],
        ["甲", "13800000001", "黑金"],
        ["乙", "13800000002", "金卡"],
    ))
    assert counts(result) == (1, 0, 0, 0, 1)
    assert [(name, vip) for _, name, vip, *_ in await customers(db)] == [("甲", 2)]


async def test_a_second_vip_column_is_the_same_level_not_a_custom_field(db: Database) -> None:
    # "VIP等级" beside "等级" used to become a custom field: a second, different level.
    result = await importer(db).import_file(xlsx(
        ["客户名称", "手机", "等级", "VIP等级", "备注"],
        ["甲", "13800000001", "银卡", "金卡", "老客户"],
        ["乙", "13800000002", None, "钻石卡", None],
    ))
    assert counts(result) == (2, 0, 0, 0, 0)
    assert [(name, vip, custom) for _, name, vip, _, _, _, custom, _ in await customers(db)] == [
        ("甲", 2, {"备注": "老客户"}), ("乙", 3, {})]
