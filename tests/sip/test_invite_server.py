"""InviteServer: extra headers on its answers, in-dialog requests from the caller,
and the RFC 4028 check made on the initial INVITE (422 and Min-SE)."""

from __future__ import annotations

import pytest

from switch.sip.errors import LocalProtocolError
from switch.sip.invite_client import (
    AnswerReceived,
    DialogRequest,
    Ended,
    ReinviteAnswered,
    Rejected,
    Resumed,
    Ringing,
)
from switch.sip.message import Response
from tests.sip.test_invite_client import ALICE, REASON, T1, Call, sdp

PAI = ("P-Asserted-Identity", '"Service Desk" <sip:10086@example.com>')


def test_ring_and_answer_carry_the_owners_headers() -> None:
    call = Call()
    call.bob.ring(call.now, headers=[PAI, ("Privacy", "id")])
    call.pump()
    call.bob.answer(sdp(6000), call.now, headers=[PAI])
    call.pump()
    ringing, ok = (call.sent_messages("bob", b"SIP/2.0 180")[0],
                   call.sent_messages("bob", b"SIP/2.0 200")[0])
    assert ringing.headers.get("P-Asserted-Identity") == PAI[1]
    assert ringing.headers.get("Privacy") == "id"
    assert ok.headers.get("P-Asserted-Identity") == PAI[1]
    assert ok.body == sdp(6000)
    assert len(ok.headers.get_all("Contact")) == 1


def test_early_media_carries_the_owners_headers() -> None:
    call = Call()
    call.bob.early_media(sdp(6000), call.now, headers=[PAI])
    call.pump()
    progress = call.sent_messages("bob", b"SIP/2.0 183")[0]
    assert progress.headers.get("P-Asserted-Identity") == PAI[1]
    assert progress.content_type == "application/sdp"


def test_reject_with_reason_and_a_redirect_contact() -> None:
    call = Call()
    call.bob.reject(302, call.now, headers=[("Contact", "<sip:desk@10.0.0.7>"),
                                            ("Reason", REASON)])
    call.pump()
    moved = call.sent_messages("bob", b"SIP/2.0 302")[0]
    assert moved.headers.get("Contact") == "<sip:desk@10.0.0.7>"
    assert call.alice_events == [Rejected(302, "Moved Temporarily", REASON), Ended("302")]


@pytest.mark.parametrize("name", ["Contact", "Content-Type", "To", "Via"])
def test_answer_refuses_headers_the_session_writes(name: str) -> None:
    call = Call()
    with pytest.raises(LocalProtocolError, match=rf"^the session sets the {name} header"):
        call.bob.answer(sdp(6000), call.now, headers=[(name, "x")])


def test_info_during_ringing_goes_to_the_owner() -> None:
    call = Call()
    call.bob.ring(call.now)
    call.pump()
    assert call.client.early  # Alice has the early dialog from the 180
    dialog = next(iter(call.client.early.values()))
    info = dialog.create_request("INFO", via=call.client._via())
    call.alice_layer.send_request(info, call.client.peer, call.now)
    call.pump()
    event = call.bob_events[-1]
    assert isinstance(event, DialogRequest) and event.request.method == "INFO"
    call.bob.respond(event.transaction, 200, call.now)
    call.pump()
    answer = call.sent_messages("bob", b"SIP/2.0 200")[-1]
    assert isinstance(answer, Response) and answer.cseq.method == "INFO"
    assert call.alice_events == [Ringing(180)]


# -- RFC 4028 on the initial INVITE

def test_interval_below_our_min_se_is_answered_422_by_answer() -> None:
    call = Call(alice={"session_expires_s": 90},
                bob={"session_expires_s": 1800, "min_se_s": 600})
    call.bob.ring(call.now)
    call.pump()
    first = call.bob
    assert first.session_interval_too_small()
    first.answer(sdp(6000), call.now)
    call.pump()
    too_small = call.sent_messages("bob", b"SIP/2.0 422")[0]
    assert too_small.headers.get("Min-SE") == "600"
    assert call.sent("bob", b"SIP/2.0 200") == []
    assert call.bob_events[0] == Ended("422")
    # The caller's retry (RFC 4028 §7.3) is a new INVITE, hence a new InviteServer.
    assert call.bob is not first
    assert not call.bob.session_interval_too_small()
    with pytest.raises(LocalProtocolError, match=r"^the INVITE was already answered 422$"):
        first.answer(sdp(6000), call.now)


def test_owner_may_reject_422_early_and_min_se_is_added() -> None:
    call = Call(alice={"session_expires_s": 120},
                bob={"session_expires_s": 1800, "min_se_s": 300})
    assert call.bob.session_interval_too_small()
    call.bob.reject(422, call.now)
    call.pump()
    assert call.sent_messages("bob", b"SIP/2.0 422")[0].headers.get("Min-SE") == "300"


def test_without_timers_a_small_interval_is_accepted_as_today() -> None:
    call = Call(alice={"session_expires_s": 90})
    assert not call.bob.session_interval_too_small()
    call.answered()
    ok = call.sent_messages("bob", b"SIP/2.0 200")[0]
    assert ok.headers.get("Session-Expires") is None and ok.headers.get("Require") is None
    assert call.bob.timer is None and call.bob.next_deadline() is None


# -- a late offer (RFC 3261 §13.2.1): the INVITE has no SDP, our 2xx the offer

def test_late_offer_our_2xx_offers_and_the_ack_answers() -> None:
    call = Call(alice={"offer": b""})
    assert call.bob.late_offer and not call.bob.early_sdp_allowed
    call.drop = lambda side, data: data.startswith(b"ACK")  # the test sends Alice's ACK
    call.bob.ring(call.now)
    call.pump()
    call.bob.answer(sdp(6000), call.now)  # our offer
    call.pump()
    ok = call.sent_messages("bob", b"SIP/2.0 200")[0]
    assert ok.body == sdp(6000) and ok.content_type == "application/sdp"
    assert call.bob_events == []  # nothing until the ACK
    dialog = call.client.dialog
    assert dialog is not None
    ack = dialog.create_ack(1, call.client._via(), body=sdp(4000))
    ack.headers.add("Content-Type", "application/sdp")
    call.bob_layer.receive(ack, ALICE, call.now)
    call.pump()
    assert call.bob_events == [AnswerReceived(sdp(4000))]
    assert call.bob.next_deadline() is None  # the ACK stopped the 2xx retransmissions
    call.bob_layer.receive(ack, ALICE, call.now)  # a second ACK (for a resent 2xx)
    call.pump()
    assert call.bob_events == [AnswerReceived(sdp(4000))]


def test_late_offer_ack_without_sdp_is_reported_empty() -> None:
    call = Call(alice={"offer": b""})
    call.answered()
    assert call.bob_events == [AnswerReceived(b"")]


def test_an_offer_to_an_ack_is_not_news() -> None:
    call = Call()  # the INVITE had an offer: its ACK answers nothing
    call.answered()
    assert call.bob_events == []


def test_late_offer_refuses_sdp_in_an_unreliable_provisional() -> None:
    call = Call(alice={"offer": b""})
    with pytest.raises(LocalProtocolError, match=r"^the INVITE has no offer: ours goes in "
                                                 r"the 2xx, not in an unreliable"):
        call.bob.early_media(sdp(6000), call.now)


# -- a re-INVITE without an offer (RFC 3261 §14.2), e.g. a session refresh

def test_reinvite_without_sdp_gets_our_sdp_as_the_offer_and_the_ack_answers() -> None:
    call = Call()
    call.answered()
    call.drop = lambda side, data: data.startswith(b"ACK")
    call.client.reinvite(b"", call.now)
    call.pump()
    assert call.bob_events == []  # answered by the session itself, waiting for the ACK
    call.drop = lambda side, data: False
    call.advance(T1)  # the 200 again, and Alice's ACK again
    ok = call.sent_messages("bob", b"SIP/2.0 200")[-1]
    assert ok.cseq.seq == 2 and ok.body == sdp(6000)  # the SDP we have, unchanged
    assert call.alice_events[-1] == ReinviteAnswered(sdp(6000))
    assert call.bob_events == [AnswerReceived(b"")]  # Alice's ACK had no answer
    assert call.bob.next_deadline() is None and not call.bob.ended


def test_reinvite_with_unreadable_sdp_is_left_to_the_owner() -> None:
    call = Call()
    call.answered()
    call.client.reinvite(b"not sdp at all", call.now)
    call.pump()
    assert call.bob_events == [Resumed(b"not sdp at all")]  # was an SdpError escaping
