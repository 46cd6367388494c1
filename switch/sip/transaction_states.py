"""The four transaction state machines of RFC 3261 §17 as data, with RFC 6026's
"Accepted" states, the timers they arm, and the transaction records they drive.

Each table maps (state, trigger) to a `Transition`: the next state, the actions to
take, the timers to stop and to arm. `apply` looks a pair up and raises
`LocalProtocolError` when it is missing: every trigger that comes from the network is
listed in every live state (absorbed when the RFC has nothing to do), so a missing
pair can only be a transaction user calling at the wrong time, or a bug here.
Client (UAC) and server (UAS) tables are kept apart.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from switch.sip.errors import LocalProtocolError
from switch.sip.message import Request, Response
from switch.sip.peer import Peer, response_peer

# RFC 3261 §17.1.1.1 and Table 4 (Appendix A).
T1_S = 0.5  # round-trip time estimate
T2_S = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
T4_S = 5.0  # maximum time a message remains in the network
TIMER_D_MIN_S = 32.0  # Table 4: "> 32s for UDP"
TRYING_DELAY_S = 0.2  # §17.2.1: send 100 Trying unless the TU answers within 200 ms


class Kind(Enum):
    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"


class InviteClientState(Enum):  # §17.1.1.2 Figure 5, RFC 6026 §7.2
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class NonInviteClientState(Enum):  # §17.1.2.2 Figure 6
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class InviteServerState(Enum):  # §17.2.1 Figure 7, RFC 6026 §7.1
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class NonInviteServerState(Enum):  # §17.2.2 Figure 8
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


State = InviteClientState | NonInviteClientState | InviteServerState | NonInviteServerState
TERMINATED: frozenset[State] = frozenset({
    InviteClientState.TERMINATED, NonInviteClientState.TERMINATED,
    InviteServerState.TERMINATED, NonInviteServerState.TERMINATED,
})


class Timer(Enum):
    """RFC 3261 Table 4 timers, RFC 6026's L and M, and the 200 ms 100-Trying timer."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    TRYING = "100 Trying"


class Trigger(Enum):
    PROVISIONAL_RECEIVED = "1xx received"
    SUCCESS_RECEIVED = "2xx received"
    FAILURE_RECEIVED = "300-699 received"
    REQUEST_RECEIVED = "request retransmission received"
    ACK_RECEIVED = "ACK received"
    PROVISIONAL_SENT = "1xx from TU"
    SUCCESS_SENT = "2xx from TU"
    FAILURE_SENT = "300-699 from TU"
    TRANSPORT_ERROR = "transport error"


# Status class -> trigger, for a response received (True) or passed down by the TU.
_STATUS_TRIGGERS = {
    (1, True): Trigger.PROVISIONAL_RECEIVED, (2, True): Trigger.SUCCESS_RECEIVED,
    (3, True): Trigger.FAILURE_RECEIVED,
    (1, False): Trigger.PROVISIONAL_SENT, (2, False): Trigger.SUCCESS_SENT,
    (3, False): Trigger.FAILURE_SENT,
}


def trigger_for_status(status: int, *, received: bool) -> Trigger:
    """3xx-6xx all count as failures: they end an INVITE transaction the same way."""
    return _STATUS_TRIGGERS[min(status // 100, 3), received]


class Action(Enum):
    PASS_RESPONSE = "pass the response to the TU"
    PASS_ACK = "pass the ACK to the TU"
    SEND_ACK = "send ACK for the non-2xx final response"
    RETRANSMIT_REQUEST = "retransmit the request"
    SEND_RESPONSE = "send the TU's response"
    SEND_TRYING = "send 100 Trying"
    RESEND_RESPONSE = "resend the last response sent"
    REPORT_TIMEOUT = "inform the TU of a timeout"
    REPORT_TRANSPORT_ERROR = "inform the TU of a transport error"


class OnReliable(Enum):
    SAME = "same value"
    ZERO = "0 s"  # Table 4: D, I, J, K
    OFF = "not started"  # A, E, G: the transport retransmits


class Backoff(Enum):
    """How a retransmission timer's interval changes when it fires."""

    DOUBLE = "2x"  # Timer A, §17.1.1.2
    DOUBLE_UP_TO_T2 = "min(2x, T2)"  # Timers E (Trying) and G, §17.1.2.2, §17.2.1
    T2 = "T2"  # Timer E in Proceeding, §17.1.2.2


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """Duration = max(min_s, t1_multiple * T1 + t4_multiple * T4) on unreliable
    transports; `on_reliable` says what happens over TCP/TLS."""

    t1_multiple: float = 0.0
    t4_multiple: float = 0.0
    min_s: float = 0.0
    on_reliable: OnReliable = OnReliable.SAME

    def duration_s(self, t1_s: float, t4_s: float, reliable: bool) -> float | None:
        """Seconds until it fires, or None when it is not started at all."""
        if reliable and self.on_reliable is OnReliable.OFF:
            return None
        if reliable and self.on_reliable is OnReliable.ZERO:
            return 0.0
        return max(self.min_s, self.t1_multiple * t1_s + self.t4_multiple * t4_s)


TIMERS: Mapping[Timer, TimerSpec] = {
    Timer.A: TimerSpec(t1_multiple=1, on_reliable=OnReliable.OFF),
    Timer.B: TimerSpec(t1_multiple=64),
    Timer.D: TimerSpec(t1_multiple=64, min_s=TIMER_D_MIN_S, on_reliable=OnReliable.ZERO),
    Timer.E: TimerSpec(t1_multiple=1, on_reliable=OnReliable.OFF),
    Timer.F: TimerSpec(t1_multiple=64),
    Timer.G: TimerSpec(t1_multiple=1, on_reliable=OnReliable.OFF),
    Timer.H: TimerSpec(t1_multiple=64),
    Timer.I: TimerSpec(t4_multiple=1, on_reliable=OnReliable.ZERO),
    Timer.J: TimerSpec(t1_multiple=64, on_reliable=OnReliable.ZERO),
    Timer.K: TimerSpec(t4_multiple=1, on_reliable=OnReliable.ZERO),
    Timer.L: TimerSpec(t1_multiple=64),  # RFC 6026 §8.7: 64*T1 on all transports
    Timer.M: TimerSpec(t1_multiple=64),  # RFC 6026 §8.4
    Timer.TRYING: TimerSpec(min_s=TRYING_DELAY_S),
}


@dataclass(frozen=True, slots=True)
class Transition:
    next: State
    actions: tuple[Action, ...] = ()
    stop: tuple[Timer, ...] = ()
    arm: tuple[Timer, ...] = ()
    # Set on a retransmission timer's own firing: re-arm it with the new interval.
    backoff: Backoff | None = None


Key = tuple[State, Trigger | Timer]
Table = Mapping[Key, Transition]

_ICS = InviteClientState
_NICS = NonInviteClientState
_ISS = InviteServerState
_NISS = NonInviteServerState
_PASS = (Action.PASS_RESPONSE,)
_TIMEOUT = (Action.REPORT_TIMEOUT,)

_RESPONSES = (Trigger.PROVISIONAL_RECEIVED, Trigger.SUCCESS_RECEIVED, Trigger.FAILURE_RECEIVED)
_REQUESTS = (Trigger.REQUEST_RECEIVED, Trigger.ACK_RECEIVED)


def _complete(table: dict[Key, Transition], states: Iterable[State],
              network_triggers: Iterable[Trigger]) -> Table:
    """Absorb every network trigger the RFC leaves unmentioned, and let a transport
    error end any live state (§17.1.4, §17.2.4: inform the TU)."""
    triggers = tuple(network_triggers)
    for state in states:
        if state in TERMINATED:
            continue
        terminated = next(s for s in TERMINATED if type(s) is type(state))
        table.setdefault((state, Trigger.TRANSPORT_ERROR),
                         Transition(terminated, (Action.REPORT_TRANSPORT_ERROR,)))
        for trigger in triggers:
            table.setdefault((state, trigger), Transition(state))
    return table


INVITE_CLIENT: Table = _complete({
    # §17.1.1.2; RFC 6026 §8.4 replaces "2xx: Terminated" with "2xx: Accepted".
    (_ICS.CALLING, Timer.A): Transition(_ICS.CALLING, (Action.RETRANSMIT_REQUEST,),
                                        backoff=Backoff.DOUBLE),
    (_ICS.CALLING, Timer.B): Transition(_ICS.TERMINATED, _TIMEOUT),
    (_ICS.CALLING, Trigger.PROVISIONAL_RECEIVED): Transition(
        _ICS.PROCEEDING, _PASS, stop=(Timer.A, Timer.B)),
    (_ICS.CALLING, Trigger.SUCCESS_RECEIVED): Transition(
        _ICS.ACCEPTED, _PASS, stop=(Timer.A, Timer.B), arm=(Timer.M,)),
    (_ICS.CALLING, Trigger.FAILURE_RECEIVED): Transition(
        _ICS.COMPLETED, (*_PASS, Action.SEND_ACK), stop=(Timer.A, Timer.B), arm=(Timer.D,)),
    (_ICS.PROCEEDING, Trigger.PROVISIONAL_RECEIVED): Transition(_ICS.PROCEEDING, _PASS),
    (_ICS.PROCEEDING, Trigger.SUCCESS_RECEIVED): Transition(
        _ICS.ACCEPTED, _PASS, arm=(Timer.M,)),
    (_ICS.PROCEEDING, Trigger.FAILURE_RECEIVED): Transition(
        _ICS.COMPLETED, (*_PASS, Action.SEND_ACK), arm=(Timer.D,)),
    # RFC 6026 §8.4: every 2xx goes up (forked answers, retransmissions); the TU ACKs.
    (_ICS.ACCEPTED, Trigger.SUCCESS_RECEIVED): Transition(_ICS.ACCEPTED, _PASS),
    (_ICS.ACCEPTED, Timer.M): Transition(_ICS.TERMINATED),
    # A retransmitted final is answered with the ACK again, never passed up; a 2xx
    # (another fork answered) is passed up so the TU can ACK and BYE it, never lost.
    (_ICS.COMPLETED, Trigger.SUCCESS_RECEIVED): Transition(_ICS.COMPLETED, _PASS),
    (_ICS.COMPLETED, Trigger.FAILURE_RECEIVED): Transition(
        _ICS.COMPLETED, (Action.SEND_ACK,)),
    (_ICS.COMPLETED, Timer.D): Transition(_ICS.TERMINATED),
}, _ICS, _RESPONSES)

NON_INVITE_CLIENT: Table = _complete({
    # §17.1.2.2
    (_NICS.TRYING, Timer.E): Transition(_NICS.TRYING, (Action.RETRANSMIT_REQUEST,),
                                        backoff=Backoff.DOUBLE_UP_TO_T2),
    (_NICS.TRYING, Timer.F): Transition(_NICS.TERMINATED, _TIMEOUT),
    (_NICS.TRYING, Trigger.PROVISIONAL_RECEIVED): Transition(_NICS.PROCEEDING, _PASS),
    (_NICS.TRYING, Trigger.SUCCESS_RECEIVED): Transition(
        _NICS.COMPLETED, _PASS, stop=(Timer.E, Timer.F), arm=(Timer.K,)),
    (_NICS.TRYING, Trigger.FAILURE_RECEIVED): Transition(
        _NICS.COMPLETED, _PASS, stop=(Timer.E, Timer.F), arm=(Timer.K,)),
    (_NICS.PROCEEDING, Timer.E): Transition(_NICS.PROCEEDING, (Action.RETRANSMIT_REQUEST,),
                                            backoff=Backoff.T2),
    (_NICS.PROCEEDING, Timer.F): Transition(_NICS.TERMINATED, _TIMEOUT),
    (_NICS.PROCEEDING, Trigger.PROVISIONAL_RECEIVED): Transition(_NICS.PROCEEDING, _PASS),
    (_NICS.PROCEEDING, Trigger.SUCCESS_RECEIVED): Transition(
        _NICS.COMPLETED, _PASS, stop=(Timer.E, Timer.F), arm=(Timer.K,)),
    (_NICS.PROCEEDING, Trigger.FAILURE_RECEIVED): Transition(
        _NICS.COMPLETED, _PASS, stop=(Timer.E, Timer.F), arm=(Timer.K,)),
    (_NICS.COMPLETED, Timer.K): Transition(_NICS.TERMINATED),
}, _NICS, _RESPONSES)

INVITE_SERVER: Table = _complete({
    # §17.2.1; RFC 6026 §8.5-8.7 replace "2xx from TU: Terminated" with "Accepted".
    (_ISS.PROCEEDING, Timer.TRYING): Transition(_ISS.PROCEEDING, (Action.SEND_TRYING,)),
    (_ISS.PROCEEDING, Trigger.REQUEST_RECEIVED): Transition(
        _ISS.PROCEEDING, (Action.RESEND_RESPONSE,)),
    (_ISS.PROCEEDING, Trigger.PROVISIONAL_SENT): Transition(
        _ISS.PROCEEDING, (Action.SEND_RESPONSE,), stop=(Timer.TRYING,)),
    (_ISS.PROCEEDING, Trigger.SUCCESS_SENT): Transition(
        _ISS.ACCEPTED, (Action.SEND_RESPONSE,), stop=(Timer.TRYING,), arm=(Timer.L,)),
    (_ISS.PROCEEDING, Trigger.FAILURE_SENT): Transition(
        _ISS.COMPLETED, (Action.SEND_RESPONSE,), stop=(Timer.TRYING,),
        arm=(Timer.G, Timer.H)),
    # The TU retransmits its 2xx itself (§13.3.1.4); INVITE retransmissions are absorbed
    # and an ACK that matches (a UAC reusing the branch) belongs to the TU.
    (_ISS.ACCEPTED, Trigger.SUCCESS_SENT): Transition(_ISS.ACCEPTED, (Action.SEND_RESPONSE,)),
    (_ISS.ACCEPTED, Trigger.ACK_RECEIVED): Transition(_ISS.ACCEPTED, (Action.PASS_ACK,)),
    (_ISS.ACCEPTED, Timer.L): Transition(_ISS.TERMINATED),
    (_ISS.COMPLETED, Trigger.REQUEST_RECEIVED): Transition(
        _ISS.COMPLETED, (Action.RESEND_RESPONSE,)),
    (_ISS.COMPLETED, Timer.G): Transition(_ISS.COMPLETED, (Action.RESEND_RESPONSE,),
                                          backoff=Backoff.DOUBLE_UP_TO_T2),
    (_ISS.COMPLETED, Timer.H): Transition(_ISS.TERMINATED, _TIMEOUT),
    (_ISS.COMPLETED, Trigger.ACK_RECEIVED): Transition(
        _ISS.CONFIRMED, stop=(Timer.G, Timer.H), arm=(Timer.I,)),
    (_ISS.CONFIRMED, Timer.I): Transition(_ISS.TERMINATED),
}, _ISS, _REQUESTS)

NON_INVITE_SERVER: Table = _complete({
    # §17.2.2; retransmissions in Trying are absorbed (nothing to resend yet).
    (_NISS.TRYING, Trigger.PROVISIONAL_SENT): Transition(
        _NISS.PROCEEDING, (Action.SEND_RESPONSE,)),
    (_NISS.TRYING, Trigger.SUCCESS_SENT): Transition(
        _NISS.COMPLETED, (Action.SEND_RESPONSE,), arm=(Timer.J,)),
    (_NISS.TRYING, Trigger.FAILURE_SENT): Transition(
        _NISS.COMPLETED, (Action.SEND_RESPONSE,), arm=(Timer.J,)),
    (_NISS.PROCEEDING, Trigger.REQUEST_RECEIVED): Transition(
        _NISS.PROCEEDING, (Action.RESEND_RESPONSE,)),
    (_NISS.PROCEEDING, Trigger.PROVISIONAL_SENT): Transition(
        _NISS.PROCEEDING, (Action.SEND_RESPONSE,)),
    (_NISS.PROCEEDING, Trigger.SUCCESS_SENT): Transition(
        _NISS.COMPLETED, (Action.SEND_RESPONSE,), arm=(Timer.J,)),
    (_NISS.PROCEEDING, Trigger.FAILURE_SENT): Transition(
        _NISS.COMPLETED, (Action.SEND_RESPONSE,), arm=(Timer.J,)),
    (_NISS.COMPLETED, Trigger.REQUEST_RECEIVED): Transition(
        _NISS.COMPLETED, (Action.RESEND_RESPONSE,)),
    (_NISS.COMPLETED, Timer.J): Transition(_NISS.TERMINATED),
}, _NISS, (Trigger.REQUEST_RECEIVED,))

TABLES: Mapping[Kind, Table] = {
    Kind.INVITE_CLIENT: INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    Kind.INVITE_SERVER: INVITE_SERVER,
    Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
}

# The state a new transaction starts in and the timers it starts with.
INITIAL: Mapping[Kind, tuple[State, tuple[Timer, ...]]] = {
    Kind.INVITE_CLIENT: (_ICS.CALLING, (Timer.A, Timer.B)),  # §17.1.1.2
    Kind.NON_INVITE_CLIENT: (_NICS.TRYING, (Timer.E, Timer.F)),  # §17.1.2.2
    Kind.INVITE_SERVER: (_ISS.PROCEEDING, (Timer.TRYING,)),  # §17.2.1
    Kind.NON_INVITE_SERVER: (_NISS.TRYING, ()),  # §17.2.2
}


# --- the transactions these tables drive ---------------------------------------------

class Transaction:
    """One transaction. The layer owns and mutates it; the TU reads it and hands it
    back to `send_response`. `peer` is where a client sends its request, or where a
    server's request came from."""

    __slots__ = ("id", "internal", "kind", "last_response", "peer", "request", "state",
                 "timers")

    def __init__(self, kind: Kind, request: Request, peer: Peer, txn_id: int) -> None:
        self.kind = kind
        self.request = request
        self.peer = peer
        self.id = txn_id
        self.state: State = INITIAL[kind][0]
        self.last_response: Response | None = None
        self.timers: dict[Timer, ArmedTimer] = {}
        # Created by the layer itself (a 482 for a merged request); the TU never saw it.
        self.internal = False

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def branch(self) -> str | None:
        return self.request.top_via.branch

    @property
    def terminated(self) -> bool:
        return self.state in TERMINATED

    @property
    def armed(self) -> dict[Timer, float]:
        """Deadline of each running timer."""
        return {timer: armed.deadline for timer, armed in self.timers.items()}

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} #{self.id} {self.method} {self.branch} "
                f"{self.state.value}>")


class ClientTransaction(Transaction):
    __slots__ = ("key", "request_bytes")

    def __init__(self, kind: Kind, request: Request, peer: Peer, txn_id: int,
                 key: tuple[str, str]) -> None:
        super().__init__(kind, request, peer, txn_id)
        self.key = key
        self.request_bytes = request.serialize()


class ServerTransaction(Transaction):
    __slots__ = ("key", "last_response_bytes", "merge_key", "response_peer")

    def __init__(self, kind: Kind, request: Request, peer: Peer, txn_id: int,
                 key: Hashable) -> None:
        super().__init__(kind, request, peer, txn_id)
        self.key = key
        self.response_peer = response_peer(request.top_via, peer.transport,
                                            peer.connection_id)
        self.last_response_bytes: bytes | None = None
        self.merge_key: tuple[str, str, int, str] | None = None


class ArmedTimer(NamedTuple):
    """A running timer; `token` tells a live heap entry from a stale one."""

    deadline: float
    duration_s: float
    token: int



def apply(kind: Kind, state: State, trigger: Trigger | Timer) -> Transition:
    """The transition for `trigger` in `state`; LocalProtocolError when there is none."""
    try:
        return TABLES[kind][state, trigger]
    except KeyError:
        what = f"timer {trigger.value}" if isinstance(trigger, Timer) else trigger.value
        raise LocalProtocolError(
            f"{what} is not allowed in the {kind.value} transaction's "
            f"{state.value} state") from None


_BACKOFF: Mapping[Backoff, Callable[[float, float], float]] = {
    Backoff.DOUBLE: lambda interval_s, t2_s: 2 * interval_s,
    Backoff.DOUBLE_UP_TO_T2: lambda interval_s, t2_s: min(2 * interval_s, t2_s),
    Backoff.T2: lambda interval_s, t2_s: t2_s,
}


def next_interval_s(backoff: Backoff, interval_s: float, t2_s: float) -> float:
    """The retransmission interval after one firing (§17.1.1.2, §17.1.2.2, §17.2.1)."""
    return _BACKOFF[backoff](interval_s, t2_s)
