from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text

from apps import (
    CallEnd,
    CallRecord,
    CallStart,
    CallState,
    CdrError,
    CdrStore,
    Database,
    Direction,
    Disposition,
    LegRecord,
    LegStart,
    UserService,
    upgrade_database,
)
from apps.db import alembic_config

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def inbound(call_id: str, started_at: datetime | None = None) -> CallStart:
    return CallStart(
        call_id=call_id,
        direction=Direction.inbound,
        caller="+8613912345678",
        callee="+864001234567",
        trunk="pri-east",
        gateway="gw1",
        started_at=started_at,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db: Database, clock: FakeClock) -> CdrStore:
    return CdrStore(db, clock=clock)


async def test_full_lifecycle_with_legs(store: CdrStore, clock: FakeClock) -> None:
    await store.open_call(inbound("c1"))
    await store.add_leg("c1", LegStart(0, "gw1", sip_call_id="a@gw1"))
    clock.advance(2)
    await store.add_leg("c1", LegStart(1, "1001", sip_call_id="b@switch"))
    clock.advance(3.2)
    await store.leg_answered("c1", 1)
    await store.answered("c1")
    clock.advance(60)
    await store.leg_ended("c1", 1, sip_status=200)  # the agent hung up
    clock.advance(0.5)
    closed = await store.close_call("c1", CallEnd(Disposition.answered, 16, 200))

    expected = CallRecord(
        call_id="c1",
        direction=Direction.inbound,
        caller="+8613912345678",
        callee="+864001234567",
        trunk="pri-east",
        gateway="gw1",
        started_at=T0,
        answered_at=at(5.2),
        ended_at=at(65.7),
        last_seen_at=at(65.7),
        duration_s=66,  # 65.7 s: a started second counts
        billable_s=61,  # 60.5 s
        disposition=Disposition.answered,
        q850_cause=16,
        sip_status=200,
        queue_name=None,
        agent_username=None,
        recording_path=None,
        state=CallState.closed,
        closed_at=at(65.7),
        legs=(
            LegRecord(0, "gw1", "a@gw1", T0, None, at(65.7), None, None),
            LegRecord(1, "1001", "b@switch", at(2), at(5.2), at(65.2), 200, None),
        ),
    )
    assert closed == expected
    assert await store.get_call("c1") == expected


async def test_a_row_exists_as_soon_as_the_call_starts(store: CdrStore) -> None:
    await store.open_call(inbound("c1"))
    call = await store.get_call("c1")
    assert call is not None
    assert (call.state, call.started_at, call.last_seen_at) == (CallState.open, T0, T0)
    assert (call.ended_at, call.duration_s, call.billable_s, call.disposition) == (
        None,
        None,
        None,
        None,
    )


async def test_unanswered_call_bills_nothing(store: CdrStore, clock: FakeClock) -> None:
    await store.open_call(inbound("busy"))
    clock.advance(12.25)
    closed = await store.close_call("busy", CallEnd(Disposition.busy, 17, 486))
    assert (closed.duration_s, closed.billable_s, closed.answered_at) == (13, 0, None)
    assert (closed.disposition, closed.q850_cause, closed.sip_status) == (Disposition.busy, 17, 486)


async def test_close_call_stores_the_call_variables(store: CdrStore, clock: FakeClock) -> None:
    await store.open_call(inbound("v1"))
    clock.advance(8)
    learnt = {"customer_id": 42, "vip_level": "金卡", "ivr_path": ["menu:1", "queue:sales"]}
    closed = await store.close_call("v1", CallEnd(Disposition.cancelled, 16,
                                                  variables={**learnt, "seen_at": at(3)}))
    stored = {**learnt, "seen_at": "2024-05-06 07:08:12.250000+00:00"}  # JSON has no datetime
    assert closed.variables == stored
    assert [c.variables for c in await store.list_calls(T0, at(1))] == [stored]
    # recovery after a crash has none: the variables live in the switch until the call ends
    await store.open_call(inbound("crashed"))
    assert await store.recover_interrupted(at(20)) == 1
    crashed = await store.get_call("crashed")
    assert crashed is not None and crashed.variables is None


async def test_whole_seconds_exact_and_clock_stepped_back(store: CdrStore) -> None:
    await store.open_call(inbound("exact", started_at=T0))
    await store.answered("exact", at(10))
    closed = await store.close_call("exact", CallEnd(Disposition.answered, ended_at=at(40)))
    assert (closed.duration_s, closed.billable_s) == (40, 30)

    await store.open_call(inbound("back", started_at=T0))
    closed = await store.close_call("back", CallEnd(Disposition.failed, ended_at=at(-3)))
    assert (closed.duration_s, closed.billable_s) == (0, 0)


async def test_exact_errors(store: CdrStore) -> None:
    with pytest.raises(CdrError, match=r"^no CDR for call 'nope'$"):
        await store.answered("nope")
    await store.open_call(inbound("c1"))
    with pytest.raises(CdrError, match=r"^call 'c1' already has a CDR$"):
        await store.open_call(inbound("c1"))
    with pytest.raises(CdrError, match=r"^call 'c1' has no leg 4$"):
        await store.leg_ended("c1", 4)
    await store.add_leg("c1", LegStart(0, "gw1"))
    with pytest.raises(CdrError, match=r"^call 'c1' already has leg 0$"):
        await store.add_leg("c1", LegStart(0, "gw1"))
    never = r"^call 'c1' cannot end as answered: it was never answered$"
    with pytest.raises(CdrError, match=never):
        await store.close_call("c1", CallEnd(Disposition.answered))
    await store.answered("c1")
    with pytest.raises(CdrError, match=r"^call 'c1' was already answered$"):
        await store.answered("c1")
    await store.close_call("c1", CallEnd(Disposition.answered))
    with pytest.raises(CdrError, match=r"^call 'c1' is already closed$"):
        await store.close_call("c1", CallEnd(Disposition.answered))
    with pytest.raises(CdrError, match=r"^call 'c1' is already closed$"):
        await store.add_leg("c1", LegStart(1, "1001"))


async def test_recover_interrupted_closes_only_open_calls(
    store: CdrStore, clock: FakeClock
) -> None:
    await store.open_call(inbound("done"))
    await store.open_call(inbound("ringing"))
    await store.open_call(inbound("talking"))
    await store.add_leg("talking", LegStart(0, "gw1"))
    clock.advance(4)
    await store.answered("talking")
    clock.advance(3)
    done = await store.close_call("done", CallEnd(Disposition.cancelled, 16, 487))
    clock.advance(20)
    assert await store.heartbeat() == 2  # the closed call is not touched
    await store.open_call(inbound("late"))  # started after the heartbeat

    restart = at(600)
    assert await store.recover_interrupted(restart) == 3

    assert await store.get_call("done") == done
    ringing = await store.get_call("ringing")
    talking = await store.get_call("talking")
    late = await store.get_call("late")
    assert ringing is not None and talking is not None and late is not None
    for call in (ringing, talking, late):
        assert (call.state, call.disposition, call.closed_at) == (
            CallState.closed,
            Disposition.interrupted,
            restart,
        )
    assert (ringing.ended_at, ringing.duration_s, ringing.billable_s) == (at(27), 27, 0)
    assert (talking.ended_at, talking.duration_s, talking.billable_s) == (at(27), 27, 23)
    assert talking.legs[0].ended_at == at(27)
    assert (late.ended_at, late.duration_s, late.billable_s) == (at(27), 0, 0)
    assert await store.recover_interrupted(at(700)) == 0


async def test_list_calls_by_start_time(store: CdrStore) -> None:
    for n in range(5):
        await store.open_call(inbound(f"c{n}", started_at=at(10 * n)))
    calls = await store.list_calls(at(10), at(40))
    assert [c.call_id for c in calls] == ["c1", "c2", "c3"]
    assert [c.call_id for c in await store.list_calls(at(10), at(40), limit=2)] == ["c1", "c2"]
    assert await store.list_calls(at(100), at(200)) == []


async def test_sqlite_commits_are_synchronous_full(tmp_path: Path) -> None:
    # What the module's durability note relies on: a committed CDR survives power loss.
    # (SQLite only, so it opens its own file rather than the both-databases fixture.)
    sqlite = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'cdr.sqlite3'}")
    try:
        async with sqlite.engine.connect() as connection:
            synchronous = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
        assert synchronous == 2  # FULL
    finally:
        await sqlite.close()


# The "switch": real apps code on the real database, killed with SIGKILL while it waits.
_CRASHING_SWITCH = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime, timedelta
    from apps import CallEnd, CallStart, CdrStore, Database, Direction, Disposition, LegStart

    T0 = datetime.fromisoformat(sys.argv[2])

    def at(seconds):
        return T0 + timedelta(seconds=seconds)

    async def main():
        store = CdrStore(await Database.connect(sys.argv[1]), clock=lambda: at(31))
        for n in range(3):
            await store.open_call(CallStart(f"k{n}", Direction.inbound, f"+86139000000{n}",
                                            "+864001234567", "pri-east", "gw1", at(n)))
            await store.add_leg(f"k{n}", LegStart(0, "gw1", started_at=at(n)))
        await store.answered("k1", at(8))
        await store.answered("k2", at(9))
        await store.close_call("k2", CallEnd(Disposition.answered, 16, 200, at(30)))
        await store.heartbeat(at(40))
        print("ready", flush=True)
        sys.stdin.read()  # wait, without a clock, until killed

    asyncio.run(main())
    """
)


async def test_kill_9_with_calls_up_loses_no_cdr(db_url: str) -> None:
    await upgrade_database(db_url)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    switch = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_SWITCH, db_url, T0.isoformat()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert switch.stdout is not None
        line = switch.stdout.readline()
        if line != "ready\n":
            _, stderr = switch.communicate(timeout=30)
            pytest.fail(f"the switch did not get ready: {line!r}\n{stderr}")
        switch.send_signal(signal.SIGKILL)
        assert switch.wait(timeout=30) == -signal.SIGKILL
    finally:
        if switch.poll() is None:
            switch.kill()
            switch.wait()
        for stream in (switch.stdin, switch.stdout, switch.stderr):
            if stream is not None:
                stream.close()

    db = await Database.connect(db_url)  # the restarted switch
    try:
        store = CdrStore(db, clock=FakeClock(at(3600)))
        assert await store.recover_interrupted(at(3600)) == 2
        calls = {c.call_id: c for c in await store.list_calls(T0, at(60))}
    finally:
        await db.close()

    assert sorted(calls) == ["k0", "k1", "k2"]
    k2 = calls["k2"]
    # Closed before the crash, by the switch's own clock: as it was written.
    assert (k2.disposition, k2.ended_at, k2.duration_s, k2.billable_s, k2.closed_at) == (
        Disposition.answered,
        at(30),
        28,
        21,
        at(31),
    )
    k0, k1 = calls["k0"], calls["k1"]
    for call in (k0, k1):
        assert (call.state, call.disposition, call.ended_at, call.closed_at) == (
            CallState.closed,
            Disposition.interrupted,
            at(40),  # the last heartbeat before the crash
            at(3600),
        )
        assert call.legs[0].ended_at == at(40)
    assert (k0.answered_at, k0.duration_s, k0.billable_s) == (None, 40, 0)
    assert (k1.answered_at, k1.duration_s, k1.billable_s) == (at(8), 39, 32)
    assert [c.caller for c in (k0, k1, k2)] == [f"+86139000000{n}" for n in range(3)]


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


async def _written_at(db: Database, revision: str, sql: str) -> None:
    """Upgrade ``db`` to ``revision`` and run ``sql`` (``:at`` is T0) as that schema has
    it: today's ORM model has later columns."""
    async with db.engine.begin() as connection:
        await connection.run_sync(_upgrade_to(revision))
        await connection.execute(text(sql), {"at": at(0)})


async def test_upgrade_from_users_only_keeps_the_users(db_url: str, tmp_path: Path) -> None:
    db = await Database.connect(db_url)
    try:
        await _written_at(db, "0001",
                          "INSERT INTO users (username, role, extension, web_password_hash,"
                          " created_at, updated_at) VALUES ('alice', 'agent', '1001', 'x', :at,"
                          " :at)")
        users = UserService(db, "r")
        with pytest.raises(Exception, match="calls"):
            await CdrStore(db).get_call("c1")  # no calls table yet

        await upgrade_database(db_url)
        assert [(u.username, u.extension) for u in await users.list_users()] == [
            ("alice", "1001")
        ]
        store = CdrStore(db, clock=FakeClock())
        await store.open_call(inbound("c1"))
        assert await store.recover_interrupted(at(1)) == 1
    finally:
        await db.close()


async def test_upgrade_to_call_variables_keeps_the_cdrs_and_closes_them_with_variables(
    db_url: str,
) -> None:
    db = await Database.connect(db_url)
    try:
        # A call up while the switch is upgraded.
        await _written_at(db, "0006",
                          "INSERT INTO calls (call_id, direction, caller, callee, started_at,"
                          " last_seen_at, state) VALUES ('c1', 'inbound', '+86139', '+86400',"
                          " :at, :at, 'open')")
        await upgrade_database(db_url)
        store = CdrStore(db, clock=FakeClock(at(30)))
        up = await store.get_call("c1")
        assert up is not None and (up.state, up.variables) == (CallState.open, None)
        closed = await store.close_call("c1", CallEnd(Disposition.cancelled,
                                                      variables={"digits": "1"}))
        assert (closed.state, closed.variables) == (CallState.closed, {"digits": "1"})
    finally:
        await db.close()
