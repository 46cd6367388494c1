"""What INVITE sessions tell their owner (past-tense events) and the small helpers
both sides share to build their messages. See invite_session for the dialog rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from switch.sip.errors import LocalProtocolError
from switch.sip.headers import canonical_name
from switch.sip.message import Message, Request
from switch.sip.sdp import SessionDescription
from switch.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
)

__all__ = [
    "ACK_TIMEOUT_T1", "SDP_TYPE", "SESSION_HEADERS", "AnswerReceived", "Answered",
    "ByeReceived", "Cancelled",
    "DialogRequest", "DialogResponse", "EarlyMedia", "Ended", "Held", "InviteEvent",
    "ReinviteAnswered", "ReinviteFailed", "Rejected", "Resumed", "Ringing", "is_hold_offer",
    "reason_header",
]

SDP_TYPE = "application/sdp"
ACK_TIMEOUT_T1 = 64  # §13.3.1.4: stop retransmitting a 2xx after 64*T1 and end the call

# Headers the session writes itself; an owner passing them in `headers=` has a bug.
SESSION_HEADERS = frozenset({"Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards",
                             "Content-Length"})
# Methods with their own commands and events; send_request() refuses them.
_OWN_METHODS = frozenset({"INVITE", "ACK", "CANCEL", "BYE"})


@dataclass(frozen=True, slots=True)
class Ringing:
    status: int  # 180 or 183 without SDP


@dataclass(frozen=True, slots=True)
class EarlyMedia:
    sdp: bytes


@dataclass(frozen=True, slots=True)
class Answered:
    sdp: bytes


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    """The caller's answer to the offer we made because its INVITE had none (a late
    offer): from the ACK of our 2xx (RFC 3261 §13.2.1) or the PRACK of a reliable
    provisional response (RFC 3262 §5). Empty when it carried no SDP at all."""

    sdp: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    status: int
    reason: str
    reason_header: str | None = None  # the response's Reason values (RFC 3326), joined


@dataclass(frozen=True, slots=True)
class Cancelled:
    reason_header: str | None = None  # the CANCEL's (UAS) or the 487's (UAC) Reason


@dataclass(frozen=True, slots=True)
class ByeReceived:
    reason_header: str | None = None  # e.g. 'Q.850;cause=16;text="Normal call clearing"'


@dataclass(frozen=True, slots=True)
class Held:
    """The peer's re-INVITE put us on hold (its offer is sendonly, inactive or 0.0.0.0)."""

    sdp: bytes


@dataclass(frozen=True, slots=True)
class Resumed:
    sdp: bytes


@dataclass(frozen=True, slots=True)
class ReinviteAnswered:
    """The 2xx to our re-INVITE: `sdp` is the peer's answer."""

    sdp: bytes


@dataclass(frozen=True, slots=True)
class ReinviteFailed:
    """A non-2xx final answer to our re-INVITE; the session goes on as before (§14.1).
    408 and 481 end the call instead (Ended)."""

    status: int


@dataclass(frozen=True, slots=True)
class DialogRequest:
    """An in-dialog request the session leaves to the owner (REFER, NOTIFY, INFO, OPTIONS,
    UPDATE that is not a session refresh ...): answer it with `respond(transaction, ...)`."""

    transaction: ServerTransaction
    request: Request


@dataclass(frozen=True, slots=True)
class DialogResponse:
    """The final answer to a `send_request`; a timeout or transport failure is 408."""

    method: str
    status: int
    transaction: ClientTransaction


@dataclass(frozen=True, slots=True)
class Ended:
    # "bye-sent", "bye-received", "no-ack", "481", "408", "transport", "cancelled",
    # "session-expired" (RFC 4028 §10), or the final status of a rejected INVITE
    cause: str


InviteEvent = (Ringing | EarlyMedia | Answered | AnswerReceived | Rejected | Cancelled
               | ByeReceived | Held | Resumed | ReinviteAnswered | ReinviteFailed
               | DialogRequest | DialogResponse | Ended)


def _sdp_headers(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", SDP_TYPE)] if body else []


def _add_headers(message: Message, headers: Sequence[tuple[str, str]],
                 forbidden: frozenset[str] = SESSION_HEADERS) -> None:
    for name, value in headers:
        if canonical_name(name) in forbidden:
            raise LocalProtocolError(f"the session sets the {name} header itself")
        message.headers.add(name, value)


def reason_header(message: Message) -> str | None:
    """Every Reason value of a message (RFC 3326), comma-joined; None without any."""
    return ", ".join(message.headers.get_all("Reason")) or None


def is_hold_offer(sdp: bytes) -> bool:
    """RFC 3264 §8.4 (and RFC 2543's c=0.0.0.0): the offerer stops receiving."""
    session = SessionDescription.parse(sdp)
    for media in session.media:
        if media.port == 0:
            continue
        connection = media.connection or session.connection
        if connection is not None and connection.is_hold:
            return True
        return not session.direction_for(media).receives
    return False
