"""ContactRecordService on SQLite and PostgreSQL: contact records (沟通记录) and the last N
of a customer, newest first, from one indexed query."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps import Database, UserService
from apps.contacts import _LAST as LAST_STATEMENT
from apps.contacts import ContactChannel, ContactEntry, ContactError, ContactRecordService
from apps.customers import CustomerService
from apps.models import ContactRecord, Customer


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.fixture
def contacts(db: Database, fixed_now: datetime) -> ContactRecordService:
    return ContactRecordService(db, clock=lambda: fixed_now)


@pytest.fixture
async def customers(db: Database, fixed_now: datetime) -> AsyncIterator[CustomerService]:
    async with CustomerService(db, clock=lambda: fixed_now) as service:
        yield service


async def test_a_record_keeps_who_when_how_and_what(
    contacts: ContactRecordService, customers: CustomerService, service: UserService,
    fixed_now: datetime,
) -> None:
    agent = await service.add_user("agent1", "password-1", extension="1001")
    customer = await customers.create_customer("张三")
    added = await contacts.add(customer.id, "phone", "询问账单 / asked about the bill",
                               agent_id=agent.id, call_id="c-42")
    assert added == ContactEntry(
        id=added.id, customer_id=customer.id, at=fixed_now, channel=ContactChannel.phone,
        text="询问账单 / asked about the bill", agent_id=agent.id, agent_username="agent1",
        call_id="c-42",
    )
    assert await contacts.last(customer.id, 5) == [added]


async def test_last_gives_the_newest_n_of_that_customer_only(
    contacts: ContactRecordService, customers: CustomerService, fixed_now: datetime
) -> None:
    one = await customers.create_customer("One")
    other = await customers.create_customer("Other")
    # Written out of order; an aware time in another zone is the same instant in UTC.
    beijing = timezone(timedelta(hours=8))
    for minutes in (5, 1, 9, 3, 7):
        at = (fixed_now + timedelta(minutes=minutes)).astimezone(beijing)
        await contacts.add(one.id, "sms", f"m{minutes}", at=at)
    await contacts.add(other.id, "visit", "elsewhere", at=fixed_now + timedelta(hours=1))
    last3 = await contacts.last(one.id, 3)
    assert [e.text for e in last3] == ["m9", "m7", "m5"]
    assert [e.at for e in last3] == [fixed_now + timedelta(minutes=m) for m in (9, 7, 5)]
    assert all(e.at.tzinfo == UTC for e in last3)
    assert [e.text for e in await contacts.last(one.id, 100)] == ["m9", "m7", "m5", "m3", "m1"]
    assert await contacts.last(other.id + 1, 3) == []


async def test_records_of_the_same_instant_come_newest_written_first(
    contacts: ContactRecordService, customers: CustomerService
) -> None:
    customer = await customers.create_customer("Same")
    for i in range(4):
        await contacts.add(customer.id, "other", f"t{i}")
    assert [e.text for e in await contacts.last(customer.id, 4)] == ["t3", "t2", "t1", "t0"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "fax"},
         "unknown channel 'fax' (choose from phone, sms, visit, email, other)"),
        ({"customer_id": 999}, "no customer with id 999"),
        ({"agent_id": 999}, "no user with id 999"),
        ({"at": datetime(2024, 1, 1)}, "the time of a contact must carry its time zone"),
        ({"text": "x" * 10_001}, "text is longer than 10000 characters"),
        ({"call_id": "c" * 65}, "call id is longer than 64 characters"),
    ],
)
async def test_bad_records_are_refused_and_nothing_is_written(
    contacts: ContactRecordService, customers: CustomerService, kwargs: dict[str, object],
    message: str,
) -> None:
    customer = await customers.create_customer("Refused")
    arguments: dict[str, object] = {"customer_id": customer.id, "channel": "email",
                                    "text": "hello", **kwargs}
    with pytest.raises(ContactError, match=exactly(message)):
        await contacts.add(**arguments)  # type: ignore[arg-type]
    assert await contacts.last(customer.id, 10) == []


async def test_n_must_be_sensible(contacts: ContactRecordService) -> None:
    with pytest.raises(ContactError, match=exactly("n must be from 1 to 500, not 0")):
        await contacts.last(1, 0)


async def test_a_customer_deleted_takes_its_records_along(
    contacts: ContactRecordService, customers: CustomerService, db: Database
) -> None:
    customer = await customers.create_customer("Gone")
    await contacts.add(customer.id, "phone", "bye")
    async with db.session() as session:
        await session.delete(await session.get(Customer, customer.id))
        await session.commit()
    assert await contacts.last(customer.id, 10) == []


async def test_last_reads_the_customer_at_index_in_order(
    contacts: ContactRecordService, customers: CustomerService, db: Database
) -> None:
    # One indexed query: the index gives the rows in order, no sort of all the
    # customer's records (on SQLite; PostgreSQL is asked with sequential scans off).
    customer = await customers.create_customer("Plan")
    await contacts.add(customer.id, "phone", "x")
    statement = LAST_STATEMENT.where(ContactRecord.customer_id == customer.id).limit(5)
    async with db.engine.begin() as connection:
        compiled = statement.compile(dialect=connection.dialect)
        params = compiled.construct_params()
        args = tuple(params[name] for name in compiled.positiontup or ())
        if db.dialect == "postgresql":
            await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        plan = " ".join(
            str(row) for row in await connection.exec_driver_sql(explain + str(compiled), args)
        )
    assert "ix_contact_records_customer_id_at" in plan, plan
    if db.dialect == "sqlite":
        assert "TEMP B-TREE" not in plan, plan


_example = iter(range(1_000_000))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 20), min_size=0, max_size=12), st.integers(1, 15))
async def test_last_equals_sorting_everything(
    contacts: ContactRecordService, customers: CustomerService, fixed_now: datetime,
    minutes: list[int], n: int,
) -> None:
    customer = await customers.create_customer(f"h{next(_example)}")
    written = [await contacts.add(customer.id, "phone", f"{i}",
                                  at=fixed_now + timedelta(minutes=m))
               for i, m in enumerate(minutes)]
    expected = sorted(written, key=lambda e: (e.at, e.id), reverse=True)[:n]
    assert await contacts.last(customer.id, n) == expected
