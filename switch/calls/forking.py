"""Ringing several parties for one call: every registered device of an extension, or a
ring group's targets at once (simultaneous) or one after another (sequential).

A `Forking` is a list of *steps*; each step is a set of targets rung at once, for the
step's ring timeout. The first leg to answer wins: it becomes the call's other party
(`Call.b`) and every other leg still ringing gets a CANCEL with `Reason: SIP;cause=200;
text="Call completed elsewhere"` (RFC 3326), so phones do not log a missed call. A device
answering after another won has crossed our CANCEL: its INVITE session ACKs and BYEs it
(RFC 3261 §9.1). When every step has failed the caller gets the best failure (RFC 3261
§16.7 item 6, `best_failure`).

Each leg rung is its own CDR leg (LegAdded/LegEnded): who was offered the call and how
each offer ended is what a report of missed calls per device needs; the legs that lost
end with 487 and Q.850 26 (non-selected user clearing), so they are told apart from the
ones that failed. Steps are resolved when they start (switch.routing), so a sequential
group sees registrations and free trunk channels as they are then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switch.calls.events import LegEnded
from switch.calls.legs import Leg
from switch.calls.types import NO_ANSWER, TEMPORARY_FAILURE, DialTarget, reason_cause
from switch.pri_gateway import q850_cause_for_status
from switch.sip import Answered, EarlyMedia, Ended, InviteEvent, Rejected, Ringing

if TYPE_CHECKING:
    from switch.calls.call import Call

__all__ = ["COMPLETED_ELSEWHERE", "NON_SELECTED", "Failure", "Forking", "Step",
           "best_failure"]

COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'  # RFC 3326 §2
NON_SELECTED = 26  # Q.850 "non-selected user clearing": another device answered


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one target of a step could not be rung, or how its leg failed."""

    status: int
    q850_cause: int | None = None
    reason_header: str | None = None


# A step: resolved when it starts (`now`), to the targets to ring and the failures of
# those that cannot be rung (not registered, no free channel, no route).
Step = Callable[[float], list[DialTarget | Failure]]

# RFC 3261 §16.7 item 6: a 6xx wins; otherwise the lowest class, and in it the answers
# that say most to the caller first. A phone busy (486) tells more than one that is not
# there (480) or a number that does not exist (404). Ranks: lower is better.
_PREFERRED: dict[int, int] = {
    600: 0, 603: 1, 604: 2, 606: 3,
    486: 10, 484: 11, 488: 12, 415: 13, 420: 14, 403: 15, 480: 16, 404: 17, 408: 18,
    487: 19,
}


def _rank(status: int) -> tuple[int, int, int]:
    klass = 0 if status >= 600 else 1 if status < 500 else 2
    return klass, _PREFERRED.get(status, 50), status


def best_failure(failures: Iterable[Failure]) -> Failure:
    """The failure to answer the caller with when every target failed."""
    return min(failures, key=lambda failure: _rank(failure.status),
               default=Failure(480, NO_ANSWER))


class Forking:
    def __init__(self, steps: Iterable[Step], ring_timeout_s: float) -> None:
        self.steps = list(steps)
        self.ring_timeout_s = ring_timeout_s
        self.ringing: list[Leg] = []  # legs of the current step, not yet answered
        self.failures: list[Failure] = []
        self.deadline: float | None = None
        self._rang = False  # the caller has been told it rings

    def __repr__(self) -> str:
        return f"<Forking {len(self.ringing)} ringing, {len(self.steps)} steps left>"

    def start(self, call: Call, now: float) -> None:
        """Ring the next step that has something to ring; fail the call when none."""
        while self.steps:
            step = self.steps.pop(0)
            for target in step(now):
                if isinstance(target, Failure):
                    self.failures.append(target)
                    continue
                leg = call.dial_extra(target, now)
                if leg is None:  # no free RTP port
                    if target.seizure is not None:
                        call.control.release(target.seizure)
                    self.failures.append(Failure(503, TEMPORARY_FAILURE))
                else:
                    self.ringing.append(leg)
            if self.ringing:
                self.deadline = now + self.ring_timeout_s
                return
        self.deadline = None
        best = best_failure(self.failures)
        call.forking = None
        call.dial_failed(None, best.status, best.q850_cause, now,
                         reason_header=best.reason_header)

    def on_event(self, call: Call, leg: Leg, event: InviteEvent, now: float) -> None:
        if isinstance(event, Answered):
            self._won(call, leg, event, now)
        elif isinstance(event, EarlyMedia):
            # Which fork's early media would the caller hear? None: our ringback.
            leg.take_answer(event.sdp)
            call.leg_ringing(leg)
            self._ringing(call, now)
        elif isinstance(event, Ringing):
            call.leg_ringing(leg)
            self._ringing(call, now)
        elif isinstance(event, Rejected):
            self._lost(call, leg, Failure(event.status, reason_cause(event.reason_header),
                                          event.reason_header), now)
        elif isinstance(event, Ended) and leg.final_status is None:
            self._lost(call, leg, Failure(408), now)  # no answer at all (Timer B)

    def _ringing(self, call: Call, now: float) -> None:
        if not self._rang:
            self._rang = True
            call.peer_ringing(now)

    def _won(self, call: Call, leg: Leg, event: Answered, now: float) -> None:
        self.ringing.remove(leg)
        self.cancel(call, now, reason_header=COMPLETED_ELSEWHERE, status=487,
                    q850_cause=NON_SELECTED)
        call.forking = None
        call.b = leg
        call.on_leg_event(leg, event, now)

    def _lost(self, call: Call, leg: Leg, failure: Failure, now: float) -> None:
        self.ringing.remove(leg)
        self._end_leg(call, leg, failure.status, failure.q850_cause
                      or q850_cause_for_status(failure.status))
        self.failures.append(failure)
        if not self.ringing:
            self.start(call, now)

    def cancel(self, call: Call, now: float, *, reason_header: str | None = None,
               status: int = 487, q850_cause: int | None = None) -> None:
        """Stop ringing every leg of the step (another answered, or the call ends)."""
        for leg in self.ringing:
            leg.hang_up(now, q850_cause=None if reason_header else q850_cause,
                        reason_header=reason_header)
            self._end_leg(call, leg, status, q850_cause)
        self.ringing = []
        self.deadline = None

    def handle_timer(self, call: Call, now: float) -> None:
        if self.deadline is None or now < self.deadline:
            return
        for leg in self.ringing:
            leg.hang_up(now, q850_cause=NO_ANSWER)
            self._end_leg(call, leg, 480, NO_ANSWER)
            self.failures.append(Failure(480, NO_ANSWER))
        self.ringing = []
        self.start(call, now)

    @staticmethod
    def _end_leg(call: Call, leg: Leg, status: int, q850_cause: int | None) -> None:
        leg.final_status = status
        leg.q850_cause = q850_cause
        leg.end_reported = True
        call.control.report(LegEnded(call.call_id, leg.index, status, q850_cause))
        call.detach(leg)
