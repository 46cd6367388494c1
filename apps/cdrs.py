"""Call detail records: one row per call in ``calls``, one per SIP dialog in ``call_legs``.

A call's row is inserted the moment the call starts (state ``open``) and completed in one
transaction when it ends (state ``closed``), so a switch that dies mid-call leaves a row
for every call that was up. On the next start, ``recover_interrupted`` closes those rows
as ``interrupted`` at the last moment each call was known to be up (its ``last_seen_at``:
start, answer, a leg event or the latest ``heartbeat``).

Call control's events (``switch.calls.events``) arrive through ``CdrStore.apply``, many
calls' changes in one transaction, so the store commits once per batch rather than once
per event; ``apps.cdr_writer`` stamps, queues and batches them.

Durability: every method commits before it returns. What a returned commit survives:
- PostgreSQL: a crash of the switch or of the server (default ``synchronous_commit=on``).
- SQLite (WAL, see ``apps.db``): a crash of the switch, always, since the committed
  transaction is already in the ``-wal`` file. Power loss or an OS crash as well only
  with ``PRAGMA synchronous=FULL``, which is SQLite's compiled-in default and what
  ``apps.db`` leaves in place (tests/apps/test_cdrs.py checks it); with NORMAL the last
  few commits could be lost on power loss, never the file.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, case, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apps.cdr_variables import storable
from apps.db import Database
from apps.models import Call, CallLeg
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

logger = logging.getLogger(__name__)

ONE_SECOND = timedelta(seconds=1)
DEFAULT_LIST_LIMIT = 1000
# Call ids per "IN (...)" when a batch loads its rows: far below the bound-parameter
# limits of SQLite (32766) and asyncpg (32767), whatever size a batch is given.
IDS_PER_SELECT = 500

_E = TypeVar("_E", bound=enum.StrEnum)


class CdrError(Exception):
    """A CDR update that does not fit the call's record; the message says why."""


class Direction(enum.StrEnum):
    inbound = "inbound"  # from a trunk (the PSTN) to us
    outbound = "outbound"  # from us out through a trunk
    internal = "internal"  # extension to extension


class Disposition(enum.StrEnum):
    """How a call ended, as reports group it."""

    answered = "answered"
    busy = "busy"
    no_answer = "no_answer"
    cancelled = "cancelled"  # the caller hung up before an answer
    congestion = "congestion"  # no channel or route (Q.850 34, SIP 503)
    failed = "failed"
    interrupted = "interrupted"  # the switch stopped while the call was up


class CallState(enum.StrEnum):
    open = "open"
    closed = "closed"


@dataclass(frozen=True)
class CallStart:
    """What is known when a call starts; ``started_at`` None means the store's clock."""

    call_id: str  # ours, unique per call; not a SIP Call-ID (a call has one per leg)
    direction: Direction
    caller: str
    callee: str
    trunk: str | None = None
    gateway: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class CallEnd:
    disposition: Disposition
    q850_cause: int | None = None
    sip_status: int | None = None
    ended_at: datetime | None = None  # None: the store's clock
    # The call's variables (switch.calls.CallEnded.variables), stored as
    # apps.cdr_variables.storable makes them.
    variables: Mapping[str, object] | None = None


@dataclass(frozen=True)
class LegStart:
    leg_index: int  # 0 is the leg the call came in on
    peer: str  # gateway name, extension or URI of the far end
    sip_call_id: str | None = None
    started_at: datetime | None = None  # None: the store's clock


@dataclass(frozen=True)
class LegRecord:
    leg_index: int
    peer: str
    sip_call_id: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    sip_status: int | None
    q850_cause: int | None


@dataclass(frozen=True)
class CallRecord:
    """A CDR as stored; every datetime is aware UTC. Fields after ``last_seen_at`` are
    None while the call is open (except the ones later issues fill)."""

    call_id: str
    direction: Direction
    caller: str
    callee: str
    trunk: str | None
    gateway: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    last_seen_at: datetime
    duration_s: int | None
    billable_s: int | None
    disposition: Disposition | None
    q850_cause: int | None
    sip_status: int | None
    queue_name: str | None
    agent_username: str | None
    recording_path: str | None
    state: CallState
    closed_at: datetime | None
    legs: tuple[LegRecord, ...]
    recording_started_at: datetime | None = None
    # Silence in the recording: (from_s, to_s) seconds into the file.
    recording_pauses: tuple[tuple[float, float], ...] = ()
    # What the call's applications learnt (apps.cdr_variables); None if they set none,
    # and while the call is open.
    variables: Mapping[str, object] | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def whole_seconds(start: datetime, end: datetime) -> int:
    """Seconds from ``start`` to ``end``, a started second counting as a whole one (as
    carriers bill); 0 if ``end`` is not after ``start`` (a wall clock stepped back)."""
    delta = end - start
    if delta <= timedelta(0):
        return 0
    return -(-delta // ONE_SECOND)


def _leg_record(leg: CallLeg) -> LegRecord:
    return LegRecord(
        leg_index=leg.leg_index,
        peer=leg.peer,
        sip_call_id=leg.sip_call_id,
        started_at=leg.started_at,
        answered_at=leg.answered_at,
        ended_at=leg.ended_at,
        sip_status=leg.sip_status,
        q850_cause=leg.q850_cause,
    )


def _record(call: Call, legs: Iterable[CallLeg]) -> CallRecord:
    return CallRecord(
        call_id=call.call_id,
        direction=Direction(call.direction),
        caller=call.caller,
        callee=call.callee,
        trunk=call.trunk,
        gateway=call.gateway,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        last_seen_at=call.last_seen_at,
        duration_s=call.duration_s,
        billable_s=call.billable_s,
        disposition=None if call.disposition is None else Disposition(call.disposition),
        q850_cause=call.q850_cause,
        sip_status=call.sip_status,
        queue_name=call.queue_name,
        agent_username=call.agent_username,
        recording_path=call.recording_path,
        state=CallState(call.state),
        closed_at=call.closed_at,
        legs=tuple(_leg_record(leg) for leg in sorted(legs, key=lambda leg: leg.leg_index)),
        recording_started_at=call.recording_started_at,
        recording_pauses=tuple((start, end if end is not None else start)
                               for start, end in call.recording_pauses or ()
                               if start is not None),
        variables=call.variables,
    )


def _into_recording(call: Call, at: datetime) -> float:
    """Seconds from the recording's start to ``at`` (ms precision, never negative)."""
    assert call.recording_started_at is not None
    return max(0.0, round((at - call.recording_started_at).total_seconds(), 3))


def _seen(at: datetime) -> ColumnElement[datetime]:
    # max(last_seen_at, at) in SQL: events may be recorded out of order.
    return case((Call.last_seen_at < at, at), else_=Call.last_seen_at)


def _closing(
    call: Call, end: CallEnd, ended_at: datetime, closed_at: datetime
) -> dict[str, object]:
    closing: dict[str, object] = {
        "ended_at": ended_at,
        "last_seen_at": max(call.last_seen_at, ended_at),
        "duration_s": whole_seconds(call.started_at, ended_at),
        "billable_s": 0 if call.answered_at is None else whole_seconds(call.answered_at, ended_at),
        "disposition": end.disposition.value,
        "q850_cause": end.q850_cause,
        "sip_status": end.sip_status,
        "state": CallState.closed.value,
        "closed_at": closed_at,
    }
    if end.variables:
        closing["variables"] = storable(end.variables)
    return closing


def _member(kind: type[_E], value: str, what: str, call_id: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise CdrError(f"call '{call_id}' has an unknown {what} '{value}'") from None


class _Batch:
    """One ``CdrStore.apply``: the batch's rows, loaded once, changed in memory by the same
    rules as the single-call methods (and with their exact errors), written at the end.
    A change that does not fit raises CdrError and leaves the rows as they were."""

    def __init__(self, calls: Iterable[Call], legs: Iterable[CallLeg], closed_at: datetime) -> None:
        self.calls = {call.call_id: call for call in calls}
        self.legs: dict[str, dict[int, CallLeg]] = {}
        for leg in legs:
            self.legs.setdefault(leg.call_id, {})[leg.leg_index] = leg
        self.new_calls: list[Call] = []
        self.new_legs: list[CallLeg] = []
        self.closed_at = closed_at

    def apply(self, at: datetime, event: CallEvent) -> None:
        rule = _BATCH_RULES.get(type(event))
        if rule is None:
            raise CdrError(f"{type(event).__name__} is not a call event")
        rule(self, at, event)
        call = self.calls[event.call_id]
        call.last_seen_at = max(call.last_seen_at, at)  # events may be stamped out of order

    def _open(self, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise CdrError(f"no CDR for call '{call_id}'")
        if call.state != CallState.open.value:
            raise CdrError(f"call '{call_id}' is already closed")
        return call

    def _leg(self, call_id: str, leg_index: int) -> CallLeg:
        leg = self.legs.get(call_id, {}).get(leg_index)
        if leg is None:
            raise CdrError(f"call '{call_id}' has no leg {leg_index}")
        return leg

    def on_call_started(self, at: datetime, event: CallStarted) -> None:
        if event.call_id in self.calls:
            raise CdrError(f"call '{event.call_id}' already has a CDR")
        call = Call(
            call_id=event.call_id,
            direction=_member(Direction, event.direction, "direction", event.call_id).value,
            caller=event.caller,
            callee=event.callee,
            trunk=event.trunk,
            gateway=event.gateway,
            started_at=at,
            last_seen_at=at,
            state=CallState.open.value,
        )
        self.calls[event.call_id] = call
        self.new_calls.append(call)

    def on_leg_added(self, at: datetime, event: LegAdded) -> None:
        self._open(event.call_id)
        legs = self.legs.setdefault(event.call_id, {})
        if event.leg_index in legs:
            raise CdrError(f"call '{event.call_id}' already has leg {event.leg_index}")
        leg = CallLeg(
            call_id=event.call_id,
            leg_index=event.leg_index,
            peer=event.peer,
            sip_call_id=event.sip_call_id,
            started_at=at,
        )
        legs[event.leg_index] = leg
        self.new_legs.append(leg)

    def on_leg_answered(self, at: datetime, event: LegAnswered) -> None:
        self._open(event.call_id)
        leg = self._leg(event.call_id, event.leg_index)
        leg.answered_at = at

    def on_leg_ended(self, at: datetime, event: LegEnded) -> None:
        self._open(event.call_id)
        leg = self._leg(event.call_id, event.leg_index)
        if leg.ended_at is not None:
            raise CdrError(f"leg {event.leg_index} of call '{event.call_id}' has already ended")
        leg.ended_at = at
        leg.sip_status = event.sip_status
        leg.q850_cause = event.q850_cause

    def on_call_answered(self, at: datetime, event: CallAnswered) -> None:
        call = self._open(event.call_id)
        if call.answered_at is not None:
            raise CdrError(f"call '{event.call_id}' was already answered")
        call.answered_at = at

    def on_recording_started(self, at: datetime, event: RecordingStarted) -> None:
        call = self._open(event.call_id)
        call.recording_path, call.recording_started_at = event.path, at

    def on_recording_paused(self, at: datetime, event: RecordingPaused) -> None:
        call = self._open(event.call_id)
        pauses = call.recording_pauses or []
        if call.recording_started_at is None or (pauses and pauses[-1][1] is None):
            raise CdrError(f"call '{event.call_id}' has no recording going on to pause")
        call.recording_pauses = [*pauses, [_into_recording(call, at), None]]

    def on_recording_resumed(self, at: datetime, event: RecordingResumed) -> None:
        call = self._open(event.call_id)
        pauses = call.recording_pauses or []
        if not pauses or pauses[-1][1] is not None:
            raise CdrError(f"call '{event.call_id}' has no paused recording to resume")
        call.recording_pauses = [*pauses[:-1], [pauses[-1][0], _into_recording(call, at)]]

    def on_call_ended(self, at: datetime, event: CallEnded) -> None:
        call = self._open(event.call_id)
        disposition = _member(Disposition, event.disposition, "disposition", event.call_id)
        if disposition is Disposition.answered and call.answered_at is None:
            raise CdrError(f"call '{event.call_id}' cannot end as answered: it was never answered")
        end = CallEnd(disposition, event.q850_cause, event.sip_status,
                      variables=event.variables)
        if call.recording_pauses and call.recording_pauses[-1][1] is None:
            self.on_recording_resumed(at, RecordingResumed(event.call_id))  # to the end
        for name, value in _closing(call, end, at, self.closed_at).items():
            setattr(call, name, value)
        for leg in self.legs.get(event.call_id, {}).values():
            if leg.ended_at is None:
                leg.ended_at = at


# How each event changes a batch's rows: one entry per CallEvent type.
_BATCH_RULES: dict[type, Callable[[_Batch, datetime, Any], None]] = {
    CallStarted: _Batch.on_call_started,
    LegAdded: _Batch.on_leg_added,
    LegAnswered: _Batch.on_leg_answered,
    LegEnded: _Batch.on_leg_ended,
    CallAnswered: _Batch.on_call_answered,
    RecordingStarted: _Batch.on_recording_started,
    RecordingPaused: _Batch.on_recording_paused,
    RecordingResumed: _Batch.on_recording_resumed,
    CallEnded: _Batch.on_call_ended,
}


class CdrStore:
    """CDRs on ``db``; ``clock`` gives wall-clock UTC for any time a caller leaves out."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = _utc_now) -> None:
        self._db = db
        self._clock = clock

    async def open_call(self, start: CallStart) -> None:
        """Insert the call's row, open, and commit it before returning."""
        started_at = start.started_at or self._clock()
        call = Call(
            call_id=start.call_id,
            direction=Direction(start.direction).value,
            caller=start.caller,
            callee=start.callee,
            trunk=start.trunk,
            gateway=start.gateway,
            started_at=started_at,
            last_seen_at=started_at,
            state=CallState.open.value,
        )
        async with self._db.session() as session:
            session.add(call)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if await self._find(session, start.call_id) is not None:
                    raise CdrError(f"call '{start.call_id}' already has a CDR") from None
                raise

    async def answered(self, call_id: str, at: datetime | None = None) -> None:
        """Record the moment the call was answered: billing starts here."""
        at = at or self._clock()
        async with self._db.session() as session:
            call = await self._open(session, call_id)
            if call.answered_at is not None:
                raise CdrError(f"call '{call_id}' was already answered")
            await self._update_open(
                session, call, Call.answered_at.is_(None), answered_at=at, last_seen_at=_seen(at)
            )
            await session.commit()

    async def add_leg(self, call_id: str, leg: LegStart) -> None:
        at = leg.started_at or self._clock()
        async with self._db.session() as session:
            call = await self._open(session, call_id)
            if await session.get(CallLeg, (call_id, leg.leg_index)) is not None:
                raise CdrError(f"call '{call_id}' already has leg {leg.leg_index}")
            session.add(
                CallLeg(
                    call_id=call_id,
                    leg_index=leg.leg_index,
                    peer=leg.peer,
                    sip_call_id=leg.sip_call_id,
                    started_at=at,
                )
            )
            await self._update_open(session, call, last_seen_at=_seen(at))
            await session.commit()

    async def leg_answered(self, call_id: str, leg_index: int, at: datetime | None = None) -> None:
        at = at or self._clock()
        async with self._db.session() as session:
            call = await self._open(session, call_id)
            leg = await self._leg(session, call_id, leg_index)
            leg.answered_at = at
            await self._update_open(session, call, last_seen_at=_seen(at))
            await session.commit()

    async def leg_ended(
        self,
        call_id: str,
        leg_index: int,
        *,
        sip_status: int | None = None,
        q850_cause: int | None = None,
        at: datetime | None = None,
    ) -> None:
        at = at or self._clock()
        async with self._db.session() as session:
            call = await self._open(session, call_id)
            leg = await self._leg(session, call_id, leg_index)
            if leg.ended_at is not None:
                raise CdrError(f"leg {leg_index} of call '{call_id}' has already ended")
            leg.ended_at = at
            leg.sip_status = sip_status
            leg.q850_cause = q850_cause
            await self._update_open(session, call, last_seen_at=_seen(at))
            await session.commit()

    async def close_call(self, call_id: str, end: CallEnd) -> CallRecord:
        """Complete and close the call's row, and end its legs still up, in one committed
        transaction; returns the finished CDR."""
        closed_at = self._clock()
        ended_at = end.ended_at or closed_at
        async with self._db.session() as session:
            call = await self._open(session, call_id)
            if end.disposition is Disposition.answered and call.answered_at is None:
                raise CdrError(f"call '{call_id}' cannot end as answered: it was never answered")
            await self._update_open(session, call, **_closing(call, end, ended_at, closed_at))
            await self._end_legs(session, call_id, ended_at)
            await session.commit()
        record = await self.get_call(call_id)
        assert record is not None
        return record

    async def apply(self, changes: Sequence[tuple[datetime, CallEvent]]) -> None:
        """Apply call control's events, each stamped with when it happened, for any number
        of calls, in order, in one committed transaction. Each change follows the rules of
        the single-call method it stands for; one that does not fit (an unknown or closed
        call, a second answer ...) is logged and skipped, and the rest are still applied.
        Rows closed here get the store's clock as ``closed_at``."""
        if not changes:
            return
        closed_at = self._clock()
        call_ids = sorted({event.call_id for _, event in changes})
        async with self._db.session() as session:
            await self._lock_for_batch(session)
            calls: list[Call] = []
            for i in range(0, len(call_ids), IDS_PER_SELECT):
                calls += await session.scalars(
                    select(Call)
                    .where(Call.call_id.in_(call_ids[i : i + IDS_PER_SELECT]))
                    .order_by(Call.call_id)
                    .with_for_update()
                )
            legs: list[CallLeg] = []
            known = [call.call_id for call in calls]
            for i in range(0, len(known), IDS_PER_SELECT):
                legs += await self._legs(session, known[i : i + IDS_PER_SELECT])
            batch = _Batch(calls, legs, closed_at)
            for at, event in changes:
                try:
                    batch.apply(at, event)
                except CdrError as error:
                    logger.warning("CDR change skipped: %s: %s", type(event).__name__, error)
            # No relationship() ties legs to calls, so the unit of work would not know to
            # insert a new call before its legs: flush the calls first.
            session.add_all(batch.new_calls)
            await session.flush()
            session.add_all(batch.new_legs)
            await session.commit()

    async def _lock_for_batch(self, session: AsyncSession) -> None:
        # A batch reads its rows, then writes them back changed, so no other writer may
        # close one in between. PostgreSQL: the SELECTs lock their rows (FOR UPDATE).
        # SQLite has no row locks, and its driver would read outside any transaction:
        # take the database's write lock before reading instead.
        if self._db.dialect == "sqlite":
            await session.execute(text("BEGIN IMMEDIATE"))

    async def heartbeat(self, at: datetime | None = None) -> int:
        """Mark every open call as still up at ``at``; returns how many. Called every few
        seconds, it bounds what a crash can cost an answered call's billable time."""
        at = at or self._clock()
        async with self._db.session() as session:
            result = await session.execute(
                update(Call)
                .where(Call.state == CallState.open.value, Call.last_seen_at < at)
                .values(last_seen_at=at)
            )
            await session.commit()
            return int(getattr(result, "rowcount", 0))

    async def recover_interrupted(self, now: datetime) -> int:
        """Run at startup, before any call: close every open call as ``interrupted`` at its
        ``last_seen_at``, with the durations that follow from it; legs still up end at
        the same moment. ``now`` is recorded as the rows' ``closed_at``. Returns how many
        calls were closed; closed calls are not touched."""
        end = CallEnd(Disposition.interrupted)
        async with self._db.session() as session:
            calls = list(
                await session.scalars(
                    select(Call).where(Call.state == CallState.open.value).order_by(Call.id)
                )
            )
            for call in calls:
                ended_at = call.last_seen_at
                await self._update_open(session, call, **_closing(call, end, ended_at, now))
                await self._end_legs(session, call.call_id, ended_at)
            await session.commit()
            return len(calls)

    async def get_call(self, call_id: str) -> CallRecord | None:
        async with self._db.session() as session:
            call = await self._find(session, call_id)
            if call is None:
                return None
            return _record(call, await self._legs(session, [call_id]))

    async def list_calls(
        self, since: datetime, until: datetime, limit: int = DEFAULT_LIST_LIMIT
    ) -> list[CallRecord]:
        """Calls that started in [since, until), oldest first, at most ``limit``."""
        async with self._db.session() as session:
            calls = list(
                await session.scalars(
                    select(Call)
                    .where(Call.started_at >= since, Call.started_at < until)
                    .order_by(Call.started_at, Call.id)
                    .limit(limit)
                )
            )
            legs = await self._legs(session, [call.call_id for call in calls])
        by_call: dict[str, list[CallLeg]] = {}
        for leg in legs:
            by_call.setdefault(leg.call_id, []).append(leg)
        return [_record(call, by_call.get(call.call_id, ())) for call in calls]

    @staticmethod
    async def _find(session: AsyncSession, call_id: str) -> Call | None:
        return await session.scalar(select(Call).where(Call.call_id == call_id))

    @classmethod
    async def _open(cls, session: AsyncSession, call_id: str) -> Call:
        call = await cls._find(session, call_id)
        if call is None:
            raise CdrError(f"no CDR for call '{call_id}'")
        if call.state != CallState.open.value:
            raise CdrError(f"call '{call_id}' is already closed")
        return call

    @staticmethod
    async def _update_open(
        session: AsyncSession, call: Call, *guards: ColumnElement[bool], **values: object
    ) -> None:
        # The row is written only if it is still open (and still fits ``guards``) at write
        # time: a read-then-write with no lock held between (SQLite's driver reads outside
        # the write transaction) must not let a late event reopen or overwrite a closed CDR.
        result = await session.execute(
            update(Call)
            .where(Call.id == call.id, Call.state == CallState.open.value, *guards)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 1) != 1:
            await session.rollback()
            raise CdrError(f"call '{call.call_id}' changed while it was being updated; retry")

    @staticmethod
    async def _end_legs(session: AsyncSession, call_id: str, ended_at: datetime) -> None:
        await session.execute(
            update(CallLeg)
            .where(CallLeg.call_id == call_id, CallLeg.ended_at.is_(None))
            .values(ended_at=ended_at)
            .execution_options(synchronize_session=False)
        )

    @staticmethod
    async def _leg(session: AsyncSession, call_id: str, leg_index: int) -> CallLeg:
        leg = await session.get(CallLeg, (call_id, leg_index))
        if leg is None:
            raise CdrError(f"call '{call_id}' has no leg {leg_index}")
        return leg

    @staticmethod
    async def _legs(session: AsyncSession, call_ids: Sequence[str]) -> list[CallLeg]:
        if not call_ids:
            return []
        return list(await session.scalars(select(CallLeg).where(CallLeg.call_id.in_(call_ids))))
