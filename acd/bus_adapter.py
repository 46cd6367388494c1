"""Feeds the agent book from the switch's event bus: what call control and the registrar
publish about an agent's phone becomes the book's reports, at the `at` the bus stamped.

Subscribe with `bus.subscribe("acd", *KINDS)` and hand each batch to `BusAdapter.feed`
(`switch.event_bus.forward` does that without a task). The book itself never sees the
bus; this file is the only one in acd that knows call control's events.

An agent's leg is recognised by its far end: a leg added to a call the agent holds an
offer for, whose peer is the agent's extension. The leg's fate then decides the offer's:
answered, failed (the final status says why), or ended after the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from acd.agent_states import OfferFailure
from acd.agents import AgentBook
from switch.calls import (
    CallEnded,
    CallRinging,
    CallStarted,
    CallTransferred,
    LegAdded,
    LegAnswered,
    LegEnded,
)
from switch.event_bus import Published
from switch.sip import RegistrationChanged

__all__ = ["FAILURES", "KINDS", "BusAdapter"]

KINDS: tuple[type, ...] = (CallStarted, LegAdded, CallRinging, LegAnswered, LegEnded,
                           CallTransferred, CallEnded, RegistrationChanged)

# The final status of an agent's unanswered leg -> why the offer failed. 487: we
# cancelled it, so it is not the agent's miss: the queue already reported its own ring
# timeout, or the caller hung up (withdrawn). Any other status, or none: unreachable.
FAILURES: Mapping[int, OfferFailure | None] = {
    408: OfferFailure.NO_ANSWER,  # the phone's INVITE timed out (Timer B) or gave up
    480: OfferFailure.NO_ANSWER,  # Temporarily Unavailable: the phone's own no-answer
    486: OfferFailure.REJECTED,  # Busy Here: the agent pressed decline
    600: OfferFailure.REJECTED,
    603: OfferFailure.REJECTED,
    487: None,
}


class BusAdapter:
    def __init__(self, book: AgentBook) -> None:
        self.book = book
        self._legs: dict[tuple[str, int], str] = {}  # an agent's leg -> the agent
        self._answered: set[tuple[str, int]] = set()

    def feed(self, items: Iterable[Published]) -> None:
        for item in items:
            self.handle(item.event, item.at)

    def handle(self, event: object, now: float) -> None:
        book = self.book
        if isinstance(event, LegAdded):
            self._leg_added(event.call_id, event.leg_index, event.peer)
        elif isinstance(event, CallRinging):
            self._leg_added(event.call_id, event.leg_index, event.target)
            agent_id = self._legs.get((event.call_id, event.leg_index))
            if agent_id is not None:
                book.ringing(agent_id, event.call_id, now)
        elif isinstance(event, LegAnswered):
            key = (event.call_id, event.leg_index)
            if (agent_id := self._legs.get(key)) is not None:
                self._answered.add(key)
                book.answered(agent_id, event.call_id, now)
        elif isinstance(event, LegEnded):
            self._leg_ended(event, now)
        elif isinstance(event, CallTransferred):
            # The transferor's part ends here, whether or not its leg's end follows.
            for holder in book.holding(event.call_id):
                if holder.extension == event.from_:
                    book.call_ended(event.call_id, now, f"transferred:{event.kind}",
                                    agent_id=holder.agent_id)
        elif isinstance(event, CallEnded):
            for key in [k for k in self._legs if k[0] == event.call_id]:
                del self._legs[key]
                self._answered.discard(key)
            book.call_ended(event.call_id, now, event.cause)
        elif isinstance(event, CallStarted):
            agent = book.by_extension(event.caller)
            if event.direction != "inbound" and agent is not None:
                self._legs[event.call_id, 0] = agent.agent_id
                self._answered.add((event.call_id, 0))
                book.outbound_started(agent.agent_id, event.call_id, now)
        elif isinstance(event, RegistrationChanged) and not event.registered:
            book.phone_unregistered(event.aor, now)

    def _leg_added(self, call_id: str, leg_index: int, peer: str) -> None:
        agent = self.book.by_extension(peer)
        if agent is not None and agent.call_id == call_id:
            self._legs.setdefault((call_id, leg_index), agent.agent_id)

    def _leg_ended(self, event: LegEnded, now: float) -> None:
        key = (event.call_id, event.leg_index)
        agent_id = self._legs.pop(key, None)
        if agent_id is None:
            return
        if key in self._answered:
            self._answered.discard(key)
            self.book.call_ended(event.call_id, now, "leg_ended", agent_id=agent_id)
            return
        why = FAILURES.get(event.sip_status or 0, OfferFailure.UNREACHABLE)
        if why is None:
            self.book.call_ended(event.call_id, now, "cancel", agent_id=agent_id)
        else:
            self.book.offer_failed(agent_id, event.call_id, now, why)
