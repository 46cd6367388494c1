"""Originate (click-to-dial): the switch starts a call itself. It rings the agent's phone
first; when the agent answers, the agent hears our ringback and the customer is dialled
(through a trunk group, or an extension); when the customer answers the two are
bridged. The call's CDR reads as if the agent had dialled: direction outbound (internal
for an extension), caller the agent's extension, callee the number sent to the PSTN.

The agent's leg is the call's `a` (an INVITE we send, so an `InviteClient`), the
customer's is `b`. Until the agent answers, `Originate` handles the agent's leg; then
the call goes on like any other. A failure on either side before the customer answered
is published as `OriginateFailed` (which side, its SIP status and Q.850 cause); one
found before anything rang (the agent is not registered, no route, no free channel) is
raised as `OriginateError` by switch.routing's `originate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from switch.calls.events import LegAnswered, OriginateFailed
from switch.calls.legs import Leg
from switch.calls.types import INCOMPATIBLE, NO_ANSWER, Ending, reason_cause
from switch.pri_gateway import Seizure, q850_cause_for_status
from switch.sip import Answered, EarlyMedia, Ended, InviteEvent, Rejected, Ringing

if TYPE_CHECKING:
    from switch.calls.call import Call

__all__ = ["Originate", "OriginateError"]


class OriginateError(Exception):
    """The call could not be started: `side` ("agent" or "customer") says whose fault,
    with the SIP status and Q.850 cause a failed call would have had."""

    def __init__(self, side: str, status: int, q850_cause: int | None, message: str) -> None:
        super().__init__(message)
        self.side = side
        self.status = status
        self.q850_cause = q850_cause


class Originate:
    def __init__(self, dial_customer: Callable[[Call, float], object], *,
                 ring_deadline: float, seizure: Seizure | None = None) -> None:
        self.dial_customer = dial_customer  # rings `b` (switch.routing connects it)
        self.deadline: float | None = ring_deadline  # the agent's ring timeout
        self.seizure = seizure  # the channel kept for the customer until dialled

    def __repr__(self) -> str:
        return f"<Originate deadline={self.deadline}>"

    def on_agent_event(self, call: Call, leg: Leg, event: InviteEvent, now: float) -> None:
        """The agent's leg before it answered."""
        if isinstance(event, Answered):
            self._agent_answered(call, leg, event.sdp, now)
        elif isinstance(event, Ringing):
            call.leg_ringing(leg)  # the agent's phone
        elif isinstance(event, EarlyMedia):
            leg.take_answer(event.sdp)  # a phone's 183: nothing to hear yet
            call.leg_ringing(leg)
        elif isinstance(event, Rejected):
            leg.final_status = event.status
            cause = reason_cause(event.reason_header) or q850_cause_for_status(event.status)
            call.hang_up(now, q850_cause=cause, status=event.status,
                         cause=f"agent-rejected-{event.status}")
        elif isinstance(event, Ended) and leg.final_status is None:
            # No final response at all (Timer B): the phone is gone.
            call.hang_up(now, q850_cause=q850_cause_for_status(408), status=408,
                         cause=f"agent-{event.cause}")

    def _agent_answered(self, call: Call, leg: Leg, sdp: bytes, now: float) -> None:
        self.deadline = None
        if not leg.take_answer(sdp):
            call.hang_up(now, q850_cause=INCOMPATIBLE, status=488, cause="agent-bad-answer")
            return
        leg.answered = True
        call.control.report(LegAnswered(call.call_id, leg.index))
        # The agent hears ringback until the customer answers (or sends early media).
        call.play_tone("ringback")
        self.seizure = None  # the customer's leg holds it from now on
        self.dial_customer(call, now)

    def handle_timer(self, call: Call, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
            call.hang_up(now, q850_cause=NO_ANSWER, status=480, cause="agent-no-answer")

    def finished(self, call: Call, ending: Ending) -> None:
        """The call ends: give back a channel never used, and say why it failed."""
        if self.seizure is not None:
            call.control.release(self.seizure)
            self.seizure = None
        if call.answered_at is not None:
            return
        # The agent's phone never answered, or hung up while the customer rang.
        agent = not call.a.answered or ending.cause.startswith("caller-")
        side = "agent" if agent else "customer"
        call.control.report(OriginateFailed(call.call_id, side, ending.sip_status,
                                            ending.cdr_cause(), ending.cause))
