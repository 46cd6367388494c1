"""INVITE sessions (RFC 3261 §13-§15, RFC 3264 glue), sans-I/O: the UAC side of one leg.

A session sits on a `TransactionLayer` it shares with others. The owner routes the
layer's events for this call to `handle(event, now)` (by Call-ID and tags), calls
`handle_timer(now)` at `next_deadline()`, and reads what happened from `events()`:
past-tense facts (Ringing, EarlyMedia, Answered, Rejected, Cancelled, ByeReceived, Held,
Resumed, Ended). SDP bodies travel as bytes; negotiation (offer_answer) is the owner's.

`_InviteSession` holds what both sides do once a dialog exists: BYE either way,
re-INVITE either way (hold/resume), 2xx retransmission of an answered INVITE until its
ACK (§13.3.1.4), and the 481/408 rule that ends a dialog (§12.2.1.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.sip.dialog import Dialog, DialogError, DialogState
from switch.sip.errors import LocalProtocolError
from switch.sip.headers import NameAddr, Via
from switch.sip.message import Headers, Request, Response, build_response
from switch.sip.peer import Peer
from switch.sip.sdp import SessionDescription
from switch.sip.transaction import (
    AckReceived,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    StrayResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
)
from switch.sip.transaction_states import T1_S, T2_S
from switch.sip.uri import parse_uri

__all__ = [
    "Answered", "ByeReceived", "Cancelled", "EarlyMedia", "Ended", "Held", "InviteClient",
    "InviteEvent", "Rejected", "Resumed", "Ringing",
]

SDP_TYPE = "application/sdp"
ACK_TIMEOUT_T1 = 64  # §13.3.1.4: stop retransmitting a 2xx after 64*T1 and end the call


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
class Rejected:
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    pass


@dataclass(frozen=True, slots=True)
class ByeReceived:
    pass


@dataclass(frozen=True, slots=True)
class Held:
    """The peer's re-INVITE put us on hold (its offer is sendonly, inactive or 0.0.0.0)."""

    sdp: bytes


@dataclass(frozen=True, slots=True)
class Resumed:
    sdp: bytes


@dataclass(frozen=True, slots=True)
class Ended:
    cause: str  # "bye-sent", "bye-received", "no-ack", "481", "408", "transport"


InviteEvent = (Ringing | EarlyMedia | Answered | Rejected | Cancelled | ByeReceived | Held
               | Resumed | Ended)


def _sdp_headers(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", SDP_TYPE)] if body else []


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


@dataclass(slots=True)
class _Retransmission:
    """A 2xx to an INVITE we answered, resent until its ACK (§13.3.1.4)."""

    transaction: ServerTransaction
    response: Response
    due: float
    interval_s: float
    give_up: float


class _InviteSession:
    """Dialog-level behaviour shared by both sides."""

    def __init__(self, layer: TransactionLayer, peer: Peer, *, via_host: str, via_port: int,
                 t1_s: float = T1_S, t2_s: float = T2_S) -> None:
        self.layer = layer
        self.peer = peer
        self.via_host, self.via_port = via_host, via_port
        self.t1_s, self.t2_s = t1_s, t2_s
        self.dialog: Dialog | None = None
        self.ended = False
        self._events: list[InviteEvent] = []
        self._pending_2xx: dict[int, _Retransmission] = {}  # by INVITE CSeq number
        # ACKs we sent for 2xx responses, by INVITE CSeq number: a retransmitted 2xx
        # (its transaction may be gone, RFC 6026) gets the same ACK again (§13.2.2.4).
        self._acks: dict[int, Request] = {}
        self._reinvite: ClientTransaction | None = None
        self._bye: ClientTransaction | None = None
        self._reinvite_server: ServerTransaction | None = None

    # -- outputs

    def events(self) -> list[InviteEvent]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        return min((r.due for r in self._pending_2xx.values()), default=None)

    def handle_timer(self, now: float) -> None:
        for seq, pending in list(self._pending_2xx.items()):
            if pending.due > now:
                continue
            if now >= pending.give_up:
                # §13.3.1.4: no ACK within 64*T1: confirm the dialog, then end it with BYE.
                del self._pending_2xx[seq]
                self._send_bye(now, cause="no-ack")
                continue
            if not pending.transaction.terminated:
                self.layer.send_response(pending.transaction, pending.response, now)
            pending.interval_s = min(pending.interval_s * 2, self.t2_s)
            pending.due = min(now + pending.interval_s, pending.give_up)

    # -- commands

    def bye(self, now: float) -> None:
        """Hang up a confirmed call."""
        if self.dialog is None or self.dialog.state is not DialogState.CONFIRMED or self.ended:
            raise LocalProtocolError("no confirmed call to hang up")
        self._send_bye(now, cause="bye-sent")

    def reinvite(self, sdp: bytes, now: float) -> None:
        """Send a new offer in the dialog (hold: a sendonly offer; resume: sendrecv)."""
        dialog = self._confirmed()
        if self._reinvite is not None or self._reinvite_server is not None:
            raise LocalProtocolError("an INVITE is already in progress in this dialog")
        request = dialog.create_request("INVITE", via=self._via(), headers=_sdp_headers(sdp),
                                        body=sdp)
        self._reinvite = self.layer.send_request(request, self.peer, now)

    def accept_reinvite(self, sdp: bytes, now: float) -> None:
        """Answer the peer's re-INVITE (after Held/Resumed) with our SDP answer."""
        txn = self._reinvite_server
        if txn is None:
            raise LocalProtocolError("no re-INVITE to answer")
        self._reinvite_server = None
        self._send_2xx(txn, sdp, now)

    # -- inputs

    def handle(self, event: TransactionEvent, now: float) -> None:
        if isinstance(event, ResponseReceived):
            self._on_response(event.transaction, event.response, now)
        elif isinstance(event, StrayResponseReceived):
            self._on_stray(event.response)
        elif isinstance(event, RequestReceived):
            self._on_request(event.transaction, event.request, now)
        elif isinstance(event, AckReceived):
            self._pending_2xx.pop(event.request.cseq.seq, None)
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            self._on_failure(event.transaction, "408" if isinstance(
                event, TransactionTimedOut) else "transport", now)

    def _on_response(self, txn: ClientTransaction, response: Response, now: float) -> None:
        if txn is self._bye:
            if response.status >= 200:
                self._end("bye-sent")
        elif txn is self._reinvite:
            self._on_reinvite_response(response)
        elif 200 <= response.status < 300 and response.cseq.method == "INVITE":
            # A retransmitted 2xx to a re-INVITE we already ACKed; its transaction is
            # still Accepted (RFC 6026 §7.2) and passes it up: ACK it again.
            self._resend_ack(response)

    def _on_reinvite_response(self, response: Response) -> None:
        assert self.dialog is not None
        if response.status < 200:
            return
        self._reinvite = None
        self.dialog.receive_response(response)
        if 200 <= response.status < 300:
            self._send_ack(response)
        elif response.status in (408, 481):
            self._send_bye_quietly()
            self._end(str(response.status))

    def _on_stray(self, response: Response) -> None:
        # A 2xx retransmission whose INVITE transaction is gone: ACK it again (RFC 6026).
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            self._resend_ack(response)

    def _resend_ack(self, response: Response) -> None:
        ack = self._acks.get(response.cseq.seq)
        if ack is not None and self.dialog is not None \
                and response.to.tag == self.dialog.id.remote_tag:
            self.layer.send_ack(ack, self.peer)

    def _on_request(self, txn: ServerTransaction, request: Request, now: float) -> None:
        dialog = self.dialog
        if dialog is None or self.ended:
            self.layer.send_response(txn, build_response(request, 481), now)
            return
        try:
            dialog.receive_request(request)
        except DialogError as exc:
            self.layer.send_response(txn, build_response(request, exc.status), now)
            return
        if request.method == "BYE":
            self.layer.send_response(txn, build_response(request, 200), now)
            self._pending_2xx.clear()
            self._events.append(ByeReceived())
            dialog.terminate()
            self._end("bye-received")
        elif request.method == "INVITE":
            if self._reinvite is not None or self._reinvite_server is not None:
                # §14.2: glare; the peer retries after a random pause.
                response = build_response(request, 491)
                self.layer.send_response(txn, response, now)
                return
            self._reinvite_server = txn
            hold = is_hold_offer(request.body)
            self._events.append(Held(request.body) if hold else Resumed(request.body))
        else:
            self.layer.send_response(txn, build_response(request, 501), now)

    def _on_failure(self, txn: object, cause: str, now: float) -> None:
        if txn is self._bye:
            self._end("bye-sent")
        elif txn is self._reinvite:
            self._reinvite = None
            self._send_bye_quietly()
            self._end(cause)

    # -- helpers

    def _confirmed(self) -> Dialog:
        if self.dialog is None or self.dialog.state is not DialogState.CONFIRMED or self.ended:
            raise LocalProtocolError("no confirmed dialog")
        return self.dialog

    def _via(self) -> Via:
        return Via.parse(f"SIP/2.0/{self.peer.transport} {self.via_host}:{self.via_port}"
                         f";branch={self.layer.new_branch()};rport")

    def _send_ack(self, response: Response) -> Request:
        assert self.dialog is not None
        ack = self.dialog.create_ack(response.cseq.seq, self._via())
        self.layer.send_ack(ack, self.peer)
        self._acks[response.cseq.seq] = ack
        return ack

    def _send_2xx(self, txn: ServerTransaction, sdp: bytes, now: float,
                  contact: NameAddr | None = None) -> Response:
        assert self.dialog is not None
        response = build_response(txn.request, 200, to_tag=self.dialog.id.local_tag, body=sdp)
        for name, value in _sdp_headers(sdp):
            response.headers.add(name, value)
        local_contact = contact or self.dialog.local_contact
        if local_contact is not None:
            response.headers.add("Contact", local_contact.serialize())
        self.layer.send_response(txn, response, now)
        self._pending_2xx[txn.request.cseq.seq] = _Retransmission(
            txn, response, now + self.t1_s, self.t1_s, now + ACK_TIMEOUT_T1 * self.t1_s)
        return response

    def _send_bye(self, now: float, cause: str) -> None:
        assert self.dialog is not None
        request = self.dialog.create_request("BYE", via=self._via())
        self._bye = self.layer.send_request(request, self.peer, now)
        if cause != "bye-sent":
            self._end(cause)

    def _send_bye_quietly(self) -> None:
        """After 481/408 the dialog is gone (§12.2.1.2): nothing more to send."""
        if self.dialog is not None:
            self.dialog.terminate()

    def _end(self, cause: str) -> None:
        if not self.ended:
            self.ended = True
            self._events.append(Ended(cause))


class InviteClient(_InviteSession):
    """The UAC side of one call leg: sends the INVITE with our SDP offer."""

    def __init__(self, layer: TransactionLayer, peer: Peer, *, request_uri: str,
                 from_: NameAddr, to: NameAddr, contact: NameAddr, call_id: str,
                 offer: bytes, via_host: str, via_port: int, now: float,
                 extra_headers: list[tuple[str, str]] | None = None,
                 t1_s: float = T1_S, t2_s: float = T2_S) -> None:
        super().__init__(layer, peer, via_host=via_host, via_port=via_port, t1_s=t1_s,
                         t2_s=t2_s)
        if from_.tag is None:
            raise LocalProtocolError("the From of an INVITE needs our tag")
        headers = Headers()
        headers.add("Via", self._via().serialize())
        headers.add("Max-Forwards", "70")
        headers.add("From", from_.serialize())
        headers.add("To", to.serialize())
        headers.add("Call-ID", call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", contact.serialize())
        for name, value in [*(extra_headers or []), *_sdp_headers(offer)]:
            headers.add(name, value)
        self.invite = Request("INVITE", parse_uri(request_uri), headers, offer)
        self.transaction = layer.send_request(self.invite, peer, now)
        self.early: dict[str | None, Dialog] = {}
        self.answered = False
        self.final_status: int | None = None
        self._provisional_seen = False
        self._cancel_pending = False
        self._cancelled = False

    def cancel(self, now: float) -> None:
        """Give up before the answer (§9.1): sent once a provisional response came."""
        if self.final_status is not None or self._cancelled:
            return
        self._cancelled = True
        if self._provisional_seen:
            self._send_cancel(now)
        else:
            self._cancel_pending = True

    def _send_cancel(self, now: float) -> None:
        invite = self.invite
        headers = Headers()
        headers.add("Via", invite.headers.get_all("Via")[0])
        headers.add("Max-Forwards", "70")
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        for name in ("From", "To", "Call-ID"):
            value = invite.headers.get(name)
            assert value is not None
            headers.add(name, value)
        headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
        self.layer.send_request(Request("CANCEL", invite.uri, headers), self.peer, now)

    def _on_response(self, txn: ClientTransaction, response: Response, now: float) -> None:
        if txn is not self.transaction:
            if response.cseq.method != "CANCEL":
                super()._on_response(txn, response, now)
            return
        status = response.status
        if status < 200:
            self._on_provisional(response, now)
        elif status < 300:
            self._on_2xx(response, now)
        else:
            self._on_failure_response(response)

    def _on_provisional(self, response: Response, now: float) -> None:
        self._provisional_seen = True
        if self._cancel_pending:
            self._cancel_pending = False
            self._send_cancel(now)
        if response.status > 100 and response.to.tag is not None \
                and response.to.tag not in self.early and response.contacts:
            self.early[response.to.tag] = Dialog.from_uac(self.invite, response)
        if self._cancelled or response.status == 100:
            return
        if response.body:
            self._events.append(EarlyMedia(response.body))
        else:
            self._events.append(Ringing(response.status))

    def _on_2xx(self, response: Response, now: float) -> None:
        if self.dialog is not None:
            self._resend_ack(response)  # a retransmission (or another fork's 2xx)
            return
        self.final_status = response.status
        dialog = self.early.get(response.to.tag)
        if dialog is None:
            dialog = Dialog.from_uac(self.invite, response)
        else:
            dialog.receive_response(response)
        self.dialog = dialog
        self._send_ack(response)
        if self._cancelled:
            # §9.1 race: the answer crossed our CANCEL; take the call down at once.
            self._send_bye(now, cause="bye-sent")
            self._events.append(Cancelled())
            return
        self.answered = True
        self._events.append(Answered(response.body))

    def _on_failure_response(self, response: Response) -> None:
        if self.final_status is not None:
            return
        self.final_status = response.status
        for dialog in self.early.values():
            dialog.terminate()
        if self._cancelled and response.status == 487:
            self._events.append(Cancelled())
        else:
            self._events.append(Rejected(response.status, response.reason))
        self._end(str(response.status))

    def _on_failure(self, txn: object, cause: str, now: float) -> None:
        if txn is self.transaction and self.final_status is None:
            self.final_status = 408
            self._events.append(Rejected(408, "Request Timeout"))
            self._end(cause)
            return
        super()._on_failure(txn, cause, now)

