"""Transfers from agent phones: REFER (RFC 3515) in a call's dialog, blind or attended.

We are a B2BUA, so a REFER is for us to carry out, never passed on:

* Blind: `Refer-To: <sip:1003@switch>`. We ring 1003 as a new leg of the same call;
  the party that stays hears ringback; when 1003 answers it is bridged to them and the
  transferor is released. The transferor may hang up right after our 202 (most phones
  do): the call goes on without it. If 1003 does not answer, a transferor still there
  gets its party back; one that left takes the call down with it.
* Attended (consultative): `Refer-To: <sip:1003@switch?Replaces=...>` naming the
  transferor's other dialog with us, the consultation call. Both parties are already
  up, so nothing is dialled: the engine bridges the party that stays with the one
  consulted, and both of the transferor's legs are released (RFC 3891 semantics,
  carried out inside the switch).

Progress goes back to the transferor as NOTIFYs with sipfrag bodies (RFC 3515 §2.4.5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from switch.calls.events import CallTransferred, LegAdded, LegAnswered, LegEnded
from switch.calls.legs import Leg
from switch.sip import (
    Answered,
    ByeReceived,
    DialogRequest,
    EarlyMedia,
    Ended,
    InviteEvent,
    ReferError,
    ReferTo,
    Rejected,
    Ringing,
    SipUri,
    TelUri,
    notify_headers,
    sipfrag,
)

if TYPE_CHECKING:
    from switch.calls.host import CallHost
    from switch.calls.media import Tone
    from switch.calls.types import DialTarget

__all__ = ["PendingTransfer", "TransferredCall", "on_refer", "on_target_event", "transferor_left"]

log = logging.getLogger("callcenter.calls")


class TransferredCall(Protocol):
    """What a transfer may do to the call it happens in (`Call` offers it) and to the
    consultation call an attended transfer takes a party from: nothing more."""

    call_id: str
    transfer: PendingTransfer | None  # a blind transfer ringing
    answered_at: float | None

    @property
    def control(self) -> CallHost: ...
    def other(self, leg: Leg) -> Leg | None: ...
    def resolve(self, number: str, now: float) -> DialTarget | int: ...
    def dial_extra(self, target: DialTarget, now: float) -> Leg | None: ...
    def play_to(self, leg: Leg, tone: Tone) -> None: ...
    def leg_ringing(self, leg: Leg) -> None: ...
    def replace(self, old: Leg, new: Leg, now: float) -> None: ...
    def drop_extra(self, leg: Leg, status: int) -> None: ...
    def detach(self, leg: Leg) -> None: ...
    def restore_after_transfer(self) -> None: ...
    def release_leg(self, leg: Leg) -> None: ...
    def adopt_leg(self, leg: Leg) -> None: ...
    def next_leg_index(self) -> int: ...
    def hang_up(self, now: float, *, cause: str = ...) -> None: ...


@dataclass(slots=True)
class PendingTransfer:
    transferor: Leg
    refer_cseq: int  # the REFER's CSeq: the id of its NOTIFYs
    target: Leg | None = None  # the leg we ring (blind)
    transferor_left: bool = False


def _notify(leg: Leg, cseq: int, status: int, now: float, *, final: bool) -> None:
    if leg.ended:
        return
    leg.session.send_request("NOTIFY", now, headers=notify_headers(cseq, terminated=final),
                             body=sipfrag(status))


def on_refer(call: TransferredCall, leg: Leg, event: DialogRequest, now: float) -> None:
    """A REFER arrived in `leg`'s dialog."""
    request = event.request
    session = leg.session

    def refuse(status: int) -> None:
        session.respond(event.transaction, status, now)

    if leg.kind.trunk:
        refuse(403)  # the PSTN side does not transfer our calls
        return
    value = request.headers.get("Refer-To")
    try:
        refer_to = ReferTo.parse(value or "")
    except ReferError:
        refuse(400)
        return
    stayer = call.other(leg)
    if stayer is None or call.transfer is not None or call.answered_at is None \
            or not stayer.answered:
        refuse(491 if call.transfer is not None else 403)
        return
    cseq = request.cseq.seq
    session.respond(event.transaction, 202, now)
    _notify(leg, cseq, 100, now, final=False)
    if refer_to.replaces is not None:
        _attended(call, leg, stayer, refer_to, cseq, now)
    else:
        _blind(call, leg, stayer, refer_to, cseq, now)


def _blind(call: TransferredCall, transferor: Leg, stayer: Leg, refer_to: ReferTo, cseq: int,
           now: float) -> None:
    uri = refer_to.target
    number = uri.user if isinstance(uri, SipUri) else uri.number \
        if isinstance(uri, TelUri) else None
    target = call.resolve(number, now) if number else 404
    if isinstance(target, int):
        _notify(transferor, cseq, target, now, final=True)
        return
    transfer = PendingTransfer(transferor, cseq)
    call.transfer = transfer
    transfer.target = call.dial_extra(target, now)
    if transfer.target is None:
        call.transfer = None
        _notify(transferor, cseq, 503, now, final=True)
        return
    log.info("call %s: blind transfer by %s to %s", call.call_id, transferor.kind.name,
             number)
    call.play_to(stayer, "ringback")


def on_target_event(call: TransferredCall, leg: Leg, event: InviteEvent, now: float) -> None:
    """An event of the leg a blind transfer rings."""
    transfer = call.transfer
    assert transfer is not None and transfer.target is leg
    transferor = transfer.transferor
    if isinstance(event, Answered):
        if not leg.take_answer(event.sdp):
            leg.hang_up(now)
            _target_failed(call, transfer, 488, now)
            return
        leg.answered = True
        call.transfer = None
        call.control.report(LegAnswered(call.call_id, leg.index))
        call.control.report(CallTransferred(call.call_id, "blind", transferor.kind.name,
                                            leg.kind.name))
        _notify(transferor, transfer.refer_cseq, 200, now, final=True)
        call.replace(transferor, leg, now)
    elif isinstance(event, Ringing | EarlyMedia):
        call.leg_ringing(leg)  # the party that stays hears our ringback already
    elif isinstance(event, Rejected):
        _target_failed(call, transfer, event.status, now)
    elif isinstance(event, ByeReceived | Ended) and not leg.answered:
        _target_failed(call, transfer, 480, now)


def _target_failed(call: TransferredCall, transfer: PendingTransfer, status: int,
                   now: float) -> None:
    call.transfer = None
    leg = transfer.target
    assert leg is not None
    call.drop_extra(leg, status)
    log.info("call %s: transfer target failed with %d", call.call_id, status)
    if transfer.transferor_left:
        call.hang_up(now, cause="transfer-failed")
        return
    _notify(transfer.transferor, transfer.refer_cseq, status, now, final=True)
    call.restore_after_transfer()


def transferor_left(call: TransferredCall, leg: Leg) -> bool:
    """The transferor hung up while its blind transfer rings: the call goes on."""
    transfer = call.transfer
    if transfer is None or transfer.transferor is not leg:
        return False
    transfer.transferor_left = True
    call.detach(leg)
    return True


def _attended(call: TransferredCall, transferor: Leg, stayer: Leg, refer_to: ReferTo, cseq: int,
              now: float) -> None:
    replaces = refer_to.replaces
    assert replaces is not None
    found = call.control.find_leg(replaces.call_id)
    consulted_call, replaced = found if found is not None else (None, None)
    dialog = replaced.session.dialog if replaced is not None else None
    if consulted_call is None or replaced is None or dialog is None or consulted_call is call \
            or not replaces.matches(dialog.id.call_id, dialog.id.local_tag,
                                    dialog.id.remote_tag):
        _notify(transferor, cseq, 481, now, final=True)
        return
    consulted = consulted_call.other(replaced)
    if consulted is None or not consulted.answered:
        _notify(transferor, cseq, 487, now, final=True)
        return
    log.info("call %s: attended transfer by %s: %s joins from call %s", call.call_id,
             transferor.kind.name, consulted.kind.name, consulted_call.call_id)
    _notify(transferor, cseq, 200, now, final=True)
    # The consulted party leaves the consultation call (its CDR ends there) and takes
    # the transferor's place in this one.
    consulted_call.release_leg(consulted)
    consulted_call.control.report(LegEnded(consulted_call.call_id, consulted.index, None, None))
    consulted.index = call.next_leg_index()
    call.control.report(LegAdded(call.call_id, consulted.index, consulted.kind.name,
                                 consulted.sip_call_id))
    call.control.report(LegAnswered(call.call_id, consulted.index))
    call.control.report(CallTransferred(call.call_id, "attended", transferor.kind.name,
                                        consulted.kind.name))
    call.adopt_leg(consulted)
    call.replace(transferor, consulted, now)
    consulted_call.hang_up(now, cause="transferred")
    consulted_call.control.drain(consulted_call, now)
