"""CdrStore.apply: call control's events for many calls, in one transaction per batch."""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

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
)
from switch.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallStarted,
    LegAdded,
    LegAnswered,
    LegEnded,
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)
CLOSED_AT = T0 + timedelta(hours=1)  # the store's clock: when the batch was written

Change = tuple[datetime, CallEvent]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered_call(call_id: str, start_s: float = 0) -> list[Change]:
    """Inbound, to extension 1001, answered after 5.2 s, the agent hangs up at 65.2 s."""
    return [
        (
            at(start_s),
            CallStarted(call_id, "inbound", "+8613912345678", "+864001234567", "pri-east", "gw1"),
        ),
        (at(start_s), LegAdded(call_id, 0, "gw1", f"a-{call_id}@gw1")),
        (at(start_s + 2), LegAdded(call_id, 1, "1001", f"b-{call_id}@switch")),
        (at(start_s + 5.2), LegAnswered(call_id, 1)),
        (at(start_s + 5.2), CallAnswered(call_id)),
        (at(start_s + 65.2), LegEnded(call_id, 1, 200, None)),
        (at(start_s + 65.7), CallEnded(call_id, "answered", 16, 200, "callee-bye")),
    ]


def answered_record(call_id: str, start_s: float = 0) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        direction=Direction.inbound,
        caller="+8613912345678",
        callee="+864001234567",
        trunk="pri-east",
        gateway="gw1",
        started_at=at(start_s),
        answered_at=at(start_s + 5.2),
        ended_at=at(start_s + 65.7),
        last_seen_at=at(start_s + 65.7),
        duration_s=66,  # 65.7 s: a started second counts
        billable_s=61,  # 60.5 s
        disposition=Disposition.answered,
        q850_cause=16,
        sip_status=200,
        queue_name=None,
        agent_username=None,
        recording_path=None,
        state=CallState.closed,
        closed_at=CLOSED_AT,
        legs=(
            LegRecord(
                0, "gw1", f"a-{call_id}@gw1", at(start_s), None, at(start_s + 65.7), None, None
            ),
            LegRecord(
                1,
                "1001",
                f"b-{call_id}@switch",
                at(start_s + 2),
                at(start_s + 5.2),
                at(start_s + 65.2),
                200,
                None,
            ),
        ),
    )


@pytest.fixture
def store(db: Database) -> CdrStore:
    return CdrStore(db, clock=lambda: CLOSED_AT)


@pytest.fixture
def commits(db: Database) -> Iterator[list[None]]:
    """One entry per transaction committed on the database."""
    seen: list[None] = []

    def on_commit(_connection: object) -> None:
        seen.append(None)

    event.listen(db.engine.sync_engine, "commit", on_commit)
    yield seen
    event.remove(db.engine.sync_engine, "commit", on_commit)


async def test_a_full_call_is_one_cdr_with_its_legs(store: CdrStore) -> None:
    await store.apply(answered_call("c1"))
    assert await store.get_call("c1") == answered_record("c1")


async def test_a_call_spread_over_batches_is_the_same_cdr(store: CdrStore) -> None:
    changes = answered_call("c1")
    for change in changes:
        await store.apply([change])
    assert await store.get_call("c1") == answered_record("c1")


async def test_busy_call_bills_nothing(store: CdrStore) -> None:
    await store.apply(
        [
            (at(0), CallStarted("busy", "outbound", "1001", "+8613912345678", "pri-east", "gw1")),
            (at(0), LegAdded("busy", 0, "1001", "a@switch")),
            (at(0.1), LegAdded("busy", 1, "gw1", "b@gw1")),
            (at(12.25), LegEnded("busy", 1, 486, 17)),
            (at(12.25), CallEnded("busy", "busy", 17, 486, "rejected-486")),
        ]
    )
    call = await store.get_call("busy")
    assert call is not None
    assert (call.state, call.disposition, call.q850_cause, call.sip_status) == (
        CallState.closed,
        Disposition.busy,
        17,
        486,
    )
    assert (call.answered_at, call.ended_at, call.duration_s, call.billable_s) == (
        None,
        at(12.25),
        13,
        0,
    )
    assert [(leg.ended_at, leg.sip_status, leg.q850_cause) for leg in call.legs] == [
        (at(12.25), None, None),  # the caller's leg, ended by the switch
        (at(12.25), 486, 17),
    ]


async def test_recording_started_sets_the_path(store: CdrStore) -> None:
    changes = answered_call("rec")
    changes.insert(5, (at(5.3), RecordingStarted("rec", "/var/rec/2024/05/06/rec.wav")))
    await store.apply(changes)
    call = await store.get_call("rec")
    assert call is not None and call.recording_path == "/var/rec/2024/05/06/rec.wav"


async def test_recording_pauses_are_intervals_into_the_file(store: CdrStore) -> None:
    changes = answered_call("rec")
    changes[5:5] = [
        (at(5.2), RecordingStarted("rec", "/var/rec/rec.wav")),
        (at(20.2), RecordingPaused("rec")),  # a card number is read out
        (at(31.45), RecordingResumed("rec")),
        (at(60.2), RecordingPaused("rec")),  # paused until the call ends at 65.7
    ]
    await store.apply(changes[:7])  # the second half in another batch
    await store.apply(changes[7:])
    call = await store.get_call("rec")
    assert call is not None
    assert (call.recording_path, call.recording_started_at) == ("/var/rec/rec.wav", at(5.2))
    assert call.recording_pauses == ((15.0, 26.25), (55.0, 60.5))


async def test_pause_and_resume_out_of_turn_are_refused(
    store: CdrStore, caplog: pytest.LogCaptureFixture
) -> None:
    changes = answered_call("rec")
    changes[5:5] = [
        (at(5.2), RecordingPaused("rec")),  # nothing recorded yet
        (at(5.2), RecordingStarted("rec", "/var/rec/rec.wav")),
        (at(6), RecordingResumed("rec")),  # not paused
        (at(7), RecordingPaused("rec")),
        (at(8), RecordingPaused("rec")),  # already paused
    ]
    with caplog.at_level(logging.WARNING, logger="apps.cdrs"):
        await store.apply(changes)
    assert [r.getMessage() for r in caplog.records] == [
        "CDR change skipped: RecordingPaused: call 'rec' has no recording going on to pause",
        "CDR change skipped: RecordingResumed: call 'rec' has no paused recording to resume",
        "CDR change skipped: RecordingPaused: call 'rec' has no recording going on to pause",
    ]
    call = await store.get_call("rec")
    assert call is not None and call.recording_pauses == ((1.8, 60.5),)


async def test_many_calls_one_commit(store: CdrStore, commits: list[None]) -> None:
    changes = [change for n in range(300) for change in answered_call(f"c{n:03d}", n / 300)]
    await store.apply(changes)
    assert len(commits) == 1
    calls = await store.list_calls(T0, at(10))
    assert [c.call_id for c in calls] == [f"c{n:03d}" for n in range(300)]
    assert calls == [answered_record(f"c{n:03d}", n / 300) for n in range(300)]


async def test_bad_changes_are_logged_and_skipped_the_rest_applied(
    store: CdrStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.open_call(CallStart("old", Direction.internal, "1001", "1002", started_at=at(0)))
    await store.close_call("old", CallEnd(Disposition.cancelled, 16, 487, ended_at=at(1)))
    old = await store.get_call("old")
    changes = answered_call("good")
    changes[3:3] = [
        (at(3), CallAnswered("ghost")),
        (at(3), LegAdded("old", 1, "1003", "late@switch")),
        (at(3), CallStarted("old", "internal", "1001", "1002")),
        (at(3), CallStarted("odd", "sideways", "1001", "1002")),
        (at(3), LegAdded("good", 1, "1009", "again@switch")),
        (at(3), LegEnded("good", 7, 486, 17)),
        (at(3), CallEnded("good", "answered", 16, 200, "callee-bye")),
        (at(3), CallEnded("good", "exploded", 16, 200, "callee-bye")),
        (at(3), CallStart("good", Direction.inbound, "1", "2")),  # type: ignore[list-item]
    ]
    changes.append((at(70), LegEnded("good", 0, None, None)))  # after the call closed
    with caplog.at_level(logging.WARNING, logger="apps.cdrs"):
        await store.apply(changes)

    assert [r.getMessage() for r in caplog.records] == [
        "CDR change skipped: CallAnswered: no CDR for call 'ghost'",
        "CDR change skipped: LegAdded: call 'old' is already closed",
        "CDR change skipped: CallStarted: call 'old' already has a CDR",
        "CDR change skipped: CallStarted: call 'odd' has an unknown direction 'sideways'",
        "CDR change skipped: LegAdded: call 'good' already has leg 1",
        "CDR change skipped: LegEnded: call 'good' has no leg 7",
        "CDR change skipped: CallEnded: call 'good' cannot end as answered: it was never answered",
        "CDR change skipped: CallEnded: call 'good' has an unknown disposition 'exploded'",
        "CDR change skipped: CallStart: CallStart is not a call event",
        "CDR change skipped: LegEnded: call 'good' is already closed",
    ]
    assert await store.get_call("good") == answered_record("good")
    assert await store.get_call("old") == old
    assert await store.get_call("ghost") is None
    assert await store.get_call("odd") is None


async def test_closed_rows_are_never_reopened_by_a_later_batch(store: CdrStore) -> None:
    await store.apply(answered_call("c1"))
    await store.apply(
        [
            (at(70), LegAdded("c1", 2, "1002", "x@switch")),
            (at(71), CallAnswered("c1")),
            (at(72), RecordingStarted("c1", "/tmp/late.wav")),
            (at(73), CallEnded("c1", "failed", 41, 500, "late")),
            (at(74), LegEnded("c1", 0, 500, 41)),
        ]
    )
    assert await store.get_call("c1") == answered_record("c1")


async def test_events_for_an_open_call_continue_its_row(store: CdrStore) -> None:
    # A row opened through the single-call API is continued by batches, and vice versa.
    await store.open_call(
        CallStart(
            "c1",
            Direction.inbound,
            "+8613912345678",
            "+864001234567",
            "pri-east",
            "gw1",
            started_at=at(0),
        )
    )
    await store.add_leg("c1", LegStart(0, "gw1", sip_call_id="a-c1@gw1", started_at=at(0)))
    await store.apply(answered_call("c1")[2:5])
    await store.leg_ended("c1", 1, sip_status=200, at=at(65.2))
    await store.apply(answered_call("c1")[6:])
    assert await store.get_call("c1") == answered_record("c1")


async def test_an_empty_batch_commits_nothing(store: CdrStore, commits: list[None]) -> None:
    await store.apply([])
    assert commits == []


# Hypothesis: whatever events arrive, in whatever batches, apply() ends with the rows the
# single-call methods would have written, skipping what they would have refused.

_KINDS = st.sampled_from(
    ["start", "leg", "leg_answer", "leg_end", "answer", "end_answered", "end_busy"]
)


def _event(kind: str, call_id: str, leg_index: int) -> CallEvent:
    events: dict[str, CallEvent] = {
        "start": CallStarted(call_id, "inbound", "+86139", "+86400", "pri-east", "gw1"),
        "leg": LegAdded(call_id, leg_index, f"peer{leg_index}", f"sip{leg_index}"),
        "leg_answer": LegAnswered(call_id, leg_index),
        "leg_end": LegEnded(call_id, leg_index, 486, 17),
        "answer": CallAnswered(call_id),
        "end_answered": CallEnded(call_id, "answered", 16, 200, "bye"),
        "end_busy": CallEnded(call_id, "busy", 17, 486, "rejected-486"),
    }
    return events[kind]


async def _one_by_one(store: CdrStore, changes: list[Change]) -> None:
    """The reference: each change through the single-call method it stands for."""
    for when, change in changes:
        try:
            match change:
                case CallStarted():
                    await store.open_call(
                        CallStart(
                            change.call_id,
                            Direction(change.direction),
                            change.caller,
                            change.callee,
                            change.trunk,
                            change.gateway,
                            when,
                        )
                    )
                case LegAdded():
                    await store.add_leg(
                        change.call_id,
                        LegStart(change.leg_index, change.peer, change.sip_call_id, when),
                    )
                case LegAnswered():
                    await store.leg_answered(change.call_id, change.leg_index, when)
                case LegEnded():
                    await store.leg_ended(
                        change.call_id,
                        change.leg_index,
                        sip_status=change.sip_status,
                        q850_cause=change.q850_cause,
                        at=when,
                    )
                case CallAnswered():
                    await store.answered(change.call_id, when)
                case CallEnded():
                    await store.close_call(
                        change.call_id,
                        CallEnd(
                            Disposition(change.disposition),
                            change.q850_cause,
                            change.sip_status,
                            when,
                        ),
                    )
        except CdrError:
            pass


_example = iter(range(1_000_000))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(_KINDS, st.integers(0, 2), st.integers(0, 1), st.integers(0, 50)),
        max_size=25,
    ),
    cuts=st.lists(st.integers(0, 25), max_size=4),
)
async def test_batches_write_what_the_single_call_methods_write(
    store: CdrStore,
    steps: list[tuple[str, int, int, int]],
    cuts: list[int],
) -> None:
    n = next(_example)
    batched: list[Change] = []
    single: list[Change] = []
    for kind, call, leg_index, seconds in steps:
        batched.append((at(seconds), _event(kind, f"b{n}-{call}", leg_index)))
        single.append((at(seconds), _event(kind, f"s{n}-{call}", leg_index)))
    bounds = [0, *sorted(cuts), len(batched)]
    logging.disable(logging.WARNING)  # the refused changes are expected here
    try:
        for start, stop in itertools.pairwise(bounds):
            await store.apply(batched[start:stop])
        await _one_by_one(store, single)
    finally:
        logging.disable(logging.NOTSET)
    for call in range(3):
        b = await store.get_call(f"b{n}-{call}")
        s = await store.get_call(f"s{n}-{call}")
        if s is None:
            assert b is None
        else:
            assert b is not None
            assert b.legs == s.legs
            assert b == dataclasses.replace(s, call_id=b.call_id)
