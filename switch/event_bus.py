"""One in-process event bus: call control publishes, CDRs, the ACD, the web's live events
and metrics subscribe.

Every event is published once, stamped with the injected clocks (`at`: the monotonic
`now` that drives SIP and call timers; `wall`: UTC for records people read), and handed
to each subscriber whose kinds it matches. Publishing never waits: each subscriber has a
bounded queue of its own, so a slow subscriber cannot stall call control; what does not
fit is dropped for that subscriber alone, counted, and logged once per overflow episode
(the next event that fits logs how many were lost).

The bus is a plain data structure on the event loop's thread; a subscriber learns that
something is waiting through its `on_ready` callback (the asyncio adapter `batches`
turns that into an async iterator).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["DEFAULT_MAX_QUEUED", "EventBus", "Published", "Subscription", "batches",
           "forward"]

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED = 10_000  # per subscriber: ~30 s of a saturated switch's call events


@dataclass(frozen=True, slots=True)
class Published:
    """One event as the bus delivered it."""

    at: float  # monotonic seconds, the `now` of the SIP stack and call control
    wall: datetime  # UTC, from the bus's wall clock
    event: Any

    def __repr__(self) -> str:
        return f"<Published {type(self.event).__name__} at {self.at:.3f}>"


class Subscription:
    """A subscriber's view of the bus: what was published of its kinds, in order."""

    def __init__(self, bus: EventBus, name: str, kinds: tuple[type, ...],
                 max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, not {max_queued}")
        self.name = name
        self.kinds = kinds  # empty: every event
        self.max_queued = max_queued
        self.dropped = 0  # events lost to a full queue since subscribing
        self.on_ready: Callable[[], None] | None = None  # called when the queue fills from empty
        self._bus = bus
        self._queue: deque[Published] = deque()
        self._overflowing = 0  # dropped in the current overflow episode
        self.closed = False

    def wants(self, event: object) -> bool:
        return not self.kinds or isinstance(event, self.kinds)

    def take(self) -> list[Published]:
        """Everything queued, oldest first; the queue is empty afterwards."""
        taken = list(self._queue)
        self._queue.clear()
        return taken

    def __len__(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self.closed = True
        self._bus.unsubscribe(self)
        if self.on_ready is not None:
            self.on_ready()  # wake a waiting reader so it sees the end

    def _offer(self, item: Published) -> None:
        if len(self._queue) >= self.max_queued:
            self.dropped += 1
            if not self._overflowing:
                log.warning("event bus: subscriber %s is %d events behind; dropping its "
                            "events until it catches up", self.name, self.max_queued)
            self._overflowing += 1
            return
        if self._overflowing:
            log.warning("event bus: subscriber %s caught up after losing %d events",
                        self.name, self._overflowing)
            self._overflowing = 0
        was_empty = not self._queue
        self._queue.append(item)
        if was_empty and self.on_ready is not None:
            self.on_ready()


class EventBus:
    """Typed publish/subscribe within one process and one event loop."""

    def __init__(self, wall_clock: Callable[[], datetime]) -> None:
        self._wall_clock = wall_clock
        self._subscriptions: list[Subscription] = []
        self.published = 0

    def subscribe(self, name: str, *kinds: type,
                  max_queued: int = DEFAULT_MAX_QUEUED) -> Subscription:
        """Receive events that are instances of any of `kinds` (none: all events)."""
        subscription = Subscription(self, name, kinds, max_queued)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, event: object, now: float) -> None:
        self.publish_all((event,), now)

    def publish_all(self, events: Iterable[object], now: float) -> None:
        """Publish events that happened at `now`, in order; one wall-clock read."""
        wall: datetime | None = None
        for event in events:
            if wall is None:
                wall = self._wall_clock()
            item = Published(now, wall, event)
            self.published += 1
            for subscription in self._subscriptions:
                if subscription.wants(event):
                    subscription._offer(item)

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)


async def batches(subscription: Subscription) -> AsyncIterator[list[Published]]:
    """The asyncio side of a subscription: yields what queued up since the last batch,
    waiting while nothing is queued; ends when the subscription is closed."""
    ready = asyncio.Event()
    subscription.on_ready = ready.set
    try:
        while True:
            if not len(subscription):
                if subscription.closed:
                    return
                ready.clear()
                await ready.wait()
                continue
            yield subscription.take()
    finally:
        subscription.on_ready = None


def forward(subscription: Subscription, handler: Callable[[list[Published]], None]) -> None:
    """Hand each event to `handler` as it is published, for a subscriber whose handler
    only queues (the CDR writer): no task, no extra loop iteration. A handler that
    raises is logged and does not reach the publisher."""

    def deliver() -> None:
        items = subscription.take()
        if not items:
            return
        try:
            handler(items)
        except Exception:
            log.exception("event bus: subscriber %s failed on %d events",
                          subscription.name, len(items))

    subscription.on_ready = deliver
