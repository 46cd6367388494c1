"""Reliable provisional responses (RFC 3262): the rules, without any I/O.

UAS side, `ReliableProvisionals`: numbers each reliable 1xx of one INVITE (RSeq,
§3, §7.1), sends one at a time (the next waits for the PRACK of the one before), says
when to retransmit (from T1, doubling, no cap) and when to give up (64*T1: the INVITE
is then rejected with a 5xx), matches PRACKs by their RAck (§7.2) and tells whether a
2xx must still wait (a reliable 1xx with SDP not yet PRACKed, §3).

UAC side, `ProvisionalSequence`: per early dialog, which reliable 1xx to PRACK: the
first, then only RSeq + 1 each time; retransmissions and responses out of order are
not PRACKed and not processed (§4).

The sessions (switch.sip.invite_server, invite_client) send and receive the messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.sip.errors import LocalProtocolError
from switch.sip.headers import HeaderError, split_list
from switch.sip.message import Message, Response

__all__ = [
    "MAX_FIRST_RSEQ", "OPTION_100REL", "PRACK_TIMEOUT_T1", "ProvisionalSequence", "RAck",
    "ReliableProvisionals", "lists_option", "rseq_of",
]

OPTION_100REL = "100rel"  # RFC 3262 §3: the option tag in Require and Supported
MAX_FIRST_RSEQ = 2**31 - 1  # RFC 3262 §3: the first RSeq is 1..2**31-1
MAX_RSEQ = 2**32 - 1  # RFC 3262 §7.1: RSeq is 1..2**32-1 and never wraps
PRACK_TIMEOUT_T1 = 64  # RFC 3262 §3: no PRACK after 64*T1: reject the INVITE with a 5xx
PRACK_TIMEOUT_STATUS = 504  # our 5xx for that: Server Time-out


def lists_option(message: Message, header: str, option: str = OPTION_100REL) -> bool:
    """`option` is among the tags of `header` (Require, Supported), case-insensitively."""
    return any(tag.lower() == option for value in message.headers.get_all(header)
               for tag in split_list(value))


def rseq_of(response: Response) -> int | None:
    """The RSeq of a reliable provisional response (RFC 3262 §7.1), None when the
    response is not one (100, no Require: 100rel, or an unreadable RSeq)."""
    if not 101 <= response.status <= 199 or not lists_option(response, "Require"):
        return None
    value = (response.headers.get("RSeq") or "").strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_RSEQ:
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class RAck:
    """RAck: <RSeq> <CSeq number> <method> (RFC 3262 §7.2)."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, value: str) -> RAck:
        parts = value.split()
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
            raise HeaderError(f"RAck must be '<rseq> <cseq> <method>', got {value!r}")
        return cls(int(parts[0]), int(parts[1]), parts[2])

    def serialize(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"

    def __repr__(self) -> str:
        return f"<RAck {self.serialize()}>"


@dataclass(slots=True)
class _Unacked:
    response: Response
    due: float
    interval_s: float
    give_up: float


class ReliableProvisionals:
    """The reliable provisional responses of one INVITE we answer (UAS, RFC 3262 §3)."""

    def __init__(self, invite_cseq: int, first_rseq: int, t1_s: float) -> None:
        if not 1 <= first_rseq <= MAX_FIRST_RSEQ:
            raise LocalProtocolError(f"the first RSeq must be 1-{MAX_FIRST_RSEQ}, "
                                     f"got {first_rseq}")
        self.invite_cseq = invite_cseq
        self.t1_s = t1_s
        self._next_rseq = first_rseq
        self._unacked: _Unacked | None = None
        self._waiting: list[Response] = []  # behind the unacknowledged one

    def send(self, response: Response, now: float) -> Response | None:
        """Number `response` (Require: 100rel, RSeq) and return it if it may go now;
        None when it waits for the PRACK of the one before (§3)."""
        response.headers.add("Require", OPTION_100REL)
        if self._unacked is not None:
            self._waiting.append(response)
            return None
        return self._start(response, now)

    def _start(self, response: Response, now: float) -> Response:
        if self._next_rseq > MAX_RSEQ:
            raise LocalProtocolError("RSeq exhausted")  # §7.1: it never wraps
        response.headers.set("RSeq", str(self._next_rseq))
        self._next_rseq += 1
        self._unacked = _Unacked(response, now + self.t1_s, self.t1_s,
                                 now + PRACK_TIMEOUT_T1 * self.t1_s)
        return response

    def prack(self, rack: RAck, now: float) -> tuple[Response | None, Response | None]:
        """A PRACK arrived: (the response it acknowledges, or None when it matches
        none and is answered 481 (§3); the next response to send now, if any)."""
        unacked = self._unacked
        if unacked is None or rack.method != "INVITE" or rack.cseq != self.invite_cseq \
                or str(rack.rseq) != unacked.response.headers.get("RSeq"):
            return None, None
        self._unacked = None
        following = self._start(self._waiting.pop(0), now) if self._waiting else None
        return unacked.response, following

    @property
    def holds_2xx(self) -> bool:
        """A reliable 1xx with SDP is still unacknowledged (sent or waiting): the 2xx
        must wait for its PRACK (§3)."""
        pending = [*([self._unacked.response] if self._unacked else []), *self._waiting]
        return any(response.body for response in pending)

    def next_deadline(self) -> float | None:
        return self._unacked.due if self._unacked is not None else None

    def expired(self, now: float) -> bool:
        """64*T1 passed without the PRACK (§3): time to reject the INVITE."""
        return self._unacked is not None and now >= self._unacked.give_up

    def retransmission(self, now: float) -> Response | None:
        """The unacknowledged response when it is due again at `now`."""
        unacked = self._unacked
        if unacked is None or unacked.due > now:
            return None
        unacked.interval_s *= 2  # §3: from T1, doubling, with no T2 cap
        unacked.due = min(now + unacked.interval_s, unacked.give_up)
        return unacked.response

    def stop(self) -> None:
        """The INVITE got its final answer: nothing is retransmitted any more."""
        self._unacked, self._waiting = None, []


class ProvisionalSequence:
    """Which reliable provisional responses of one early dialog to PRACK (RFC 3262 §4)."""

    def __init__(self) -> None:
        self.last_rseq: int | None = None

    def accept(self, rseq: int) -> bool:
        """True for the next one in order (PRACK it and process it); False for a
        retransmission or one out of order (drop it)."""
        if self.last_rseq is not None and rseq != self.last_rseq + 1:
            return False
        self.last_rseq = rseq
        return True
