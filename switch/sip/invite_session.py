"""Dialog-level behaviour shared by both sides of an INVITE session (RFC 3261 §12-§15,
RFC 4028): BYE either way, re-INVITE either way with the §14.1 491 retry, 2xx
retransmission until its ACK (§13.3.1.4), the 481/408 rule that ends a dialog
(§12.2.1.2), other in-dialog requests passed to and from the owner, and session
timers (the rules are in session_timer; here they are sent and received)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from switch.sip.dialog import Dialog, DialogError, DialogId, DialogState
from switch.sip.errors import LocalProtocolError
from switch.sip.glare import RandBelow, glare_retry_delay_s
from switch.sip.headers import HeaderError, NameAddr, Via
from switch.sip.invite_events import (
    _OWN_METHODS,
    ACK_TIMEOUT_T1,
    SESSION_HEADERS,
    AnswerReceived,
    ByeReceived,
    DialogRequest,
    DialogResponse,
    Ended,
    Held,
    InviteEvent,
    ReinviteAnswered,
    ReinviteFailed,
    Resumed,
    _add_headers,
    _sdp_headers,
    is_hold_offer,
    reason_header,
)
from switch.sip.message import Request, Response, build_response
from switch.sip.peer import Peer
from switch.sip.sdp import SdpError
from switch.sip.session_timer import (
    MIN_SE_FLOOR_S,
    MinSE,
    SessionTimer,
    TimerAnswer,
    TimerDue,
    TooSmall,
    answer_timer,
    refresher_for,
    request_timer_headers,
    uac_timer,
)
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


@dataclass(slots=True)
class _Retransmission:
    """A 2xx to an INVITE we answered, resent until its ACK (§13.3.1.4)."""

    transaction: ServerTransaction
    response: Response
    due: float
    interval_s: float
    give_up: float


@dataclass(frozen=True, slots=True)
class _GlareRetry:
    """Our re-INVITE got 491: send the same offer again at `due` (§14.1)."""

    due: float
    sdp: bytes
    refresh: bool  # a session refresh of ours rather than the owner's offer


class _InviteSession:
    """Dialog-level behaviour shared by both sides."""

    owns_call_id = False  # we sent the dialog's initial INVITE (the UAC side)

    def __init__(self, layer: TransactionLayer, peer: Peer, *, via_host: str, via_port: int,
                 t1_s: float = T1_S, t2_s: float = T2_S, glare_random: RandBelow | None = None,
                 session_expires_s: int | None = None,
                 min_se_s: int = MIN_SE_FLOOR_S) -> None:
        if min_se_s < MIN_SE_FLOOR_S:
            raise LocalProtocolError(f"min_se_s must be at least {MIN_SE_FLOOR_S} "
                                     f"(RFC 4028 §4), got {min_se_s}")
        if session_expires_s is not None and session_expires_s < min_se_s:
            raise LocalProtocolError(f"session_expires_s {session_expires_s} is below "
                                     f"min_se_s {min_se_s}")
        self.layer = layer
        self.peer = peer
        self.via_host, self.via_port = via_host, via_port
        self.t1_s, self.t2_s = t1_s, t2_s
        # Where the §14.1 pause after a 491 is drawn from (switch.sip.glare); None
        # reports the 491 as ReinviteFailed instead of retrying.
        self.glare_random = glare_random
        self.session_expires_s = session_expires_s  # None: no session timer at all
        self.min_se_s = min_se_s
        self.dialog: Dialog | None = None
        self.ended = False
        self.local_sdp = b""  # the SDP we last offered or answered successfully
        self.timer: SessionTimer | None = None
        self._events: list[InviteEvent] = []
        self._pending_2xx: dict[int, _Retransmission] = {}  # by INVITE CSeq number
        # ACKs we sent for 2xx responses, by INVITE CSeq number: a retransmitted 2xx
        # (its transaction may be gone, RFC 6026) gets the same ACK again (§13.2.2.4).
        self._acks: dict[int, Request] = {}
        self._reinvite: ClientTransaction | None = None
        self._reinvite_sdp = b""
        self._reinvite_refresh = False
        self._queued_offer: bytes | None = None  # the owner's, behind our refresh
        self._glare_retry: _GlareRetry | None = None
        self._bye: ClientTransaction | None = None
        self._reinvite_server: ServerTransaction | None = None
        # The CSeq of the INVITE whose 2xx carried our offer because the INVITE had
        # none (RFC 3261 §13.2.1, §14.2): its ACK has the answer (AnswerReceived).
        self._answer_in_ack: int | None = None
        self._reinvite_answer: TimerAnswer | None = None
        self._requests: dict[ClientTransaction, str] = {}  # send_request()s, by method

    # -- outputs

    def events(self) -> list[InviteEvent]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        deadlines = [r.due for r in self._pending_2xx.values()]
        if not self.ended:
            if self._glare_retry is not None:
                deadlines.append(self._glare_retry.due)
            if self.timer is not None:
                deadlines.append(self.timer.next_deadline())
        return min(deadlines, default=None)

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
        if self.ended:
            return
        retry = self._glare_retry
        if retry is not None and retry.due <= now:
            self._glare_retry = None
            if not self._invite_busy():
                self._send_reinvite(retry.sdp, now, refresh=retry.refresh)
            elif not retry.refresh:
                # The peer's own re-INVITE arrived meanwhile and is still unanswered.
                self._events.append(ReinviteFailed(491))
        timer = self.timer
        due = timer.due(now) if timer is not None else None
        if due is TimerDue.REFRESH:
            self._refresh(now)
        elif due is TimerDue.EXPIRE:
            # RFC 4028 §10: no refresh came (or ours got no answer) in time.
            self.timer = None
            self._send_bye(now, cause="session-expired")

    # -- commands

    def bye(self, now: float, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Hang up a confirmed call; `headers` e.g. a Reason (RFC 3326)."""
        if self.dialog is None or self.dialog.state is not DialogState.CONFIRMED or self.ended:
            raise LocalProtocolError("no confirmed call to hang up")
        self._send_bye(now, cause="bye-sent", headers=headers)

    def reinvite(self, sdp: bytes, now: float) -> None:
        """Send a new offer in the dialog (hold: a sendonly offer; resume: sendrecv).
        The outcome comes back as ReinviteAnswered or ReinviteFailed. While a session
        refresh of ours is in flight the offer waits for it and follows."""
        self._confirmed()
        if self._reinvite is not None and self._reinvite_refresh and self._queued_offer is None:
            self._queued_offer = sdp
            return
        if self._invite_busy() or (self._glare_retry is not None
                                   and not self._glare_retry.refresh):
            raise LocalProtocolError("an INVITE is already in progress in this dialog")
        self._glare_retry = None  # a refresh waiting to retry: this offer refreshes too
        self._send_reinvite(sdp, now, refresh=False)

    def accept_reinvite(self, sdp: bytes, now: float) -> None:
        """Answer the peer's re-INVITE (after Held/Resumed) with our SDP answer."""
        txn = self._reinvite_server
        if txn is None or self.ended:
            raise LocalProtocolError("no re-INVITE to answer")
        self._reinvite_server = None
        answer, self._reinvite_answer = self._reinvite_answer, None
        self._send_2xx(txn, sdp, now, headers=answer.headers() if answer else ())
        self.local_sdp = sdp
        self._renew_from_answer(now, answer)
        self._resume_waiting_refresh(now)

    def reject_reinvite(self, status: int, now: float,
                        headers: Sequence[tuple[str, str]] = ()) -> None:
        """Refuse the peer's re-INVITE (488 for an offer we cannot take, §14.2); the
        session goes on with the SDP agreed before."""
        txn = self._reinvite_server
        if txn is None or self.dialog is None or self.ended:
            raise LocalProtocolError("no re-INVITE to answer")
        if not 300 <= status <= 699:
            raise LocalProtocolError(f"reject needs a 3xx-6xx status, got {status}")
        self._reinvite_server, self._reinvite_answer = None, None
        response = build_response(txn.request, status, to_tag=self.dialog.id.local_tag)
        _add_headers(response, headers)
        self.layer.send_response(txn, response, now)
        self._resume_waiting_refresh(now)

    def respond(self, transaction: ServerTransaction, status: int, now: float,
                headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> None:
        """Answer a DialogRequest; a body needs its Content-Type in `headers`."""
        if self.dialog is None:
            raise LocalProtocolError("no dialog to respond in")
        if transaction.request.method == "INVITE":
            raise LocalProtocolError("answer a re-INVITE with accept_reinvite()")
        if not 100 <= status <= 699:
            raise LocalProtocolError(f"a response status is 100-699, got {status}")
        response = build_response(transaction.request, status,
                                  to_tag=self.dialog.id.local_tag, body=body)
        _add_headers(response, headers)
        if body and response.content_type is None:
            raise LocalProtocolError("a response body needs a Content-Type header")
        self.layer.send_response(transaction, response, now)

    def send_request(self, method: str, now: float, headers: Sequence[tuple[str, str]] = (),
                     body: bytes = b"") -> ClientTransaction:
        """Send REFER, NOTIFY, INFO, OPTIONS, UPDATE ... in the confirmed dialog. Its final
        answer comes back as DialogResponse; a 481 also ends the call (§12.2.1.2)."""
        dialog = self._confirmed()
        if method in _OWN_METHODS:
            raise LocalProtocolError(f"{method} has its own command in the session")
        request = dialog.create_request(method, via=self._via(), headers=headers, body=body)
        if body and request.content_type is None:
            raise LocalProtocolError("a request body needs a Content-Type header")
        txn = self.layer.send_request(request, self.peer, now)
        self._requests[txn] = method
        return txn

    # -- inputs

    def handle(self, event: TransactionEvent, now: float) -> None:
        if isinstance(event, ResponseReceived):
            self._on_response(event.transaction, event.response, now)
        elif isinstance(event, StrayResponseReceived):
            self._on_stray(event.response, now)
        elif isinstance(event, RequestReceived):
            self._on_request(event.transaction, event.request, now)
        elif isinstance(event, AckReceived):
            seq = event.request.cseq.seq
            self._pending_2xx.pop(seq, None)
            if seq == self._answer_in_ack:
                self._answer_in_ack = None
                self._events.append(AnswerReceived(event.request.body))
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            self._on_failure(event.transaction, "408" if isinstance(
                event, TransactionTimedOut) else "transport", now)

    def _on_response(self, txn: ClientTransaction, response: Response, now: float) -> None:
        if txn is self._bye:
            if response.status >= 200:
                self._end("bye-sent")
        elif txn is self._reinvite:
            self._on_reinvite_response(response, now)
        elif txn in self._requests:
            self._on_dialog_response(txn, response)
        elif 200 <= response.status < 300 and response.cseq.method == "INVITE":
            # A retransmitted 2xx to a re-INVITE we already ACKed; its transaction is
            # still Accepted (RFC 6026 §7.2) and passes it up: ACK it again.
            self._resend_ack(response)

    def _on_reinvite_response(self, response: Response, now: float) -> None:
        assert self.dialog is not None
        status = response.status
        if status < 200:
            return
        refresh = self._reinvite_refresh
        self._reinvite, self._reinvite_refresh = None, False
        if self.ended:
            # The call ended while our re-INVITE was out (a BYE crossed it): a 2xx is
            # still ACKed so the peer stops retransmitting it; nothing else changes.
            if status < 300:
                self._send_ack(response)
            return
        self.dialog.receive_response(response)
        if 200 <= status < 300:
            self._send_ack(response)
            self.local_sdp = self._reinvite_sdp
            self._renew_from_2xx(now, response)
            if not refresh:
                self._events.append(ReinviteAnswered(response.body))
        elif status in (408, 481):
            self._send_bye_quietly()
            self._end(str(status))
            return
        elif status == 491 and self.glare_random is not None:
            delay_s = glare_retry_delay_s(owns_call_id=self.owns_call_id,
                                          randbelow=self.glare_random)
            self._glare_retry = _GlareRetry(now + delay_s, self._reinvite_sdp, refresh)
        elif not refresh:
            self._events.append(ReinviteFailed(status))
            self._resume_waiting_refresh(now)
        # A failed refresh is not retried: the session expires unless the peer refreshes.
        self._send_queued_offer(now)

    def _send_queued_offer(self, now: float) -> None:
        offer, self._queued_offer = self._queued_offer, None
        if offer is None:
            return
        if self._glare_retry is not None:
            # Our refresh met glare: the owner's offer takes its place in the retry.
            self._glare_retry = _GlareRetry(self._glare_retry.due, offer, refresh=False)
        else:
            self._send_reinvite(offer, now, refresh=False)

    def _on_dialog_response(self, txn: ClientTransaction, response: Response) -> None:
        status = response.status
        if status < 200:
            return
        method = self._requests.pop(txn)
        if status != 408 and self.dialog is not None:
            self.dialog.receive_response(response)  # refreshes the target on a 2xx
        self._events.append(DialogResponse(method, status, txn))
        if status == 481:
            self._send_bye_quietly()
            self._end("481")

    def _on_stray(self, response: Response, now: float) -> None:
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
        if request.method == "CANCEL" or dialog is None or self.ended:
            # §9.2: only a CANCEL of the peer's pending re-INVITE matches anything here;
            # the owner is answering that re-INVITE already, so it simply completes.
            matched = (request.method == "CANCEL" and self._reinvite_server is not None
                       and self.layer.find_server_transaction_for_cancel(request)
                       is self._reinvite_server)
            self.layer.send_response(txn, build_response(request, 200 if matched else 481),
                                     now)
            return
        if DialogId.for_request(request) != dialog.id:
            # §12.2.2: our Call-ID but another dialog (another fork's, a stale tag).
            self.layer.send_response(txn, build_response(request, 481), now)
            return
        try:
            dialog.receive_request(request)
        except DialogError as exc:
            self.layer.send_response(txn, build_response(request, exc.status), now)
            return
        method = request.method
        if method == "BYE":
            self.layer.send_response(txn, build_response(request, 200), now)
            self._pending_2xx.clear()
            self._events.append(ByeReceived(reason_header(request)))
            self._terminate_pending_reinvite(now)
            dialog.terminate()
            self._end("bye-received")
        elif method == "INVITE":
            self._on_reinvite_request(txn, request, now)
        elif method == "UPDATE" and not request.body and self.session_expires_s is not None:
            self._on_update_refresh(txn, request, now)
        else:
            self._events.append(DialogRequest(txn, request))

    def _on_reinvite_request(self, txn: ServerTransaction, request: Request,
                             now: float) -> None:
        if self._invite_busy():
            # §14.2: glare; the peer retries after a random pause.
            self.layer.send_response(txn, build_response(request, 491), now)
            return
        decision = self._decide_timer(request)
        if isinstance(decision, TooSmall):
            self._send_422(txn, request, decision, now)
            return
        if not request.body:
            # §14.2: a re-INVITE without an offer (often a session refresh): our current
            # SDP goes in the 2xx as the offer, unchanged (RFC 3264 §8), and the ACK
            # brings the answer. The owner hears of it only then.
            self._send_2xx(txn, self.local_sdp, now,
                           headers=decision.headers() if decision else ())
            self._answer_in_ack = request.cseq.seq
            self._renew_from_answer(now, decision)
            return
        self._reinvite_server, self._reinvite_answer = txn, decision
        try:
            hold = is_hold_offer(request.body)
        except SdpError:
            hold = False  # the owner cannot use it either and keeps the session as it was
        self._events.append(Held(request.body) if hold else Resumed(request.body))

    def _on_update_refresh(self, txn: ServerTransaction, request: Request,
                           now: float) -> None:
        """An UPDATE without a body is a session refresh (RFC 4028 §9, RFC 3311)."""
        assert self.dialog is not None
        decision = self._decide_timer(request)
        if isinstance(decision, TooSmall):
            self._send_422(txn, request, decision, now)
            return
        response = build_response(request, 200, to_tag=self.dialog.id.local_tag)
        if self.dialog.local_contact is not None:
            response.headers.add("Contact", self.dialog.local_contact.serialize())
        _add_headers(response, decision.headers() if decision else ())
        self.layer.send_response(txn, response, now)
        self._renew_from_answer(now, decision)

    def _on_failure(self, txn: object, cause: str, now: float) -> None:
        if txn is self._bye:
            self._end("bye-sent")
        elif txn is self._reinvite:
            self._reinvite = None
            self._send_bye_quietly()
            self._end(cause)
        elif isinstance(txn, ClientTransaction) and txn in self._requests:
            self._events.append(DialogResponse(self._requests.pop(txn), 408, txn))

    # -- session timers (RFC 4028)

    def _decide_timer(self, request: Request) -> TimerAnswer | TooSmall | None:
        if self.session_expires_s is None:
            return None
        try:
            return answer_timer(request, session_expires_s=self.session_expires_s,
                                min_se_s=self.min_se_s,
                                we_refresh=self.timer.we_refresh if self.timer else None)
        except HeaderError:
            return None  # an unreadable Session-Expires: answer as if there were none

    def _send_422(self, txn: ServerTransaction, request: Request, decision: TooSmall,
                  now: float) -> None:
        local_tag = self.dialog.id.local_tag if self.dialog is not None else None
        response = build_response(request, 422, to_tag=local_tag)
        response.headers.add("Min-SE", MinSE(decision.min_se_s).serialize())
        self.layer.send_response(txn, response, now)

    def _timer_request_headers(self) -> list[tuple[str, str]]:
        if self.session_expires_s is None:
            return []
        timer = self.timer
        if timer is None:
            return request_timer_headers(self.session_expires_s, self.min_se_s)
        return request_timer_headers(timer.interval_s, self.min_se_s,
                                     refresher_for(timer.we_refresh, we_send=True))

    def _renew_from_answer(self, now: float, answer: TimerAnswer | None) -> None:
        if answer is None:
            return
        interval_s = answer.session_expires.interval_s
        if self.timer is None:
            self.timer = SessionTimer(interval_s, answer.we_refresh, now)
        else:
            self.timer.renew(now, interval_s, answer.we_refresh)

    def _renew_from_2xx(self, now: float, response: Response) -> None:
        if self.session_expires_s is None:
            return
        try:
            granted = uac_timer(response)
        except HeaderError:
            granted = None
        if granted is None:
            if self.timer is not None:
                # A peer without the extension answered our refresh: we keep refreshing.
                self.timer.renew(now)
            return
        interval_s, we_refresh = granted
        if self.timer is None:
            self.timer = SessionTimer(interval_s, we_refresh, now)
        else:
            self.timer.renew(now, interval_s, we_refresh)

    def _refresh(self, now: float) -> None:
        assert self.timer is not None
        self.timer.refresh_pending = True
        if self._invite_busy() or self._glare_retry is not None:
            return  # the INVITE in progress renews the session if it succeeds
        self._send_reinvite(self.local_sdp, now, refresh=True)

    def _resume_waiting_refresh(self, now: float) -> None:
        """An INVITE we waited behind ended without renewing: refresh at once if the
        refresh came due meanwhile (else the timer fires it when it does)."""
        timer = self.timer
        if timer is not None and timer.refresh_pending and not self._invite_busy():
            timer.refresh_pending = False
            if timer.due(now) is TimerDue.REFRESH:
                self._refresh(now)

    # -- helpers

    def _invite_busy(self) -> bool:
        return self._reinvite is not None or self._reinvite_server is not None

    def _confirmed(self) -> Dialog:
        if self.dialog is None or self.dialog.state is not DialogState.CONFIRMED or self.ended:
            raise LocalProtocolError("no confirmed dialog")
        return self.dialog

    def _via(self) -> Via:
        return Via.parse(f"SIP/2.0/{self.peer.transport} {self.via_host}:{self.via_port}"
                         f";branch={self.layer.new_branch()};rport")

    def _send_reinvite(self, sdp: bytes, now: float, *, refresh: bool) -> None:
        dialog = self._confirmed()
        headers = [*_sdp_headers(sdp), *self._timer_request_headers()]
        request = dialog.create_request("INVITE", via=self._via(), headers=headers, body=sdp)
        self._reinvite = self.layer.send_request(request, self.peer, now)
        self._reinvite_sdp, self._reinvite_refresh = sdp, refresh

    def _send_ack(self, response: Response) -> Request:
        assert self.dialog is not None
        ack = self.dialog.create_ack(response.cseq.seq, self._via())
        self.layer.send_ack(ack, self.peer)
        self._acks[response.cseq.seq] = ack
        return ack

    def _send_2xx(self, txn: ServerTransaction, sdp: bytes, now: float,
                  contact: NameAddr | None = None,
                  headers: Sequence[tuple[str, str]] = ()) -> Response:
        assert self.dialog is not None
        response = build_response(txn.request, 200, to_tag=self.dialog.id.local_tag, body=sdp)
        for name, value in _sdp_headers(sdp):
            response.headers.add(name, value)
        local_contact = contact or self.dialog.local_contact
        if local_contact is not None:
            response.headers.add("Contact", local_contact.serialize())
        _add_headers(response, headers, SESSION_HEADERS | {"Contact", "Content-Type"})
        self.layer.send_response(txn, response, now)
        self._pending_2xx[txn.request.cseq.seq] = _Retransmission(
            txn, response, now + self.t1_s, self.t1_s, now + ACK_TIMEOUT_T1 * self.t1_s)
        return response

    def _send_bye(self, now: float, cause: str,
                  headers: Sequence[tuple[str, str]] = ()) -> None:
        assert self.dialog is not None
        self._terminate_pending_reinvite(now)
        request = self.dialog.create_request("BYE", via=self._via(), headers=headers)
        self._bye = self.layer.send_request(request, self.peer, now)
        if cause != "bye-sent":
            self._end(cause)

    def _terminate_pending_reinvite(self, now: float) -> None:
        """The call ends while the peer's re-INVITE awaits our answer: 487 (§15.1.2)."""
        txn, self._reinvite_server = self._reinvite_server, None
        self._reinvite_answer = None
        if txn is not None and self.dialog is not None:
            self.layer.send_response(
                txn, build_response(txn.request, 487, to_tag=self.dialog.id.local_tag), now)

    def _send_bye_quietly(self) -> None:
        """After 481/408 the dialog is gone (§12.2.1.2): nothing more to send."""
        if self.dialog is not None:
            self.dialog.terminate()

    def _end(self, cause: str) -> None:
        if not self.ended:
            self.ended = True
            self._events.append(Ended(cause))
