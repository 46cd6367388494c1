"""EventHub: live events to the browsers of logged-in users (screen pops, import
progress, agent state). Each open WebSocket is one Subscription; publishing never waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Any

# Events buffered per socket. A browser that falls this far behind is disconnected (it
# reconnects and reloads its state) rather than holding events without bound.
QUEUE_LIMIT = 256

Event = Mapping[str, Any]


class Overflowed(Exception):
    """The subscriber fell more than QUEUE_LIMIT events behind."""


class Subscription:
    def __init__(self, hub: EventHub, user_id: int, permissions: frozenset[str]) -> None:
        self.hub = hub
        self.user_id = user_id
        self.permissions = permissions
        self.overflowed = False
        # Set when some session of the user ended: the socket checks that it was not its
        # own (web.ws).
        self.session_check = asyncio.Event()
        self._events: deque[Event] = deque()
        self._ready = asyncio.Event()

    def deliver(self, event: Event) -> bool:
        if self.overflowed:
            return False
        if len(self._events) >= self.hub.queue_limit:
            self.overflowed = True
            self._events.clear()
        else:
            self._events.append(event)
        self._ready.set()
        return not self.overflowed

    async def get(self) -> Event:
        """The next event; raises Overflowed once the subscriber fell too far behind."""
        while not self._events:
            if self.overflowed:
                raise Overflowed
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    def __init__(self, *, queue_limit: int = QUEUE_LIMIT) -> None:
        self.queue_limit = queue_limit
        self._by_user: dict[int, set[Subscription]] = {}

    def subscribe(self, user_id: int, permissions: frozenset[str]) -> Subscription:
        """A subscription for one socket; ``permissions`` decide which broadcasts reach it."""
        subscription = Subscription(self, user_id, permissions)
        self._by_user.setdefault(user_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscriptions = self._by_user.get(subscription.user_id)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._by_user[subscription.user_id]

    def publish(self, user_id: int, event: Event) -> int:
        """Send ``event`` to every open socket of one user; returns how many took it."""
        return sum(s.deliver(event) for s in list(self._by_user.get(user_id, ())))

    def broadcast(self, permission: str, event: Event) -> int:
        """Send ``event`` to every open socket whose user holds ``permission``."""
        return sum(
            s.deliver(event)
            for subscriptions in list(self._by_user.values())
            for s in list(subscriptions)
            if permission in s.permissions
        )

    def sessions_ended(self, user_id: int) -> int:
        """Some session of ``user_id`` has ended (logout, a password change ...): each of
        the user's open sockets checks its own session now and closes if it was one of
        them. Returns how many sockets were told."""
        subscriptions = list(self._by_user.get(user_id, ()))
        for subscription in subscriptions:
            subscription.session_check.set()
        return len(subscriptions)

    def connected_users(self) -> frozenset[int]:
        return frozenset(self._by_user)
