"""INVITE sessions, UAS side (RFC 3261 §13.3, §9.2, §14, §15), sans-I/O.

Built from the RequestReceived of an initial INVITE. The owner answers with
`ring(now)` (180), `early_media(sdp, now)` (183 with SDP), `answer(sdp, now)` (200, then
resent at T1, 2T1, ... capped at T2 until the ACK; after 64*T1 without one the call is
ended with BYE, §13.3.1.4) or `reject(status, now)`. A CANCEL routed to `handle` gets
200 and the INVITE 487 (§9.2). Everything after the answer is `_InviteSession`'s.
"""

from __future__ import annotations

from switch.sip.dialog import Dialog, build_dialog_response
from switch.sip.errors import LocalProtocolError
from switch.sip.headers import NameAddr
from switch.sip.invite_client import (
    Cancelled,
    _InviteSession,
    _sdp_headers,
)
from switch.sip.message import Request, Response, build_response
from switch.sip.peer import Peer
from switch.sip.transaction import (
    RequestReceived,
    ServerTransaction,
    TransactionEvent,
    TransactionLayer,
)
from switch.sip.transaction_states import T1_S, T2_S

__all__ = ["InviteServer"]


class InviteServer(_InviteSession):
    """The UAS side of one call leg."""

    def __init__(self, layer: TransactionLayer, received: RequestReceived, *, to_tag: str,
                 contact: NameAddr, via_host: str, via_port: int, peer: Peer,
                 t1_s: float = T1_S, t2_s: float = T2_S) -> None:
        super().__init__(layer, peer, via_host=via_host, via_port=via_port, t1_s=t1_s,
                         t2_s=t2_s)
        if received.request.method != "INVITE":
            raise LocalProtocolError(f"an InviteServer starts from an INVITE, not "
                                     f"{received.request.method}")
        self.transaction: ServerTransaction = received.transaction
        self.invite: Request = received.request
        self.offer: bytes = received.request.body
        self.to_tag = to_tag
        self.contact = contact
        self.final_status: int | None = None

    # -- answering the initial INVITE

    def ring(self, now: float) -> None:
        self._provisional(180, b"", now)

    def early_media(self, sdp: bytes, now: float) -> None:
        self._provisional(183, sdp, now)

    def answer(self, sdp: bytes, now: float) -> None:
        self._check_unanswered()
        self.final_status = 200
        response = self._dialog_response(200, b"")
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.invite, response)
        self.dialog.send_response(response)
        self._send_2xx(self.transaction, sdp, now, contact=self.contact)

    def reject(self, status: int, now: float, reason: str | None = None) -> None:
        if not 300 <= status <= 699:
            raise LocalProtocolError(f"reject needs a 3xx-6xx status, got {status}")
        self._check_unanswered()
        self.final_status = status
        response = build_response(self.invite, status, reason, to_tag=self.to_tag)
        if self.dialog is not None:
            self.dialog.send_response(response)
        self.layer.send_response(self.transaction, response, now)
        self._end(str(status))

    def _provisional(self, status: int, sdp: bytes, now: float) -> None:
        self._check_unanswered()
        response = self._dialog_response(status, sdp)
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.invite, response)
        self.layer.send_response(self.transaction, response, now)

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
        if isinstance(event, RequestReceived) and event.request.method == "CANCEL":
            self._on_cancel(event.transaction, event.request, now)
            return
        super().handle(event, now)

    def _on_cancel(self, txn: ServerTransaction, cancel: Request, now: float) -> None:
        if self.layer.find_server_transaction_for_cancel(cancel) is not self.transaction:
            self.layer.send_response(txn, build_response(cancel, 481), now)
            return
        self.layer.send_response(txn, build_response(cancel, 200, to_tag=self.to_tag), now)
        if self.final_status is not None:
            return  # too late: the INVITE has its final answer already
        self.final_status = 487
        terminated = build_response(self.invite, 487, to_tag=self.to_tag)
        if self.dialog is not None:
            self.dialog.send_response(terminated)
        self.layer.send_response(self.transaction, terminated, now)
        self._events.append(Cancelled())
        self._end("cancelled")
