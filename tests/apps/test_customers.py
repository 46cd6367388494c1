"""CustomerService on SQLite and PostgreSQL: groups (集团), customers, numbers stored in
the national form, the caller lookup inbound routing and the screen pop use, search."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps import Database, UserService
from apps.customers import (
    _LOOKUP,
    MAX_PAGE_SIZE,
    CustomerError,
    CustomerMatch,
    CustomerService,
    PhoneRecord,
    PhoneTaken,
    customer_vip_level,
    normalize_customer_number,
)

MOBILE = "13800138000"
BEIJING = "01088886666"


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.fixture
async def customers(db: Database, fixed_now: datetime) -> AsyncIterator[CustomerService]:
    async with CustomerService(db, clock=lambda: fixed_now) as service:
        yield service


async def test_numbers_are_stored_in_the_national_form(
    customers: CustomerService, fixed_now: datetime
) -> None:
    created = await customers.create_customer(
        "  张三 ", phones=["+86 138-0013-8000", "010 8888 6666", "+44 20 7946 0018"],
        title="总经理", custom_fields={"行业": "制造", "employees": 120},
    )
    assert created.phones == (
        PhoneRecord("00442079460018", None), PhoneRecord(BEIJING, None),
        PhoneRecord(MOBILE, None),
    )
    assert (created.name, created.title, created.created_at) == ("张三", "总经理", fixed_now)
    assert await customers.get_customer(created.id) == created
    assert await customers.get_customer(created.id + 1) is None


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("abc", "invalid phone number 'abc': invalid character 'a' in number 'abc'"),
        ("", "invalid phone number '': empty number"),
        ("10086", "invalid phone number '10086': a short service number is no customer's "
                  "number"),
        ("88886666", "invalid phone number '88886666': a local number needs its area code"),
        ("0123", "invalid phone number '0123': not a mobile, fixed-line, 400/800 or "
                 "international number"),
    ],
)
async def test_a_number_that_does_not_normalise_is_refused_and_nothing_is_stored(
    customers: CustomerService, number: str, message: str
) -> None:
    with pytest.raises(CustomerError) as refused:
        await customers.create_customer("Li", phones=[MOBILE, number])
    assert str(refused.value) == message
    assert (await customers.search()).total == 0


async def test_a_default_area_code_places_local_numbers_for_storage_and_lookup(
    db: Database,
) -> None:
    async with CustomerService(db, default_area_code="010") as beijing:
        created = await beijing.create_customer("Wang", phones=["8888 6666"])
        assert created.phones == (PhoneRecord(BEIJING, None),)
        match = await beijing.lookup_by_number("88886666")
        assert match is not None and match.customer_id == created.id
    # Without an area code the same local caller ID is no one in particular.
    async with CustomerService(db) as anywhere:
        assert await anywhere.lookup_by_number("88886666") is None


async def test_a_number_is_unique_per_customer_but_may_be_shared(
    customers: CustomerService,
) -> None:
    first = await customers.create_customer("First", phones=[MOBILE])
    expected = f"customer {first.id} already has the number {MOBILE}"
    with pytest.raises(CustomerError, match=exactly(expected)):
        await customers.add_phone(first.id, "+8613800138000", label="work")
    with pytest.raises(CustomerError, match=exactly(f"number {MOBILE} is given more than once")):
        await customers.create_customer("Twice", phones=[MOBILE, "86 138 0013 8000"])
    # A household or a switchboard: two customers may call from one number.
    second = await customers.create_customer("Second", phones=["138 0013 8000"], vip_level=3)
    match = await customers.lookup_by_number(MOBILE)
    assert match is not None and match.customer_id == second.id  # the higher VIP level
    assert await customers.add_phone(first.id, BEIJING, "office") == PhoneRecord(
        BEIJING, "office")


async def test_a_number_another_customer_has_is_not_added_to_a_customer(
    customers: CustomerService,
) -> None:
    # Adding it would make the other customer's calls pop as this one's (the higher VIP
    # level wins a shared number); the import refuses it too.
    owner = await customers.create_customer("Owner", phones=[MOBILE])
    other = await customers.create_customer("Other", phones=[BEIJING], vip_level=2)
    expected = f"number {MOBILE} belongs to customer {owner.id} (Owner)"
    with pytest.raises(PhoneTaken, match=exactly(expected)) as taken:
        await customers.add_phone(other.id, "+86 138 0013 8000")
    assert (taken.value.number, taken.value.owner_id, taken.value.owner_name) == (
        MOBILE, owner.id, "Owner")
    # One edit is all or nothing: the name, the removal and the good number stay undone.
    with pytest.raises(PhoneTaken):
        await customers.update_customer(
            other.id, name="Renamed", vip_level=9, remove_phones=[BEIJING],
            add_phones=[("13900000000", "work"), (MOBILE, None)])
    assert await customers.get_customer(other.id) == other
    match = await customers.lookup_by_number(MOBILE)
    assert match is not None and match.customer_id == owner.id
    # A number taken off and put back with a new label in the same edit is no conflict.
    relabelled = await customers.update_customer(
        other.id, remove_phones=[BEIJING], add_phones=[(BEIJING, "office")])
    assert relabelled.phones == (PhoneRecord(BEIJING, "office"),)


async def test_lookup_sees_changes_made_after_it_first_ran(
    customers: CustomerService, db: Database
) -> None:
    # The lookup keeps its own connection open; it must not read an old snapshot, even
    # of changes made through another service object on another connection.
    assert await customers.lookup_by_number(MOBILE) is None
    async with CustomerService(db) as elsewhere:
        created = await elsewhere.create_customer("Late", phones=[MOBILE])
        first = await customers.lookup_by_number(MOBILE)
        await elsewhere.update_customer(created.id, name="Later", vip_level=4)
    second = await customers.lookup_by_number(MOBILE)
    assert first is not None and (first.name, first.vip_level) == ("Late", 0)
    assert second is not None and (second.name, second.vip_level) == ("Later", 4)


async def test_concurrent_lookups_each_get_their_own_answer(customers: CustomerService) -> None:
    made = [await customers.create_customer(f"n{i}", phones=[f"1390000000{i}"])
            for i in range(5)]
    numbers = [f"+86 139 0000 000{i % 5}" for i in range(40)] + ["13700000000"] * 5
    matches = await asyncio.gather(*(customers.lookup_by_number(n) for n in numbers))
    assert [m.customer_id if m else None for m in matches] == [
        made[i % 5].id for i in range(40)] + [None] * 5


async def test_removing_a_number_ends_its_lookup(customers: CustomerService) -> None:
    created = await customers.create_customer("Zhao", phones=[MOBILE, BEIJING])
    await customers.remove_phone(created.id, "+86 10 8888 6666")
    assert await customers.lookup_by_number(BEIJING) is None
    assert await customers.lookup_by_number(MOBILE) is not None
    expected = f"customer {created.id} has no number {BEIJING}"
    with pytest.raises(CustomerError, match=exactly(expected)):
        await customers.remove_phone(created.id, BEIJING)
    with pytest.raises(CustomerError, match=exactly("no customer with id 999")):
        await customers.add_phone(999, MOBILE)


async def test_lookup_gives_the_group_vip_level_and_account_manager(
    customers: CustomerService, service: UserService
) -> None:
    manager = await service.add_user("mgr", "password-1", extension="8001", role="account_manager",
                                     name="钱经理")
    own = await service.add_user("own", "password-1", extension="8002")
    group = await customers.create_group("G001", "华为集团", vip_level=5,
                                         account_manager_id=manager.id)
    member = await customers.create_customer("Sun", group_id=group.id, phones=[MOBILE],
                                             vip_level=2, title="采购")
    assert await customers.lookup_by_number("+86 138 0013 8000") == CustomerMatch(
        customer_id=member.id, name="Sun", title="采购", number=MOBILE, vip_level=5,
        group_id=group.id, group_code="G001", group_name="华为集团",
        account_manager_id=manager.id, account_manager_username="mgr",
        account_manager_name="钱经理", account_manager_extension="8001",
    )
    # The customer's own manager and a VIP level above the group's come first.
    await customers.set_account_manager(member.id, own.id)
    await customers.update_customer(member.id, vip_level=9)
    match = await customers.lookup_by_number(MOBILE)
    assert match is not None
    assert (match.vip_level, match.account_manager_username, match.account_manager_extension) \
        == (9, "own", "8002")


async def test_lookup_of_a_customer_without_group_or_manager(customers: CustomerService) -> None:
    alone = await customers.create_customer("Zhou", phones=[BEIJING])
    match = await customers.lookup_by_number("010-88886666")
    assert match == CustomerMatch(alone.id, "Zhou", None, BEIJING, 0, None, None, None,
                                  None, None, None, None)


@pytest.mark.parametrize("caller", ["", "anonymous", "10086", "13900000000", "+", "0" * 70])
async def test_unknown_and_unusable_caller_ids_match_no_one(
    customers: CustomerService, caller: str
) -> None:
    await customers.create_customer("Wu", phones=[MOBILE])
    assert await customers.lookup_by_number(caller) is None


async def test_an_unknown_account_manager_is_refused(customers: CustomerService) -> None:
    created = await customers.create_customer("Zheng")
    with pytest.raises(CustomerError, match=exactly("no user with id 999 to be account manager")):
        await customers.set_account_manager(created.id, 999)
    with pytest.raises(CustomerError, match=exactly("no user with id 7 to be account manager")):
        await customers.create_group("G1", "Group", account_manager_id=7)
    with pytest.raises(CustomerError, match=exactly("no customer with id 999")):
        await customers.set_account_manager(999, None)
    assert (await customers.get_customer(created.id)) == created


async def test_custom_fields_round_trip_and_bad_values_are_refused(
    customers: CustomerService,
) -> None:
    fields = {"行业": "制造", "staff": 120, "revenue": 1.5, "key_account": True}
    created = await customers.create_customer("Feng", custom_fields=fields)
    fetched = await customers.get_customer(created.id)
    assert fetched is not None and fetched.custom_fields == fields
    for bad, message in [
        ({"x": {"nested": 1}}, "custom field 'x' must be text, a number or true/false, not "
                               "{'nested': 1}"),
        ({"x": None}, "custom field 'x' must be text, a number or true/false, not None"),
        ({"x": float("nan")}, "custom field 'x' must be a finite number, not nan"),
        ({" ": 1}, "custom field names must be non-empty text, not ' '"),
    ]:
        with pytest.raises(CustomerError) as refused:
            await customers.update_customer(created.id, custom_fields=bad)
        assert str(refused.value) == message
    updated = await customers.update_customer(created.id, custom_fields={"a": "b"})
    assert updated.custom_fields == {"a": "b"}


async def test_updates_change_only_what_is_given(customers: CustomerService) -> None:
    group = await customers.create_group("G2", "Group")
    created = await customers.create_customer("Chen", title="CTO", group_id=group.id,
                                              phones=[MOBILE], external_key="crm-1")
    renamed = await customers.update_customer(created.id, name="Chen Jie")
    assert renamed == created.__class__(**{**created.__dict__, "name": "Chen Jie"})
    cleared = await customers.update_customer(created.id, title=None, group_id=None)
    assert (cleared.title, cleared.group_id, cleared.name) == (None, None, "Chen Jie")
    with pytest.raises(CustomerError, match=exactly("customer name is required")):
        await customers.update_customer(created.id, name="   ")
    expected = ("unknown VIP level '-1': give one of 钻石卡, 金卡, 银卡, 普通 or a whole number "
                "0 to 99")
    with pytest.raises(CustomerError, match=exactly(expected)):
        await customers.update_customer(created.id, vip_level=-1)
    with pytest.raises(CustomerError, match=exactly("no customer group with id 999")):
        await customers.update_customer(created.id, group_id=999)


async def test_external_keys_are_unique(customers: CustomerService) -> None:
    first = await customers.create_customer("A", external_key="crm-1")
    expected = f"customer {first.id} already has the external key 'crm-1'"
    with pytest.raises(CustomerError, match=exactly(expected)):
        await customers.create_customer("B", external_key="crm-1")
    second = await customers.create_customer("B", external_key="crm-2")
    with pytest.raises(CustomerError, match="already has the external key 'crm-1'"):
        await customers.update_customer(second.id, external_key="crm-1")
    assert await customers.get_customer_by_external_key("crm-2") == second


async def test_groups_and_their_members(customers: CustomerService) -> None:
    group = await customers.create_group(" G100 ", "中国移动", vip_level=3,
                                         custom_fields={"region": "华北"})
    assert (group.code, group.name, group.vip_level) == ("G100", "中国移动", 3)
    expected = "a customer group with code G100 already exists"
    with pytest.raises(CustomerError, match=exactly(expected)):
        await customers.create_group("G100", "Other")
    other = await customers.create_group("G200", "Other")
    zed = await customers.create_customer("Zed", group_id=group.id)
    amy = await customers.create_customer("Amy", group_id=group.id, phones=[MOBILE])
    await customers.create_customer("Bob", group_id=other.id)
    assert [c.id for c in await customers.list_group_members(group.id)] == [amy.id, zed.id]
    updated = await customers.update_group(group.id, name="中国移动北京", vip_level=4)
    assert (updated.name, updated.vip_level, updated.code) == ("中国移动北京", 4, "G100")
    assert await customers.get_group(group.id) == updated
    assert await customers.get_group_by_code("G100") == updated
    assert await customers.get_group(999) is None
    with pytest.raises(CustomerError, match=exactly("no customer group with id 999")):
        await customers.list_group_members(999)
    with pytest.raises(CustomerError, match=exactly("no customer group with id 999")):
        await customers.create_customer("Nobody", group_id=999)


async def test_search_by_name_or_number_is_paged_and_sorted(customers: CustomerService) -> None:
    names = ["Wang Fang", "wang lei", "Li Wang", "Zhang", "100% Pure", "under_score"]
    made = {}
    for i, name in enumerate(names):
        made[name] = await customers.create_customer(name, phones=[f"1390000000{i}"])
    page = await customers.search("WANG", limit=2)
    assert [c.name for c in page.customers] == ["Li Wang", "Wang Fang"]
    assert (page.total, page.offset, page.limit) == (3, 0, 2)
    rest = await customers.search("wang", offset=2, limit=2)
    assert [c.name for c in rest.customers] == ["wang lei"]
    # LIKE wildcards in the query are plain characters.
    assert [c.name for c in (await customers.search("%")).customers] == ["100% Pure"]
    assert [c.name for c in (await customers.search("_")).customers] == ["under_score"]
    # Numbers: a part of the digits, or the whole number in any format.
    assert [c.name for c in (await customers.search("0000003")).customers] == ["Zhang"]
    zhang = (await customers.search("+86 139-0000-0003")).customers
    assert zhang == (made["Zhang"],)
    assert (await customers.search("")).total == len(names)
    assert (await customers.search("nobody")).customers == ()
    with pytest.raises(CustomerError, match=re.escape(f"limit <= {MAX_PAGE_SIZE}")):
        await customers.search("x", limit=MAX_PAGE_SIZE + 1)


async def test_caller_lookup_is_one_probe_of_the_number_index(
    customers: CustomerService, db: Database
) -> None:
    await customers.create_customer("Plan", phones=[MOBILE])
    async with db.engine.begin() as connection:
        compiled = _LOOKUP.compile(dialect=connection.dialect)
        params = compiled.construct_params({"number": MOBILE})
        args = tuple(params[name] for name in compiled.positiontup or ())
        if db.dialect == "postgresql":
            # A near-empty table is scanned whatever the indexes; ask what it would use.
            await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        plan = (await connection.exec_driver_sql(explain + str(compiled), args)).all()
    assert "ix_customer_phones_number" in " ".join(str(row) for row in plan)


# --- every way of writing a number finds the same customer ------------------------------

_mobiles = st.builds(lambda p, rest: f"1{p}{rest:09d}", st.sampled_from("3456789"),
                     st.integers(0, 10**9 - 1))
_fixed = st.one_of(
    st.builds(lambda a, first, rest: (a, f"{first}{rest:07d}"), st.sampled_from(["10", "21"]),
              st.sampled_from("2345678"), st.integers(0, 10**7 - 1)),
    st.builds(lambda a, first, rest, n: (a, f"{first}{rest:0{n}d}"[: n + 1]),
              st.sampled_from(["755", "571"]), st.sampled_from("2345678"),
              st.integers(0, 10**7 - 1), st.sampled_from([6, 7])),
)


def _mobile_spellings(nsn: str) -> list[str]:
    spaced = f"{nsn[:3]} {nsn[3:7]} {nsn[7:]}"
    return [nsn, f"+86{nsn}", f"0086{nsn}", f"86{nsn}", f"+86 {spaced}", spaced.replace(" ", "-"),
            f"(+86) {spaced}", f"0{nsn}"]


def _fixed_spellings(area: str, local: str) -> list[str]:
    return [f"0{area}{local}", f"0{area}-{local}", f"(0{area}) {local}", f"+86{area}{local}",
            f"+86 {area} {local}", f"0086{area}{local}", f"86{area}{local}"]


@given(_mobiles)
def test_every_spelling_of_a_mobile_normalises_alike(nsn: str) -> None:
    assert {normalize_customer_number(s) for s in _mobile_spellings(nsn)} == {nsn}


@given(_fixed)
def test_every_spelling_of_a_fixed_line_normalises_alike(number: tuple[str, str]) -> None:
    area, local = number
    assert {normalize_customer_number(s) for s in _fixed_spellings(area, local)} == {
        f"0{area}{local}"}


@given(st.text(max_size=80))
def test_any_text_is_a_stored_number_or_a_customer_error(number: str) -> None:
    try:
        national = normalize_customer_number(number)
    except CustomerError as exc:
        assert str(exc).startswith(f"invalid phone number {number!r}: ")
    else:
        assert national.isdigit() and normalize_customer_number(national) == national


_example = itertools.count()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_mobiles.map(_mobile_spellings),
                 _fixed.map(lambda f: _fixed_spellings(*f))),
       st.data())
async def test_a_customer_is_found_by_any_spelling_of_its_number(
    customers: CustomerService, spellings: list[str], data: st.DataObject
) -> None:
    stored_as = data.draw(st.sampled_from(spellings))
    national = normalize_customer_number(stored_as)
    existing = await customers.lookup_by_number(national)
    if existing is None:
        created = await customers.create_customer(f"c{next(_example)}", phones=[stored_as])
        customer_id = created.id
    else:  # the same number drawn again in this test's database
        customer_id = existing.customer_id
    for spelling in spellings:
        match = await customers.lookup_by_number(spelling)
        assert match is not None, spelling
        assert (match.customer_id, match.number) == (customer_id, national)


async def test_my_customers_are_my_own_and_my_groups_members_without_a_manager(
        customers: CustomerService, service: UserService) -> None:
    me = await service.add_user("am1", "password-1", role="account_manager")
    other = await service.add_user("am2", "password-1", role="account_manager")
    group = await customers.create_group("G1", "华信集团", vip_level="金卡",
                                         account_manager_id=me.id)
    await customers.create_customer("自己的", phones=["13800000001"], account_manager_id=me.id)
    await customers.create_customer("集团成员", phones=["13800000002"], group_id=group.id)
    await customers.create_customer("集团里别人的", phones=["13800000003"], group_id=group.id,
                                    account_manager_id=other.id)
    await customers.create_customer("别人的", phones=["13800000004"],
                                    account_manager_id=other.id)
    mine = await customers.search(manager_id=me.id)
    assert [c.name for c in mine.customers] == ["自己的", "集团成员"]
    assert mine.total == 2
    assert [c.name for c in (await customers.search("集团", manager_id=other.id)).customers] \
        == ["集团里别人的"]
    # The page carries its customers' groups: the list shows the one level a customer has.
    member = mine.customers[1]
    assert mine.group_of(member) == await customers.get_group(group.id)
    assert customer_vip_level(member, mine.group_of(member)) == 2


async def test_levels_are_given_by_name_or_rank_and_stored_as_the_rank(
        customers: CustomerService) -> None:
    created = await customers.create_customer("王", phones=[MOBILE], vip_level="钻石卡")
    assert created.vip_level == 3
    assert (await customers.update_customer(created.id, vip_level=" 银卡 ")).vip_level == 1
    assert (await customers.update_customer(created.id, vip_level=7)).vip_level == 7
    with pytest.raises(CustomerError, match="unknown VIP level '白金卡'"):
        await customers.update_customer(created.id, vip_level="白金卡")
