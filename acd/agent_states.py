"""The agent's state machine as data: what the agent chose (`Status`) kept apart from
what their phone and work are doing (`State`), as FreeSWITCH mod_callcenter keeps its
agent status and state apart.

`TABLE` maps (state, trigger) to a `Transition`: the next state and the bookkeeping
actions to take. `apply` looks a pair up. Every trigger that reports what happened
(call control, the agent, a timer, a restart) is listed in every state, absorbed where
it has nothing to do: a late, repeated or out-of-order report can never leave an agent
in a state it cannot leave. The one trigger that is a decision, `OFFERED`, is listed
only where an offer is allowed, so a missing pair can only be the caller's bug
(`AcdError`).

The states that hold a call (reserved, ringing, on a call, outbound) each have a way
out for every way a call can end, and the two that wait (reserved and ringing for the
phone, wrap-up for the agent) have a timer: that is the whole "never stuck" argument,
and tests/acd/test_agent_fuzz.py checks it on random sequences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from acd.errors import AcdError

__all__ = [
    "CALL_STATES", "MISS_REASONS", "OFFER_GUARD_S", "TABLE", "TIMED_STATES", "Action",
    "OfferFailure", "State", "Status", "Transition", "Trigger", "apply",
]

# The book's own limit on an offer, beyond the ring timeout the offer carries: the queue
# ends an unanswered offer itself at its ring timeout (offer_failed); this only catches
# an offer whose end was never reported (a lost event), so it is generous.
OFFER_GUARD_S = 5.0


class Status(Enum):
    """What the agent chose (web desktop, phone feature codes) or had chosen for them."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    NOT_READY = "not_ready"  # with a reason: 小休, 培训, 就餐 ... or "auto:no_answer"


class State(Enum):
    """What the agent's phone and work are doing, whatever their status."""

    IDLE = "idle"
    RESERVED = "reserved"  # chosen for a queue call; their phone is not ringing yet
    RINGING = "ringing"
    ON_CALL = "on_call"  # a queue call, answered
    WRAP_UP = "wrap_up"  # 话后处理: after a call, until the note is saved or time runs out
    OUTBOUND = "outbound"  # a call the agent made


CALL_STATES = frozenset({State.RESERVED, State.RINGING, State.ON_CALL, State.OUTBOUND})
TIMED_STATES = frozenset({State.RESERVED, State.RINGING, State.WRAP_UP})


class OfferFailure(Enum):
    """Why an offer ended unanswered, as the queue learnt it from the agent's leg."""

    NO_ANSWER = "no_answer"  # the ring timeout passed, or the phone gave up (408, 480)
    REJECTED = "rejected"  # the agent declined (486, 603)
    UNREACHABLE = "unreachable"  # the phone could not be reached (404, 503, no response)


# The not-ready reason set when consecutive failures reach the limit (data, not code:
# the desktop and the supervisor show it as it is).
MISS_REASONS: Mapping[OfferFailure, str] = {
    OfferFailure.NO_ANSWER: "auto:no_answer",
    OfferFailure.REJECTED: "auto:rejected",
    OfferFailure.UNREACHABLE: "auto:unreachable",
}


class Trigger(Enum):
    OFFERED = "offered"  # the queue chose the agent for a call (a decision)
    RANG = "ringing"  # the agent's phone rings
    ANSWERED = "answered"  # the agent's phone answered the offer
    ANSWERED_LATE = "answered_late"  # ... after the offer had already failed
    CALL_ENDED = "call_ended"  # the agent's part in the call ended: BYE, CANCEL, transfer
    OFFER_FAILED = "offer_failed"  # no answer, rejected, unreachable
    OUTBOUND_STARTED = "outbound_started"  # the agent dialled out
    WRAP_UP_DONE = "wrap_up_done"  # the contact note was saved
    LOGGED_OUT = "logged_out"  # by the agent, a supervisor, or their phone unregistering
    OFFER_EXPIRED = "offer_expired"  # timer: the offer's end was never reported
    WRAP_UP_EXPIRED = "wrap_up_expired"  # timer: the wrap-up time passed
    CALL_LOST = "call_lost"  # call control no longer has the call (reconcile)
    RESTARTED = "restarted"  # the switch restarted: every call is gone


class Action(Enum):
    HOLD_CALL = "hold the call id"
    RELEASE_CALL = "forget the call id"
    ARM_OFFER_GUARD = "arm the offer guard"
    ARM_WRAP_UP = "arm the wrap-up timer"
    COUNT_ANSWER = "count an answer and clear the misses"
    COUNT_MISS = "count a miss; not ready after too many in a row"
    COUNT_OUTBOUND = "count an outbound call"
    END_TALK = "add the talk time"
    KEEP_PLACE = "keep the idle-since the agent had before the offer"


@dataclass(frozen=True, slots=True)
class Transition:
    next: State
    actions: tuple[Action, ...] = ()
    absorbed: bool = False  # nothing to do in this state: no event, counted as ignored


Table = Mapping[tuple[State, Trigger], Transition]

_S = State
_T = Trigger
_A = Action

# An offer that ends before it connects: the agent worked on nothing.
_WITHDRAWN = Transition(_S.IDLE, (_A.RELEASE_CALL, _A.KEEP_PLACE))
# A failed offer restarts the agent's idle time: the next caller does not ring first
# the phone that just did not answer.
_FAILED = Transition(_S.IDLE, (_A.RELEASE_CALL, _A.COUNT_MISS))
# The end of a call the agent talked on: wrap-up (idle at once when the offer carried
# no wrap-up time, or the agent is logged out).
_TALKED = Transition(_S.WRAP_UP, (_A.RELEASE_CALL, _A.END_TALK, _A.ARM_WRAP_UP))
_DIALLED = Transition(_S.WRAP_UP, (_A.RELEASE_CALL, _A.ARM_WRAP_UP))
_OFFER_ENDS = {
    _T.CALL_ENDED: _WITHDRAWN,  # the caller hung up (CANCEL) before the agent answered
    _T.OFFER_FAILED: _FAILED,
    _T.OFFER_EXPIRED: Transition(_S.IDLE, (_A.RELEASE_CALL,)),
    _T.LOGGED_OUT: Transition(_S.IDLE, (_A.RELEASE_CALL,)),
    _T.CALL_LOST: _WITHDRAWN,
    _T.RESTARTED: _WITHDRAWN,
    _T.ANSWERED: Transition(_S.ON_CALL, (_A.COUNT_ANSWER,)),
}


def _complete(table: dict[tuple[State, Trigger], Transition]) -> Table:
    """Absorb every report a state does not mention (never `OFFERED`, a decision)."""
    for state in State:
        for trigger in Trigger:
            if trigger is not Trigger.OFFERED:
                table.setdefault((state, trigger), Transition(state, absorbed=True))
    return table


TABLE: Table = _complete({
    (_S.IDLE, _T.OFFERED): Transition(_S.RESERVED, (_A.HOLD_CALL, _A.ARM_OFFER_GUARD)),
    (_S.IDLE, _T.OUTBOUND_STARTED): Transition(_S.OUTBOUND, (_A.HOLD_CALL, _A.COUNT_OUTBOUND)),
    # Their phone answered an offer that had failed a moment before (the 200 OK crossed
    # our CANCEL): they are on that call, whatever the queue thought.
    (_S.IDLE, _T.ANSWERED_LATE): Transition(_S.ON_CALL, (_A.HOLD_CALL, _A.COUNT_ANSWER)),
    # Reserved: 180 Ringing may never come (an auto-answering phone), so answered too.
    (_S.RESERVED, _T.RANG): Transition(_S.RINGING),
    **{(_S.RESERVED, trigger): t for trigger, t in _OFFER_ENDS.items()},
    **{(_S.RINGING, trigger): t for trigger, t in _OFFER_ENDS.items()},
    # On a call: a consultation call (OUTBOUND_STARTED) and logging out (the call's end
    # completes the bookkeeping) are absorbed; every end leads to wrap-up.
    (_S.ON_CALL, _T.CALL_ENDED): _TALKED,
    (_S.ON_CALL, _T.CALL_LOST): _TALKED,
    (_S.ON_CALL, _T.RESTARTED): _TALKED,
    (_S.OUTBOUND, _T.CALL_ENDED): _DIALLED,
    (_S.OUTBOUND, _T.CALL_LOST): _DIALLED,
    (_S.OUTBOUND, _T.RESTARTED): _DIALLED,
    # Wrap-up survives a restart (its timer is the book's own) and a call-back to the
    # customer does not cut it short (the book carries the time left into the call).
    (_S.WRAP_UP, _T.WRAP_UP_DONE): Transition(_S.IDLE),
    (_S.WRAP_UP, _T.WRAP_UP_EXPIRED): Transition(_S.IDLE),
    (_S.WRAP_UP, _T.LOGGED_OUT): Transition(_S.IDLE),
    (_S.WRAP_UP, _T.OUTBOUND_STARTED): Transition(
        _S.OUTBOUND, (_A.HOLD_CALL, _A.COUNT_OUTBOUND)),
})


def apply(state: State, trigger: Trigger, table: Table = TABLE) -> Transition:
    """The transition for `trigger` in `state`; AcdError when there is none (only
    `OFFERED` can be missing: an offer to an agent who is not idle)."""
    try:
        return table[state, trigger]
    except KeyError:
        raise AcdError(f"no transition for {trigger.value} in state {state.value}") from None
