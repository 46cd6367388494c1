"""CdrWriter: call control's events into CDRs, without call control ever waiting on a disk.

Call control is sans-I/O and its events carry no times; ``submit`` stamps them with the
wall clock (the same loop iteration as the SIP message or timer that caused them) and
queues them. One background task writes the queue through ``CdrStore.apply`` in batches,
in order: a batch is whatever queued up while the previous one was being committed, up to
``max_batch``, so a quiet switch commits each event at once and a busy one (300 calls/s,
~7 events a call) commits a few times a second instead of ~2000 times.

While calls are up it heartbeats every ``heartbeat_s``, which bounds what a crash can cost
an answered call's billable time; ``start`` first closes what the last run left open.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from apps.cdrs import CdrError, CdrStore
from switch.calls import CALL_EVENT_TYPES, CallEnded, CallEvent, CallStarted
from switch.event_bus import EventBus, Published, forward

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 5.0
DEFAULT_MAX_BATCH = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CdrWriter:
    """Queues call events from ``submit`` and writes them to ``store`` in batches."""

    def __init__(
        self,
        store: CdrStore,
        *,
        clock: Callable[[], datetime] = _utc_now,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        max_batch: int = DEFAULT_MAX_BATCH,
        batch_window_s: float = 0.0,
    ) -> None:
        """``batch_window_s``: once something is queued, let more gather this long
        before writing (a busy switch then commits a few large batches a second, a
        quiet one still within that window; a crash loses at most that much)."""
        if heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be positive, not {heartbeat_s}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._store = store
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._max_batch = max_batch
        self._batch_window_s = batch_window_s
        self._queue: deque[tuple[datetime, CallEvent]] = deque()
        self._in_flight = 0
        self._wakeup = asyncio.Event()
        self._attempted = asyncio.Condition()  # notified after every batch, written or lost
        # Calls submitted as started and not yet as ended: heartbeats are needed only
        # while there are some.
        self._open_calls: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.submitted = 0  # changes queued since construction
        self.written = 0  # changes in committed batches (including ones the store skipped)
        self.lost = 0  # changes in batches the database refused
        self.batches = 0  # committed batches

    def subscribe(self, bus: EventBus) -> None:
        """Take every call event published on `bus`, as it is published."""
        forward(bus.subscribe("cdrs", *CALL_EVENT_TYPES), self.submit_published)

    @property
    def pending(self) -> int:
        """Changes queued or being written, not yet committed or lost."""
        return len(self._queue) + self._in_flight

    def submit(self, events: Iterable[CallEvent]) -> None:
        """Stamp ``events`` with the clock's now and queue them; never waits."""
        now = self._clock()
        self.submit_stamped((now, event) for event in events)

    def submit_published(self, items: Iterable[Published]) -> None:
        """Call events from the event bus, stamped with the bus's wall clock."""
        self.submit_stamped((item.wall, item.event) for item in items)

    def submit_stamped(self, stamped: Iterable[tuple[datetime, CallEvent]]) -> None:
        """Queue events with the times they happened; never waits. What CDRs are not
        made of (CallRinging, CallHeld ...: not in CALL_EVENT_TYPES) is left out."""
        if self._stopping:
            raise CdrError("the CDR writer is stopped")
        for now, event in stamped:
            if not isinstance(event, CALL_EVENT_TYPES):
                continue
            self._queue.append((now, event))
            self.submitted += 1
            if isinstance(event, CallStarted):
                self._open_calls.add(event.call_id)
            elif isinstance(event, CallEnded):
                self._open_calls.discard(event.call_id)
        self._wakeup.set()

    async def start(self) -> None:
        """Close the CDRs the last run left open, then start writing."""
        if self._task is not None or self._stopping:
            raise CdrError("the CDR writer was already started")
        closed = await self._store.recover_interrupted(self._clock())
        logger.log(
            logging.WARNING if closed else logging.INFO,
            "CDRs left open by the last run, closed as interrupted: %d",
            closed,
        )
        self._task = asyncio.create_task(self._run(), name="cdr-writer")

    async def flush(self) -> None:
        """Wait until every change submitted so far has been committed or lost."""
        if self._task is None or self._task.done():
            raise CdrError("the CDR writer is not running")
        target = self.submitted
        async with self._attempted:
            await self._attempted.wait_for(lambda: self.written + self.lost >= target)

    async def stop(self) -> None:
        """Write everything queued, then stop. Calling it again does nothing."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_heartbeat: float | None = None  # loop time; None while no call is up
        while True:
            if not self._open_calls:
                next_heartbeat = None
            elif next_heartbeat is None:
                next_heartbeat = loop.time() + self._heartbeat_s
            elif loop.time() >= next_heartbeat:
                await self._heartbeat()
                next_heartbeat = loop.time() + self._heartbeat_s
            if self._queue:
                if self._batch_window_s and not self._stopping \
                        and len(self._queue) < self._max_batch:
                    await asyncio.sleep(self._batch_window_s)  # let the batch fill
                await self._write_batch()
                continue
            if self._stopping:
                return
            # submit() runs on this loop, so nothing can be queued between the check
            # above and this clear.
            self._wakeup.clear()
            delay = None if next_heartbeat is None else max(0.0, next_heartbeat - loop.time())
            try:
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def _write_batch(self) -> None:
        n = min(len(self._queue), self._max_batch)
        batch = [self._queue.popleft() for _ in range(n)]
        self._in_flight = n
        try:
            await self._store.apply(batch)
        # Whatever one batch hits (the database gone, a value it refuses), the writer is
        # the only way CDRs get written: log what was lost and carry on with the next.
        except Exception:
            self.lost += n
            logger.exception("CDR batch lost: %d changes not written", n)
        else:
            self.written += n
            self.batches += 1
        finally:
            self._in_flight = 0
        async with self._attempted:
            self._attempted.notify_all()

    async def _heartbeat(self) -> None:
        try:
            await self._store.heartbeat(self._clock())
        except Exception:
            logger.exception("CDR heartbeat failed")
