"""CdrWriter: call events stamped, queued and written in batches, on SQLite and PostgreSQL.

No sleeps: the tests wait on the writer (flush, stop) or on the store's own calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from apps import CallStart, CallState, CdrError, CdrStore, Database, Direction, Disposition
from apps.cdr_variables import CUT_MARK, TRUNCATED_KEY
from apps.cdr_writer import CdrWriter
from apps.models import Base
from switch.calls import (
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
    CallHeld,
    CallRinging,
    CallStarted,
    LegAdded,
    LegAnswered,
    LegEnded,
    RecordingStarted,
)
from switch.event_bus import EventBus
from switch.media import DtmfReceived

T0 = datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)
CLOSED_AT = T0 + timedelta(hours=1)  # the store's clock, for closed_at


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class BeatingStore(CdrStore):
    """A real store that also reports each heartbeat, so a test can wait for one."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, clock=lambda: CLOSED_AT)
        self.beats: asyncio.Queue[tuple[datetime | None, int]] = asyncio.Queue()

    async def heartbeat(self, at: datetime | None = None) -> int:
        n = await super().heartbeat(at)
        self.beats.put_nowait((at, n))
        return n


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db: Database) -> BeatingStore:
    return BeatingStore(db)


@pytest.fixture
async def writer(store: CdrStore, clock: FakeClock) -> AsyncIterator[CdrWriter]:
    writer = CdrWriter(store, clock=clock)
    yield writer
    await writer.stop()


@pytest.fixture
def commits(db: Database) -> Iterator[list[None]]:
    seen: list[None] = []

    def on_commit(_connection: object) -> None:
        seen.append(None)

    event.listen(db.engine.sync_engine, "commit", on_commit)
    yield seen
    event.remove(db.engine.sync_engine, "commit", on_commit)


def started(call_id: str) -> CallStarted:
    return CallStarted(call_id, "inbound", "+8613912345678", "+864001234567", "pri-east", "gw1")


async def test_a_call_as_call_control_reports_it(
    writer: CdrWriter, store: CdrStore, clock: FakeClock
) -> None:
    await writer.start()
    writer.submit([started("c1"), LegAdded("c1", 0, "gw1", "a@gw1")])
    clock.advance(2)
    writer.submit([LegAdded("c1", 1, "1001", "b@switch")])
    clock.advance(3.2)
    writer.submit([CallRinging("c1", 1, "1001")])  # for the ACD: no CDR change
    writer.submit([LegAnswered("c1", 1), CallAnswered("c1"), CallBridged("c1", (0, 1))])
    writer.submit([RecordingStarted("c1", "/var/rec/c1.wav"), CallHeld("c1", 1)])
    assert writer.pending == 6  # the three for the ACD were left out
    await writer.flush()
    up = await store.get_call("c1")
    assert up is not None
    assert (up.state, up.answered_at, up.last_seen_at) == (CallState.open, at(5.2), at(5.2))
    clock.advance(60)
    writer.submit([LegEnded("c1", 1, None, 16)])
    clock.advance(0.5)
    writer.submit([CallEnded("c1", "answered", 16, None, "callee-bye")])
    await writer.stop()

    call = await store.get_call("c1")
    assert call is not None
    assert (call.started_at, call.answered_at, call.ended_at, call.closed_at) == (
        T0,
        at(5.2),
        at(65.7),
        CLOSED_AT,
    )
    assert (call.state, call.disposition, call.q850_cause, call.sip_status) == (
        CallState.closed,
        Disposition.answered,
        16,
        None,
    )
    assert (call.duration_s, call.billable_s, call.recording_path) == (66, 61, "/var/rec/c1.wav")
    assert [
        (leg.peer, leg.started_at, leg.answered_at, leg.ended_at, leg.q850_cause)
        for leg in call.legs
    ] == [
        ("gw1", T0, None, at(65.7), None),
        ("1001", at(2), at(5.2), at(65.2), 16),
    ]
    assert (writer.written, writer.lost, writer.pending) == (8, 0, 0)


async def test_call_events_from_the_bus_keep_the_bus_times(
    writer: CdrWriter, store: CdrStore
) -> None:
    """serve wires the writer to the event bus: what call control publishes is written
    with the bus's wall clock (when it happened), other events are not the writer's."""
    bus_clock = FakeClock(at(100))
    bus = EventBus(bus_clock)
    writer.subscribe(bus)
    await writer.start()
    bus.publish_all([started("b1"), LegAdded("b1", 0, "gw1", "a@gw1")], 1.0)
    bus.publish(DtmfReceived(leg=1, digit="1", duration_ms=80), 1.5)  # not a call event
    bus_clock.advance(7)
    bus.publish(CallEnded("b1", "cancelled", 16, None, "caller-cancel"), 8.0)
    await writer.flush()
    call = await store.get_call("b1")
    assert call is not None
    assert (call.started_at, call.ended_at, call.disposition) == (
        at(100), at(107), Disposition.cancelled)
    assert writer.submitted == 3


async def test_a_busy_call_is_never_answered(
    writer: CdrWriter, store: CdrStore, clock: FakeClock
) -> None:
    await writer.start()
    writer.submit([started("busy"), LegAdded("busy", 0, "gw1", "a@gw1")])
    writer.submit([LegAdded("busy", 1, "1001", "b@switch")])
    clock.advance(4.5)
    writer.submit([LegEnded("busy", 1, 486, 17), CallEnded("busy", "busy", 17, 486, "rejected")])
    await writer.flush()
    call = await store.get_call("busy")
    assert call is not None
    assert (call.disposition, call.q850_cause, call.sip_status, call.answered_at) == (
        Disposition.busy,
        17,
        486,
        None,
    )
    assert (call.ended_at, call.duration_s, call.billable_s) == (at(4.5), 5, 0)
    assert [(leg.sip_status, leg.q850_cause, leg.ended_at) for leg in call.legs] == [
        (None, None, at(4.5)),
        (486, 17, at(4.5)),
    ]


# -- the call's variables (issue 10): what its applications learnt, kept with the CDR

LEARNT = {"customer_id": 42, "vip_level": "金卡", "digits": "1#",
          "ivr_path": [{"node": "menu", "pressed": "1", "duration_s": 3.2}, {"node": "queue"}]}


def ended_with(call_id: str, variables: dict[str, object] | None) -> list[CallEvent]:
    return [started(call_id), LegAdded(call_id, 0, "gw1", f"a-{call_id}@gw1"),
            CallEnded(call_id, "cancelled", 16, None, "caller-cancel", variables)]


async def test_the_call_variables_are_stored_with_the_cdr(
    writer: CdrWriter, store: CdrStore, clock: FakeClock
) -> None:
    await writer.start()
    writer.submit([started("v1"), LegAdded("v1", 0, "gw1", "a@gw1")])
    await writer.flush()
    up = await store.get_call("v1")
    assert up is not None and up.variables is None  # applications' until the call ends
    clock.advance(12)
    writer.submit([CallEnded("v1", "cancelled", 16, None, "caller-cancel", LEARNT)])
    writer.submit(ended_with("none", None))
    await writer.flush()
    call = await store.get_call("v1")
    assert call is not None
    assert (call.state, call.ended_at, call.variables) == (CallState.closed, at(12), LEARNT)
    assert [(c.call_id, c.variables) for c in await store.list_calls(T0, at(60))] == [
        ("v1", LEARNT), ("none", None)]


class Customer:
    def __str__(self) -> str:
        return "Customer #42"


async def test_variables_json_cannot_hold_or_too_many_never_lose_the_cdr(
    writer: CdrWriter, store: CdrStore
) -> None:
    """Whatever an application left on the call, the CDR is written, in the same batch
    as the other calls' changes."""
    await writer.start()
    odd = {"customer": Customer(), "seen_at": at(3), "tags": {"vip"}, "score": float("nan"),
           "nul": "a\x00b", "surrogate": "\ud800"}
    writer.submit([*ended_with("odd", odd), *full_call("plain"),
                   *ended_with("big", {"customer_id": 42, "blob": "x" * 100_000,
                                       "path": ["menu"] * 10_000, "more": "y"})])
    await writer.flush()
    assert (writer.written, writer.lost) == (writer.submitted, 0)
    calls = {c.call_id: c for c in await store.list_calls(T0, at(1))}
    assert {c.state for c in calls.values()} == {CallState.closed}
    assert calls["odd"].variables == {
        "customer": "Customer #42", "seen_at": "2024-05-06 07:08:12.250000+00:00",
        "tags": "{'vip'}", "score": "nan", "nul": "a\x00b", "surrogate": "\ud800"}
    big = calls["big"].variables
    assert big is not None
    assert list(big) == ["customer_id", "blob", "more", TRUNCATED_KEY]
    assert (big["customer_id"], big["more"]) == (42, "y")
    assert big[TRUNCATED_KEY] == "over 16384 bytes: 1 variable(s) cut short, 1 left out"
    assert str(big["blob"]).endswith(CUT_MARK)


def full_call(call_id: str) -> list[CallEvent]:
    return [
        started(call_id),
        LegAdded(call_id, 0, "gw1", f"a-{call_id}@gw1"),
        LegAdded(call_id, 1, "1001", f"b-{call_id}@switch"),
        LegAnswered(call_id, 1),
        CallAnswered(call_id),
        LegEnded(call_id, 1, None, 16),
        CallEnded(call_id, "answered", 16, None, "callee-bye"),
    ]


async def test_2000_calls_in_one_submit_are_28_commits(
    store: CdrStore, clock: FakeClock, commits: list[None]
) -> None:
    writer = CdrWriter(store, clock=clock, max_batch=500)
    await writer.start()
    commits.clear()  # the recovery's own
    writer.submit(event for n in range(2000) for event in full_call(f"c{n:04d}"))
    assert writer.pending == 14000
    await writer.stop()

    assert (writer.written, writer.lost, writer.batches, len(commits)) == (14000, 0, 28, 28)
    calls = await store.list_calls(T0, at(1), limit=5000)
    assert [c.call_id for c in calls] == [f"c{n:04d}" for n in range(2000)]
    assert {
        (c.state, c.disposition, c.q850_cause, c.answered_at, c.ended_at, c.billable_s, len(c.legs))
        for c in calls
    } == {(CallState.closed, Disposition.answered, 16, T0, T0, 0, 2)}


async def test_a_batch_window_gathers_calls_submitted_one_by_one_into_one_commit(
    store: CdrStore, clock: FakeClock, commits: list[None]
) -> None:
    # What serve uses: each SIP message submits a few events; without a window the
    # first of them would be committed alone while the rest queue behind it.
    writer = CdrWriter(store, clock=clock, batch_window_s=0.5)
    await writer.start()
    commits.clear()
    for n in range(30):
        for change in full_call(f"w{n:02d}"):
            writer.submit([change])
            await asyncio.sleep(0)  # the loop runs between messages, as it does live
    await writer.flush()
    assert (writer.written, writer.batches, len(commits)) == (210, 1, 1)
    await writer.stop()
    assert len(await store.list_calls(T0, at(1))) == 30


async def test_events_after_the_call_closed_are_ignored(
    writer: CdrWriter, store: CdrStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await writer.start()
    writer.submit(full_call("c1"))
    await writer.flush()
    before = await store.get_call("c1")
    clock.advance(30)
    with caplog.at_level(logging.WARNING, logger="apps.cdrs"):
        writer.submit([CallAnswered("c1"), LegEnded("c1", 0, 500, 41)])
        writer.submit([CallEnded("c1", "failed", 41, 500, "late")])
        await writer.flush()
    assert await store.get_call("c1") == before
    assert [r.getMessage() for r in caplog.records] == [
        "CDR change skipped: CallAnswered: call 'c1' is already closed",
        "CDR change skipped: LegEnded: call 'c1' is already closed",
        "CDR change skipped: CallEnded: call 'c1' is already closed",
    ]
    assert (writer.written, writer.lost) == (10, 0)


async def test_stop_writes_what_is_queued_and_stops(writer: CdrWriter, store: CdrStore) -> None:
    await writer.start()
    writer.submit(full_call("c1"))
    writer.submit([started("c2")])
    assert writer.pending == 8
    await writer.stop()
    assert (writer.pending, writer.written) == (0, 8)
    c1, c2 = await store.get_call("c1"), await store.get_call("c2")
    assert c1 is not None and c1.state is CallState.closed
    assert c2 is not None and c2.state is CallState.open
    await writer.stop()  # again: nothing happens
    with pytest.raises(CdrError, match=r"^the CDR writer is stopped$"):
        writer.submit([CallAnswered("c2")])
    with pytest.raises(CdrError, match=r"^the CDR writer is not running$"):
        await writer.flush()
    with pytest.raises(CdrError, match=r"^the CDR writer was already started$"):
        await writer.start()


async def test_start_closes_what_the_last_run_left_open(
    store: CdrStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The last run: two calls up, one of them answered, then the switch died.
    await store.open_call(CallStart("a", Direction.inbound, "1", "2", started_at=at(0)))
    await store.open_call(CallStart("b", Direction.internal, "1001", "1002", started_at=at(1)))
    await store.answered("b", at(3))
    await store.heartbeat(at(40))
    clock.advance(3600)
    writer = CdrWriter(store, clock=clock)
    writer.submit(full_call("new"))  # queued before start: written after the recovery
    with caplog.at_level(logging.INFO, logger="apps.cdr_writer"):
        await writer.start()
    await writer.stop()

    assert [r.getMessage() for r in caplog.records] == [
        "CDRs left open by the last run, closed as interrupted: 2"
    ]
    a, b, new = [await store.get_call(call_id) for call_id in ("a", "b", "new")]
    assert a is not None and b is not None and new is not None
    assert (a.disposition, a.ended_at, a.closed_at, a.billable_s) == (
        Disposition.interrupted,
        at(40),
        at(3600),
        0,
    )
    assert (b.disposition, b.ended_at, b.billable_s) == (Disposition.interrupted, at(40), 37)
    assert (new.disposition, new.started_at) == (Disposition.answered, at(3600))


async def test_a_batch_the_database_refuses_is_logged_and_the_next_is_written(
    writer: CdrWriter, store: CdrStore, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await writer.start()
    writer.submit(full_call("before"))
    await writer.flush()
    async with db.engine.begin() as connection:  # the database goes away
        await connection.run_sync(Base.metadata.drop_all)
    with caplog.at_level(logging.ERROR, logger="apps.cdr_writer"):
        writer.submit(full_call("lost"))
        await writer.flush()
    assert [r.getMessage() for r in caplog.records] == ["CDR batch lost: 7 changes not written"]
    assert (writer.written, writer.lost) == (7, 7)

    async with db.engine.begin() as connection:  # and comes back, empty
        await connection.run_sync(Base.metadata.create_all)
    writer.submit(full_call("after"))
    await writer.flush()
    assert (writer.written, writer.lost) == (14, 7)
    after = await store.get_call("after")
    assert after is not None and after.disposition is Disposition.answered
    assert await store.get_call("lost") is None


async def test_heartbeats_while_calls_are_up(store: BeatingStore) -> None:
    clock = FakeClock()
    # A short period: the test waits for the heartbeat itself, never for a time.
    writer = CdrWriter(store, clock=clock, heartbeat_s=0.001)
    await writer.start()
    try:
        writer.submit([started("c1")])
        await writer.flush()
        clock.advance(17)
        async with asyncio.timeout(10):
            beat_at, _ = await store.beats.get()
            while beat_at != at(17):  # beats stamped before the advance may be queued
                beat_at, _ = await store.beats.get()
        call = await store.get_call("c1")
        assert call is not None and call.last_seen_at == at(17)
    finally:
        await writer.stop()


async def test_bad_settings_are_refused(store: CdrStore) -> None:
    with pytest.raises(ValueError, match=r"^max_batch must be at least 1, not 0$"):
        CdrWriter(store, max_batch=0)
    with pytest.raises(ValueError, match=r"^heartbeat_s must be positive, not 0$"):
        CdrWriter(store, heartbeat_s=0)
