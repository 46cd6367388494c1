from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete

from apps.audit import SYSTEM, AuditEntry, AuditError, AuditLog
from apps.db import Database
from apps.models import User
from apps.users import UserService


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(fixed_now: datetime) -> FakeClock:
    return FakeClock(fixed_now)


@pytest.fixture
def audit(db: Database, clock: FakeClock) -> AuditLog:
    return AuditLog(db, clock=clock)


async def test_a_recorded_entry_comes_back_with_everything_it_was_given(
    audit: AuditLog, service: UserService, fixed_now: datetime
) -> None:
    alice = await service.add_user("alice", "password-a", extension="1001")

    written = await audit.record(
        "call.barge", actor_id=alice.id, actor="alice", target="call:c-42",
        detail={"agent": "bob", "客户": "张伟", "vip_level": 3}, source_ip="127.0.0.1",
    )

    [entry] = await audit.recent(10)
    assert entry == written
    assert (entry.at, entry.actor_id, entry.actor, entry.action, entry.target,
            entry.source_ip) == (fixed_now, alice.id, "alice", "call.barge", "call:c-42",
                                 "127.0.0.1")
    assert entry.at.tzinfo is UTC
    assert entry.detail == {"agent": "bob", "客户": "张伟", "vip_level": 3}


async def test_the_system_is_the_actor_unless_one_is_named(audit: AuditLog) -> None:
    await audit.record("db.upgrade")
    [entry] = await audit.recent(1)
    assert (entry.actor_id, entry.actor, entry.target, entry.detail, entry.source_ip) == (
        None, "system", None, {}, None)
    assert (SYSTEM.id, SYSTEM.username) == (None, "system")


async def test_a_local_time_is_stored_as_utc(db: Database) -> None:
    beijing = datetime(2024, 5, 6, 15, 0, tzinfo=timezone(timedelta(hours=8)))
    await AuditLog(db, clock=lambda: beijing).record("login")
    [entry] = await AuditLog(db).recent(1)
    assert entry.at == datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
    assert entry.at.tzinfo is UTC


async def test_recent_is_newest_first_and_filters(
    audit: AuditLog, clock: FakeClock, service: UserService
) -> None:
    alice = await service.add_user("alice", "password-a")
    bob = await service.add_user("bob", "password-b")
    start = clock.now
    for action, who in [("login", alice), ("login_failed", None), ("login", bob),
                        ("export", alice), ("login", alice)]:
        if who is None:
            await audit.record(action, actor="mallory", source_ip="10.0.0.9")
        else:
            await audit.record(action, actor_id=who.id, actor=who.username)
        clock.advance(60)

    def described(entries: list[AuditEntry]) -> list[tuple[str, str]]:
        return [(e.action, e.actor) for e in entries]

    assert described(await audit.recent(3)) == [
        ("login", "alice"), ("export", "alice"), ("login", "bob")]
    assert described(await audit.recent(10, action="login")) == [
        ("login", "alice"), ("login", "bob"), ("login", "alice")]
    assert described(await audit.recent(10, actor_id=alice.id)) == [
        ("login", "alice"), ("export", "alice"), ("login", "alice")]
    assert described(await audit.recent(10, since=start + timedelta(seconds=120))) == [
        ("login", "alice"), ("export", "alice"), ("login", "bob")]
    assert described(await audit.recent(
        10, action="login", actor_id=alice.id, since=start + timedelta(seconds=1))) == [
        ("login", "alice")]


async def test_entries_of_one_clock_tick_keep_their_order(audit: AuditLog) -> None:
    for n in range(5):
        await audit.record("export", target=f"report-{n}")
    assert [e.target for e in await audit.recent(5)] == [f"report-{n}" for n in (4, 3, 2, 1, 0)]


async def test_a_failed_write_raises_and_stores_nothing(audit: AuditLog) -> None:
    # actor_id names no user: the foreign key refuses the row at commit.
    with pytest.raises(AuditError, match=r"^audit entry 'login' was not written: "):
        await audit.record("login", actor_id=4242, actor="ghost")
    assert await audit.recent(10) == []


async def test_a_detail_that_is_not_json_is_refused_before_writing(audit: AuditLog) -> None:
    with pytest.raises(AuditError) as raised:
        await audit.record("export", detail={"when": datetime(2024, 1, 1, tzinfo=UTC)})
    assert str(raised.value) == (
        "audit detail of 'export' is not JSON: Object of type datetime is not JSON serializable")
    with pytest.raises(AuditError, match="not JSON"):
        await audit.record("export", detail={"ratio": float("nan")})
    assert await audit.recent(10) == []


@pytest.mark.parametrize(("field", "value", "message"), [
    ("action", "", "audit action must not be empty"),
    ("action", "x" * 65, "audit action is longer than 64 characters: "),
    ("target", "t" * 256, "audit target is longer than 255 characters: "),
    ("source_ip", "1" * 65, "audit source IP is longer than 64 characters: "),
])
async def test_values_that_do_not_fit_are_refused_not_cut(
    audit: AuditLog, field: str, value: str, message: str
) -> None:
    fields: dict[str, Any] = {"action": "login", field: value}
    action = fields.pop("action")
    with pytest.raises(AuditError) as raised:
        await audit.record(action, **fields)
    assert str(raised.value).startswith(message)
    assert await audit.recent(10) == []


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_recent_refuses_a_limit_out_of_range(audit: AuditLog, limit: int) -> None:
    with pytest.raises(AuditError) as raised:
        await audit.recent(limit)
    assert str(raised.value) == f"limit must be between 1 and 1000, not {limit}"


async def test_recent_refuses_a_naive_since(audit: AuditLog) -> None:
    with pytest.raises(AuditError) as raised:
        await audit.recent(10, since=datetime(2024, 1, 1))
    assert str(raised.value) == (
        "since must be an aware datetime, not datetime.datetime(2024, 1, 1, 0, 0)")


async def test_an_entry_added_to_a_transaction_that_is_rolled_back_is_not_stored(
    audit: AuditLog, db: Database
) -> None:
    async with db.session() as session:
        audit.add(session, "permission.grant", target="agent_group:1")
        await session.rollback()
    async with db.session() as session:
        audit.add(session, "permission.revoke", target="agent_group:1")
        await session.commit()
    assert [e.action for e in await audit.recent(10)] == ["permission.revoke"]


async def test_an_entry_outlives_its_actor_under_the_name_it_had(
    audit: AuditLog, service: UserService, db: Database
) -> None:
    alice = await service.add_user("alice", "password-a")
    await audit.record("login", actor_id=alice.id, actor="alice")
    async with db.session() as session:
        await session.execute(delete(User).where(User.id == alice.id))
        await session.commit()
    [entry] = await audit.recent(1)
    assert (entry.actor_id, entry.actor) == (None, "alice")
