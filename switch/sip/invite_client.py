"""INVITE sessions, UAC side (RFC 3261 §13-§15, RFC 3264 glue), sans-I/O.

A session sits on a `TransactionLayer` it shares with others. The owner routes the
layer's events for this call to `handle(event, now)` (by Call-ID and tags), calls
`handle_timer(now)` at `next_deadline()`, and reads what happened from `events()`:
past-tense facts (switch.sip.invite_events). SDP bodies travel as bytes; negotiation
(offer_answer) is the owner's. What both sides do once a dialog exists is
`_InviteSession` (switch.sip.invite_session); the events are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

from switch.sip.dialog import Dialog, DialogError
from switch.sip.errors import LocalProtocolError
from switch.sip.glare import RandBelow
from switch.sip.headers import HeaderError, NameAddr
from switch.sip.invite_events import (
    SESSION_HEADERS,
    Answered,
    AnswerReceived,
    ByeReceived,
    Cancelled,
    DialogRequest,
    DialogResponse,
    EarlyMedia,
    Ended,
    Held,
    InviteEvent,
    ReinviteAnswered,
    ReinviteFailed,
    Rejected,
    Resumed,
    Ringing,
    _add_headers,
    _sdp_headers,
    is_hold_offer,
    reason_header,
)
from switch.sip.invite_session import _InviteSession
from switch.sip.message import Headers, Request, Response
from switch.sip.peer import Peer
from switch.sip.reliable_provisional import OPTION_100REL, ProvisionalSequence, RAck, rseq_of
from switch.sip.session_timer import (
    MIN_SE_FLOOR_S,
    retry_after_422,
)
from switch.sip.transaction import (
    ClientTransaction,
    TransactionLayer,
)
from switch.sip.transaction_states import T1_S, T2_S
from switch.sip.uri import parse_uri

FORK_WINDOW_T1 = 64  # RFC 6026 §8.4: Timer M, how long 2xx of other forks may follow

__all__ = [
    "AnswerReceived", "Answered", "ByeReceived", "Cancelled", "DialogRequest", "DialogResponse",
    "EarlyMedia", "Ended", "Held", "InviteClient", "InviteEvent", "ReinviteAnswered",
    "ReinviteFailed", "Rejected", "Resumed", "Ringing", "is_hold_offer", "reason_header",
]


class InviteClient(_InviteSession):
    """The UAC side of one call leg: sends the INVITE with our SDP offer.

    With `session_expires_s` the INVITE carries Supported: timer, Session-Expires and
    Min-SE; a 422 is retried once with the peer's Min-SE (same Call-ID, CSeq + 1, same
    offer), and the owner only sees the outcome of the retry (RFC 4028 §7.3)."""

    owns_call_id = True  # we made up the Call-ID of the INVITE we send (RFC 3261 §14.1)

    def __init__(self, layer: TransactionLayer, peer: Peer, *, request_uri: str,
                 from_: NameAddr, to: NameAddr, contact: NameAddr, call_id: str,
                 offer: bytes, via_host: str, via_port: int, now: float,
                 extra_headers: list[tuple[str, str]] | None = None,
                 t1_s: float = T1_S, t2_s: float = T2_S, glare_random: RandBelow | None = None,
                 session_expires_s: int | None = None, min_se_s: int = MIN_SE_FLOOR_S,
                 reliable_provisional: bool = False) -> None:
        super().__init__(layer, peer, via_host=via_host, via_port=via_port, t1_s=t1_s,
                         t2_s=t2_s, glare_random=glare_random,
                         session_expires_s=session_expires_s, min_se_s=min_se_s)
        if from_.tag is None:
            raise LocalProtocolError("the From of an INVITE needs our tag")
        # RFC 3262 §4: we say Supported: 100rel and PRACK reliable provisional responses.
        self.reliable_provisional = reliable_provisional
        extra = [*(extra_headers or []),
                 *([("Supported", OPTION_100REL)] if reliable_provisional else [])]
        self._invite_template = (parse_uri(request_uri), from_, to, contact, call_id, offer,
                                 extra)
        self.invite = self._build_invite(1)
        self.transaction = layer.send_request(self.invite, peer, now)
        self.early: dict[str | None, Dialog] = {}
        self.answered = False
        self.final_status: int | None = None
        self._provisional_seen = False
        self._cancel_pending = False
        self._cancelled = False
        self._cancel_headers: list[tuple[str, str]] = []
        self._retried_422 = False
        self._fork_acks: dict[str | None, Request] = {}  # other forks' 2xx, ACKed and BYEd
        self._rseqs: dict[str, ProvisionalSequence] = {}  # by early dialog (To tag)
        # Until when another fork's 2xx may still come: a proxy passes 2xx responses on
        # for 64*T1 after the first (RFC 6026 §8.4, Timer M); None before any 2xx.
        self.forks_until: float | None = None

    def _build_invite(self, seq: int) -> Request:
        uri, from_, to, contact, call_id, offer, extra = self._invite_template
        headers = Headers()
        headers.add("Via", self._via().serialize())
        headers.add("Max-Forwards", "70")
        headers.add("From", from_.serialize())
        headers.add("To", to.serialize())
        headers.add("Call-ID", call_id)
        headers.add("CSeq", f"{seq} INVITE")
        headers.add("Contact", contact.serialize())
        for name, value in [*extra, *self._timer_request_headers(), *_sdp_headers(offer)]:
            headers.add(name, value)
        return Request("INVITE", uri, headers, offer)

    def cancel(self, now: float, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Give up before the answer (§9.1): sent once a provisional response came.
        `headers` (a Reason, RFC 3326) go on the CANCEL, even a deferred one."""
        if self.final_status is not None or self._cancelled:
            return
        self._cancelled = True
        self._cancel_headers = list(headers)
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
        cancel = Request("CANCEL", invite.uri, headers)
        _add_headers(cancel, self._cancel_headers, SESSION_HEADERS | {"Route"})
        self.layer.send_request(cancel, self.peer, now)

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
            self._on_failure_response(response, now)

    def _on_provisional(self, response: Response, now: float) -> None:
        self._provisional_seen = True
        if self._cancel_pending:
            self._cancel_pending = False
            self._send_cancel(now)
        tag = response.to.tag
        if response.status > 100 and tag is not None \
                and tag not in self.early and response.contacts:
            self.early[tag] = Dialog.from_uac(self.invite, response)
        rseq = rseq_of(response) if self.reliable_provisional else None
        if rseq is not None and tag is not None and tag in self.early:
            if not self._rseqs.setdefault(tag, ProvisionalSequence()).accept(rseq):
                return  # a retransmission, or out of order: not PRACKed, not processed
            self._send_prack(self.early[tag], rseq, now)
        if self._cancelled or response.status == 100:
            return
        if response.body:
            self._events.append(EarlyMedia(response.body))
        else:
            self._events.append(Ringing(response.status))

    def _send_prack(self, dialog: Dialog, rseq: int, now: float) -> None:
        """RFC 3262 §4, §7.2: PRACK in the early dialog, RAck naming the response."""
        rack = RAck(rseq, self.invite.cseq.seq, "INVITE")
        prack = dialog.create_request("PRACK", via=self._via(),
                                      headers=[("RAck", rack.serialize())])
        self.layer.send_request(prack, self.peer, now)

    def _on_2xx(self, response: Response, now: float) -> None:
        if self.dialog is not None:
            if response.to.tag == self.dialog.id.remote_tag:
                self._resend_ack(response)  # a retransmission
            else:
                self._on_fork_2xx(response, now)
            return
        self.final_status = response.status
        self.forks_until = now + FORK_WINDOW_T1 * self.t1_s
        dialog = self.early.pop(response.to.tag, None)
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
        self.local_sdp = self.invite.body
        self._renew_from_2xx(now, response)
        self._events.append(Answered(response.body))

    def _on_fork_2xx(self, response: Response, now: float) -> None:
        """§13.2.2.4: a 2xx from another fork after we took the first: ACK it, then BYE
        that dialog; the call stays on the first."""
        tag = response.to.tag
        ack = self._fork_acks.get(tag)
        if ack is not None:
            self.layer.send_ack(ack, self.peer)  # that fork retransmits its 2xx
            return
        try:
            dialog = self.early.pop(tag, None) or Dialog.from_uac(self.invite, response)
            dialog.receive_response(response)
        except DialogError:
            return  # no usable Contact: there is nowhere to send the ACK or the BYE
        ack = dialog.create_ack(response.cseq.seq, self._via())
        self.layer.send_ack(ack, self.peer)
        self._fork_acks[tag] = ack
        bye = dialog.create_request("BYE", via=self._via())
        self.layer.send_request(bye, self.peer, now)
        dialog.terminate()

    def _on_stray(self, response: Response, now: float) -> None:
        if (self.dialog is not None and 200 <= response.status < 300
                and response.cseq.method == "INVITE"
                and response.cseq.seq == self.invite.cseq.seq
                and response.to.tag != self.dialog.id.remote_tag):
            self._on_fork_2xx(response, now)
        else:
            super()._on_stray(response, now)

    def _on_failure_response(self, response: Response, now: float) -> None:
        if self.final_status is not None:
            return
        if response.status == 422 and self._retry_after_422(response, now):
            return
        self.final_status = response.status
        for dialog in self.early.values():
            dialog.terminate()
        if self._cancelled and response.status == 487:
            self._events.append(Cancelled(reason_header(response)))
        else:
            self._events.append(Rejected(response.status, response.reason,
                                         reason_header(response)))
        self._end(str(response.status))

    def _retry_after_422(self, response: Response, now: float) -> bool:
        """RFC 4028 §7.3: one new INVITE with the interval the 422 asks for."""
        if self._retried_422 or self._cancelled or self.session_expires_s is None:
            return False
        try:
            retry = retry_after_422(response, session_expires_s=self.session_expires_s,
                                    min_se_s=self.min_se_s)
        except HeaderError:
            retry = None
        if retry is None:
            return False
        self._retried_422 = True
        self.session_expires_s, self.min_se_s = retry
        for dialog in self.early.values():
            dialog.terminate()
        self.early.clear()
        self._rseqs.clear()
        self._provisional_seen = False
        self.invite = self._build_invite(self.invite.cseq.seq + 1)
        self.transaction = self.layer.send_request(self.invite, self.peer, now)
        return True

    def _on_failure(self, txn: object, cause: str, now: float) -> None:
        if txn is self.transaction and self.final_status is None:
            self.final_status = 408
            self._events.append(Rejected(408, "Request Timeout"))
            self._end(cause)
            return
        super()._on_failure(txn, cause, now)
