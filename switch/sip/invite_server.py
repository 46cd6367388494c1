"""INVITE sessions, UAS side (RFC 3261 §13.3, §9.2, §14, §15), sans-I/O.

Built from the RequestReceived of an initial INVITE. The owner answers with
`ring(now)` (180), `early_media(sdp, now)` (183 with SDP), `answer(sdp, now)` (200, then
resent at T1, 2T1, ... capped at T2 until the ACK; after 64*T1 without one the call is
ended with BYE, §13.3.1.4) or `reject(status, now)`; each takes extra `headers`
(P-Asserted-Identity, Reason ...). A CANCEL routed to `handle` gets 200 and the INVITE
487 (§9.2). Everything after the answer is `_InviteSession`'s.

A late offer (an INVITE without SDP, RFC 3261 §13.2.1): the owner's SDP in `answer()`
is then our offer, and the caller's answer comes back in its ACK as AnswerReceived
(empty when the ACK had none). An offer may not go in an unreliable provisional
response, so `early_media()` is refused for such an INVITE (`early_sdp_allowed`).

Reliable provisional responses (RFC 3262, switch.sip.reliable_provisional): an INVITE
with Require: 100rel gets every 18x reliably (Require: 100rel, RSeq, resent from T1
doubling until its PRACK, which gets 200; a 5xx after 64*T1 without one); with only
Supported: 100rel, an 18x with SDP goes reliably. A 2xx waits while a reliable 18x
with SDP is not PRACKed. A late offer may then go in a reliable 183, answered in the
PRACK (RFC 3262 §5), reported as AnswerReceived too.

Session timers (RFC 4028 §9), when `session_expires_s` is set: the 2xx carries the
negotiated Session-Expires (and Require: timer if the caller supports it). An INVITE
asking for an interval below our Min-SE cannot be accepted: `answer()` then sends 422
with our Min-SE instead of the 200 and the call ends with Ended("422").
`session_interval_too_small()` tells the owner beforehand, so it can `reject(422, now)`
(which adds the Min-SE itself) before it places an outbound leg.
"""

from __future__ import annotations

from collections.abc import Sequence

from switch.sip.dialog import Dialog, DialogError, DialogId, build_dialog_response
from switch.sip.errors import LocalProtocolError
from switch.sip.glare import RandBelow
from switch.sip.headers import HeaderError, NameAddr, canonical_name
from switch.sip.invite_events import (
    SESSION_HEADERS,
    AnswerReceived,
    Cancelled,
    _add_headers,
    _sdp_headers,
    reason_header,
)
from switch.sip.invite_session import _InviteSession
from switch.sip.message import Request, Response, build_response
from switch.sip.peer import Peer
from switch.sip.reliable_provisional import (
    MAX_FIRST_RSEQ,
    PRACK_TIMEOUT_STATUS,
    RAck,
    ReliableProvisionals,
    lists_option,
)
from switch.sip.session_timer import MIN_SE_FLOOR_S, MinSE, SessionTimer, TooSmall
from switch.sip.transaction import (
    RequestReceived,
    ServerTransaction,
    TransactionEvent,
    TransactionLayer,
)
from switch.sip.transaction_states import T1_S, T2_S

__all__ = ["InviteServer"]

# The session writes these into the responses that create the dialog.
_DIALOG_RESPONSE_HEADERS = SESSION_HEADERS | {"Contact", "Content-Type", "Record-Route"}


class InviteServer(_InviteSession):
    """The UAS side of one call leg."""

    def __init__(self, layer: TransactionLayer, received: RequestReceived, *, to_tag: str,
                 contact: NameAddr, via_host: str, via_port: int, peer: Peer,
                 t1_s: float = T1_S, t2_s: float = T2_S, glare_random: RandBelow | None = None,
                 session_expires_s: int | None = None, min_se_s: int = MIN_SE_FLOOR_S,
                 rseq_random: RandBelow | None = None) -> None:
        super().__init__(layer, peer, via_host=via_host, via_port=via_port, t1_s=t1_s,
                         t2_s=t2_s, glare_random=glare_random,
                         session_expires_s=session_expires_s, min_se_s=min_se_s)
        if received.request.method != "INVITE":
            raise LocalProtocolError(f"an InviteServer starts from an INVITE, not "
                                     f"{received.request.method}")
        self.transaction: ServerTransaction = received.transaction
        self.invite: Request = received.request
        self.offer: bytes = received.request.body
        self.to_tag = to_tag
        self.contact = contact
        self.final_status: int | None = None
        self._timer_decision = self._decide_timer(self.invite)
        # RFC 3262: Require: 100rel makes every provisional response reliable; with
        # Supported: 100rel only those with SDP (early media, or our late offer) are.
        self.requires_100rel = lists_option(self.invite, "Require")
        reliable = self.requires_100rel or lists_option(self.invite, "Supported")
        # §3: the first RSeq is best drawn uniformly from 1..2**31-1; 1 without a source.
        first_rseq = 1 + rseq_random(MAX_FIRST_RSEQ) if rseq_random is not None else 1
        self._reliable = ReliableProvisionals(self.invite.cseq.seq, first_rseq, t1_s) \
            if reliable else None
        self._deferred_answer: tuple[bytes, list[tuple[str, str]]] | None = None
        self._offer_in_provisional = False  # our offer went in a reliable 1xx (§5)
        self._late_answered = False  # its PRACK brought the answer

    @property
    def late_offer(self) -> bool:
        """The INVITE had no SDP: the offer is ours to make (RFC 3261 §13.2.1)."""
        return not self.offer

    @property
    def early_sdp_allowed(self) -> bool:
        """SDP may go in a provisional response: an answer to the INVITE's offer, or
        our offer if the caller takes reliable provisional responses (RFC 3262 §5)."""
        return not self.late_offer or self._reliable is not None

    @property
    def ring_needs_offer(self) -> bool:
        """RFC 3262 §5: to an INVITE without an offer that requires 100rel, the first
        reliable 18x carries our offer: early_media(offer), not ring()."""
        return self.late_offer and self.requires_100rel and not self._offer_in_provisional

    def session_interval_too_small(self) -> bool:
        """The INVITE's Session-Expires is below our Min-SE: only a 422 will do."""
        return isinstance(self._timer_decision, TooSmall)

    # -- answering the initial INVITE

    def ring(self, now: float, headers: Sequence[tuple[str, str]] = ()) -> None:
        if self.ring_needs_offer:
            raise LocalProtocolError("the INVITE has no offer and requires 100rel: the "
                                     "first reliable 18x carries ours (RFC 3262 §5)")
        self._provisional(180, b"", now, headers)

    def early_media(self, sdp: bytes, now: float,
                    headers: Sequence[tuple[str, str]] = ()) -> None:
        if not self.early_sdp_allowed:
            raise LocalProtocolError("the INVITE has no offer: ours goes in the 2xx, not in "
                                     "an unreliable provisional response (RFC 3261 §13.2.1)")
        if self.late_offer:
            self._offer_in_provisional = True  # the PRACK answers it (RFC 3262 §5)
        self._provisional(183, sdp, now, headers)

    def answer(self, sdp: bytes, now: float, headers: Sequence[tuple[str, str]] = ()) -> None:
        """200 with our SDP; a 422 instead when the session interval is too small. The
        200 waits while a reliable provisional response with SDP is not PRACKed yet
        (RFC 3262 §3): it goes out with that PRACK."""
        self._check_unanswered()
        if self._reliable is not None and self._reliable.holds_2xx:
            self._deferred_answer = (sdp, list(headers))
            return
        self._deferred_answer = None
        decision = self._timer_decision
        if isinstance(decision, TooSmall):
            self.reject(422, now)
            return
        self.final_status = 200
        if self._reliable is not None:
            self._reliable.stop()
        response = self._dialog_response(200, b"")
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.invite, response)
        self.dialog.send_response(response)
        timer_headers = decision.headers() if decision is not None else []
        self._send_2xx(self.transaction, sdp, now, contact=self.contact,
                       headers=[*timer_headers, *headers])
        self.local_sdp = sdp
        # The offer in a reliable 1xx was answered in its PRACK: the 2xx repeats it.
        if self.late_offer and not self._offer_in_provisional:
            self._answer_in_ack = self.invite.cseq.seq
        if decision is not None:
            self.timer = SessionTimer(decision.session_expires.interval_s,
                                      decision.we_refresh, now)

    def reject(self, status: int, now: float, reason: str | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        """A 3xx-6xx final answer; a 422 gets our Min-SE unless `headers` has one."""
        if not 300 <= status <= 699:
            raise LocalProtocolError(f"reject needs a 3xx-6xx status, got {status}")
        self._check_unanswered()
        self.final_status = status
        self._stop_reliable()
        response = build_response(self.invite, status, reason, to_tag=self.to_tag)
        _add_headers(response, headers)
        if status == 422 and not any(canonical_name(n) == "Min-SE" for n, _ in headers):
            response.headers.add("Min-SE", MinSE(self.min_se_s).serialize())
        if self.dialog is not None:
            self.dialog.send_response(response)
        self.layer.send_response(self.transaction, response, now)
        self._end(str(status))

    def _provisional(self, status: int, sdp: bytes, now: float,
                     headers: Sequence[tuple[str, str]]) -> None:
        self._check_unanswered()
        response = self._dialog_response(status, sdp)
        _add_headers(response, headers, _DIALOG_RESPONSE_HEADERS)
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.invite, response)
        reliable = self._reliable
        if reliable is not None and (self.requires_100rel or sdp):
            sending = reliable.send(response, now)
            if sending is None:
                return  # it waits for the PRACK of the one before (RFC 3262 §3)
            response = sending
        self.layer.send_response(self.transaction, response, now)

    def _stop_reliable(self) -> None:
        self._deferred_answer = None
        if self._reliable is not None:
            self._reliable.stop()

    # -- PRACK and retransmissions (RFC 3262 §3)

    def next_deadline(self) -> float | None:
        deadlines = [super().next_deadline(),
                     self._reliable.next_deadline() if self._reliable is not None else None]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        reliable = self._reliable
        if reliable is not None and self.final_status is None:
            if reliable.expired(now):
                self.reject(PRACK_TIMEOUT_STATUS, now)  # §3: a 5xx after 64*T1
            elif (again := reliable.retransmission(now)) is not None:
                self.layer.send_response(self.transaction, again, now)
        super().handle_timer(now)

    def _on_prack(self, txn: ServerTransaction, prack: Request, now: float) -> None:
        assert self.dialog is not None
        acked, following = None, None
        try:
            self.dialog.receive_request(prack)
            if self._reliable is not None:
                acked, following = self._reliable.prack(
                    RAck.parse(prack.headers.get("RAck") or ""), now)
        except (DialogError, HeaderError):
            pass  # answered 481 below
        self.layer.send_response(
            txn, build_response(prack, 200 if acked is not None else 481, to_tag=self.to_tag),
            now)
        if acked is None or self._reliable is None:
            return
        if acked.body and self.late_offer and self._offer_in_provisional \
                and not self._late_answered:
            self._late_answered = True
            self._events.append(AnswerReceived(prack.body))  # §5: the PRACK answers
        if following is not None:
            self.layer.send_response(self.transaction, following, now)
        deferred = self._deferred_answer
        if deferred is not None and not self._reliable.holds_2xx:
            self.answer(deferred[0], now, deferred[1])

    def _dialog_response(self, status: int, sdp: bytes) -> Response:
        response = build_dialog_response(self.invite, status, to_tag=self.to_tag,
                                         contact=self.contact, body=sdp)
        for name, value in _sdp_headers(sdp):
            response.headers.add(name, value)
        return response

    def _check_unanswered(self) -> None:
        if self.final_status is not None:
            raise LocalProtocolError(f"the INVITE was already answered {self.final_status}")

    # -- CANCEL (§9.2)

    def handle(self, event: TransactionEvent, now: float) -> None:
        if isinstance(event, RequestReceived) and event.request.method == "PRACK" \
                and self.dialog is not None \
                and DialogId.for_request(event.request) == self.dialog.id:
            self._on_prack(event.transaction, event.request, now)
            return
        if isinstance(event, RequestReceived) and event.request.method == "CANCEL" \
                and self.layer.find_server_transaction_for_cancel(event.request) \
                is self.transaction:
            self._on_cancel(event.transaction, event.request, now)
            return
        super().handle(event, now)  # a CANCEL of anything else: 481 or a re-INVITE's

    def _on_cancel(self, txn: ServerTransaction, cancel: Request, now: float) -> None:
        self.layer.send_response(txn, build_response(cancel, 200, to_tag=self.to_tag), now)
        if self.final_status is not None:
            return  # too late: the INVITE has its final answer already
        self.final_status = 487
        self._stop_reliable()
        terminated = build_response(self.invite, 487, to_tag=self.to_tag)
        if self.dialog is not None:
            self.dialog.send_response(terminated)
        self.layer.send_response(self.transaction, terminated, now)
        self._events.append(Cancelled(reason_header(cancel)))
        self._end("cancelled")
