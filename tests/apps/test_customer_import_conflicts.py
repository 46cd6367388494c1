"""A sheet row whose number is a known customer's under another name (issue 9): a
conflict that renames no one unless the operator says so, shown with both names by the
check, and resolved per row or for all conflicts: skip, update or add."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from apps import ContactRecordService, CustomerService, Database, UserService, seed_demo_data
from apps.customer_import import (
    Change,
    ConflictChoice,
    CustomerImporter,
    RowOutcome,
    RowPlan,
)
from apps.demo import seed_demo_customers
from apps.models import ContactRecord
from tests.apps.test_customer_import import T0, T1, counts, dump, importer, xlsx

CONTACTS = 10


async def contacts_of(db: Database) -> dict[int, int]:
    """Customer id -> how many contact records it has."""
    async with db.session() as session:
        rows = await session.execute(
            select(ContactRecord.customer_id, func.count()).group_by(ContactRecord.customer_id))
    return {customer_id: n for customer_id, n in rows}


async def everything(db: Database) -> dict[str, Any]:
    return {**await dump(db), "contacts": await contacts_of(db)}


@pytest.fixture
async def liu(db: Database, service: UserService) -> int:
    """The demo data, and ten contact records of 刘建国 (13900000001, 01088880001);
    returns his id."""
    await seed_demo_data(service)
    async with CustomerService(db) as customers:
        contacts = ContactRecordService(db)
        await seed_demo_customers(customers, contacts, service)
        match = await customers.lookup_by_number("13900000001")
        assert match is not None and match.name == "刘建国"
        for n in range(CONTACTS - 1):
            await contacts.add(match.customer_id, "phone", f"第{n + 2}次来电")
    return match.customer_id


def huang() -> Any:
    return xlsx(["客户名称", "手机", "职务"], ["黄晓明", "13900000001", "IT主管"])


async def names_with(db: Database, number: str) -> list[str]:
    async with CustomerService(db) as customers:
        page = await customers.search(number)
    return [customer.name for customer in page.customers]


async def test_the_check_shows_the_conflict_with_both_names(db: Database, liu: int) -> None:
    plans: list[RowPlan] = []
    before = await everything(db)

    checked = await importer(db).check_file(huang(), on_rows=plans.extend)

    assert plans == [RowPlan(2, RowOutcome.CONFLICT, ("黄晓明", "13900000001", "IT主管"),
                             customer_id=liu, existing_name="刘建国", sheet_name="黄晓明",
                             number="13900000001")]
    assert checked.counts[RowOutcome.CONFLICT] == 1
    assert sum(checked.counts.values()) == 1
    assert await everything(db) == before


async def test_by_default_a_conflict_changes_nothing_and_is_reported(
        db: Database, liu: int) -> None:
    before = await everything(db)

    result = await importer(db, T1).import_file(huang())  # existing="update", the default

    assert counts(result) == (0, 0, 0, 1, 0)
    [conflict] = result.conflicts
    assert (conflict.row, conflict.number, conflict.existing_name, conflict.sheet_name,
            conflict.resolution) == (2, "13900000001", "刘建国", "黄晓明", ConflictChoice.SKIP)
    after = await everything(db)
    assert after == before
    assert after["contacts"][liu] == CONTACTS


async def test_update_renames_the_customer_because_the_operator_said_so(
        db: Database, liu: int) -> None:
    result = await importer(db, T1).import_file(huang(), conflicts="update")

    assert counts(result) == (0, 1, 0, 0, 0)
    assert result.conflicts[0].resolution is ConflictChoice.UPDATE
    assert result.conflicts[0].changes == (Change.NAME, Change.TITLE)
    assert await names_with(db, "13900000001") == ["黄晓明"]
    assert (await contacts_of(db))[liu] == CONTACTS  # the same customer, his records
    again = await importer(db, T1).import_file(huang(), conflicts="update")
    assert counts(again) == (0, 0, 1, 0, 0)  # now the name matches


async def test_add_makes_a_new_customer_sharing_the_number(db: Database, liu: int) -> None:
    result = await importer(db, T1).import_file(huang(), conflicts=ConflictChoice.ADD)

    assert counts(result) == (1, 0, 0, 0, 0)
    assert await names_with(db, "13900000001") == ["刘建国", "黄晓明"]
    contacts = await contacts_of(db)
    assert contacts[liu] == CONTACTS
    assert len(contacts) == 4  # the four demo customers; the new one has none
    async with CustomerService(db) as customers:
        match = await customers.lookup_by_number("13900000001")
    # The caller lookup: the higher VIP level (his group's 3), then the older customer.
    assert match is not None and (match.customer_id, match.name) == (liu, "刘建国")
    again = await importer(db, T1).import_file(huang(), conflicts=ConflictChoice.ADD)
    assert counts(again) == (0, 0, 1, 0, 0)  # the new 黄晓明 is matched by name now


async def test_a_choice_for_one_row_overrides_the_choice_for_all(
        db: Database, liu: int) -> None:
    sheet = xlsx(["客户名称", "手机"],
                 ["黄晓明", "13900000001"],  # 刘建国's
                 ["何丽丽", "13900000003"],  # 何丽's
                 ["郑海", "075566660004"])  # 郑海's: the same name, no conflict
    result = await importer(db, T1).import_file(
        sheet, conflicts="update", conflict_rows={2: "skip", 4: "add"})

    assert counts(result) == (0, 1, 1, 1, 0)
    assert [(plan.row, plan.existing_name, plan.sheet_name, plan.resolution)
            for plan in result.conflicts] == [
        (2, "刘建国", "黄晓明", ConflictChoice.SKIP),
        (3, "何丽", "何丽丽", ConflictChoice.UPDATE)]
    assert await names_with(db, "13900000001") == ["刘建国"]
    assert await names_with(db, "13900000003") == ["何丽丽"]


async def test_a_skip_choice_for_existing_customers_does_not_decide_conflicts(
        db: Database, liu: int) -> None:
    result = await importer(db, T1).import_file(huang(), existing="skip", conflicts="add")
    assert counts(result) == (1, 0, 0, 0, 0)


async def test_the_same_name_among_the_holders_of_a_shared_number_is_the_match(
        db: Database, liu: int) -> None:
    await importer(db, T0).import_file(huang(), conflicts="add")
    before = await everything(db)

    for name, choice in (("刘建国", "update"), ("黄晓明", "update"), ("黄晓明", "add")):
        sheet = xlsx(["客户名称", "手机"], [name, "13900000001"])
        result = await importer(db, T1).import_file(sheet, conflicts=choice)
        assert counts(result) == (0, 0, 1, 0, 0), name
    # Neither name: which of the two would an update be? Refused.
    result = await importer(db, T1).import_file(
        xlsx(["客户名称", "手机"], ["张伟", "13900000001"]), conflicts="update")
    assert [str(error) for error in result.errors] == [
        "row 2: the phone numbers (13900000001) belong to 2 different customers already"]
    assert await everything(db) == before


async def test_a_row_after_the_one_that_updated_its_customer_is_refused(
        db: Database, liu: int) -> None:
    # Both rows are 刘建国 by number; the first renames him, the second is his again.
    sheet = xlsx(["客户名称", "手机"], ["黄晓明", "13900000001"], ["刘建国", "01088880001"])

    result = await CustomerImporter(db, clock=lambda: T1).import_file(sheet, conflicts="update")

    assert counts(result) == (0, 1, 0, 0, 1)
    assert [str(error) for error in result.errors] == [
        "row 3: this is the same customer as row 2"]


async def test_no_row_takes_a_number_from_another_customer(db: Database) -> None:
    await importer(db, T0).import_file(xlsx(
        ["外部编号", "姓名", "手机"], ["K1", "甲", "13800138000"], ["K2", "乙", "13900139000"]))
    before = await dump(db)

    by_key = await importer(db, T1).import_file(xlsx(
        ["外部编号", "姓名", "手机"], ["K1", "甲", "13800138000 13900139000"]))  # 乙's too
    by_name = await importer(db, T1).import_file(xlsx(
        ["姓名", "手机"], ["乙", "13900139000 13800138000"]), conflicts="update")  # 甲's too

    assert [str(error) for error in by_key.errors + by_name.errors] == [
        "row 2: phone 13900139000 belongs to another customer (乙) already",
        "row 2: the phone numbers (13800138000, 13900139000) belong to 2 different customers "
        "already"]
    assert await dump(db) == before
