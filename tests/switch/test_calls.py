"""Call control (B2BUA) with three sans-I/O parties in memory, on the call-control
harness (tests/switch/harness.DirectNet): a caller phone (InviteClient), the switch
(CallControl on its own TransactionLayer, FakeMediaEngine) and a callee phone
(InviteServer). Real bytes cross the wire; time moves only when told."""

from __future__ import annotations

import pytest

from switch.calls import CallSettings, CallState, map_failure
from switch.media import RtpTimedOut
from switch.sip import (
    Answered,
    ByeReceived,
    Cancelled,
    Ended,
    InviteEvent,
    InviteServer,
    Outgoing,
    Peer,
    ReinviteAnswered,
    Rejected,
    Request,
    Response,
    Ringing,
    SessionDescription,
    TransactionLayer,
    Via,
    negotiate_answer,
    parse_message,
)
from switch.sip.offer_answer import PCMA, PCMU, TELEPHONE_EVENT, Codec
from tests.switch.harness import DirectNet, counter, sdp

CALLER = Peer("UDP", "10.0.0.1", 5060)
CALLEE = Peer("UDP", "10.0.0.2", 5060)
MEDIA_ADDRESS = "10.0.0.9"


def phone_sdp(address: str, port: int,
              codecs: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT)) -> bytes:
    return sdp(address, port, codecs=codecs)


def audio(sdp: bytes) -> tuple[str, int, tuple[str, ...]]:
    session = SessionDescription.parse(sdp)
    media = session.media[0]
    connection = media.connection or session.connection
    assert connection is not None
    return connection.address, media.port, media.formats


class Network(DirectNet):
    """The harness's DirectNet with call control's default settings, and in it one call:
    "Alice" (1001, at CALLER; authenticated as `calling_extension` if given) calls 1002
    (at CALLEE), whose phone has been offered it and not answered yet."""

    def __init__(self, caller_offer: bytes | None = None,
                 calling_extension: str | None = None) -> None:
        super().__init__(CallSettings())
        self.drop_caller_acks = False  # a test sends the caller's ACK itself
        self.losses.append(self._lose)
        self.caller_phone = self.party(calling_extension or "1001", CALLER.host)
        self.callee_phone = self.party("1002", CALLEE.host)
        self.extensions["1002"] = self.callee_phone
        self.caller = self.dial(
            self.caller_phone, "1002", from_user="1001", display="Alice",
            call_id="caller-call",
            offer=caller_offer if caller_offer is not None else phone_sdp("10.0.0.1", 4000))

    def _lose(self, source: Peer, out: Outgoing) -> bool:
        if source == CALLER:
            return self.drop_caller_acks and out.data.startswith(b"ACK ")
        # A request for another phone (a fork) we do not play.
        return out.peer == CALLEE and self.callee is not None and \
            parse_message(out.data).to.tag not in (None, self.callee.to_tag)

    @property
    def callee(self) -> InviteServer | None:
        return self.callee_phone.incoming[0] if self.callee_phone.incoming else None

    @property
    def bob(self) -> InviteServer:
        assert self.callee is not None
        return self.callee

    @property
    def callee_invite(self) -> Request | None:
        return self.callee.invite if self.callee is not None else None

    @property
    def caller_events(self) -> list[InviteEvent]:
        return self.caller_phone.events_of(self.caller)

    @property
    def callee_events(self) -> list[InviteEvent]:
        return self.callee_phone.events_of(self.callee) if self.callee is not None else []

    def answered_call(self) -> None:
        self.bob.ring(self.now)
        self.pump()
        self.bob.answer(phone_sdp("10.0.0.2", 6000), self.now)
        self.pump()


def test_answered_call_anchors_media_in_the_engine_both_ways() -> None:
    net = Network()
    # The callee is offered our second engine leg, in the caller's codec only.
    assert net.callee_invite is not None
    assert net.callee_invite.uri.serialize() == "sip:1002@10.0.0.2:5060"
    assert net.callee_invite.from_.uri.serialize() == "sip:1001@10.0.0.9"
    assert net.callee_invite.call_id != "caller-call"
    call = net.call()
    a_port, b_port = net.engine.leg_port(call.a.engine_leg), net.engine.leg_port(call.b.engine_leg)
    assert audio(net.callee_invite.body) == (MEDIA_ADDRESS, b_port, ("0", "101"))

    net.bob.ring(net.now)
    net.pump()
    assert net.caller_events == [Ringing(180)]
    assert net.call().state is CallState.RINGING

    net.bob.answer(phone_sdp("10.0.0.2", 6000), net.now)
    net.pump()
    [answered] = net.caller_events[1:]
    assert isinstance(answered, Answered)
    # The caller sees the switch's address and port, never the callee's.
    assert audio(answered.sdp) == (MEDIA_ADDRESS, a_port, ("0", "101"))
    assert call.state is CallState.ANSWERED
    legs = net.engine.legs
    assert legs[call.a.engine_leg].remote == ("10.0.0.1", 4000)
    assert legs[call.b.engine_leg].remote == ("10.0.0.2", 6000)
    assert legs[call.a.engine_leg].peer == call.b.engine_leg
    assert legs[call.b.engine_leg].peer == call.a.engine_leg


def test_callee_sees_the_authenticated_extension_not_the_callers_from() -> None:
    # The caller's From says 1001; it authenticated as 1003: the callee is told 1003.
    net = Network(calling_extension="1003")
    assert net.callee_invite is not None
    assert net.callee_invite.from_.uri.serialize() == "sip:1003@10.0.0.9"


def test_caller_codec_is_the_only_one_offered_to_the_callee() -> None:
    net = Network(caller_offer=phone_sdp("10.0.0.1", 4000, codecs=(PCMA,)))
    assert net.callee_invite is not None
    assert audio(net.callee_invite.body)[2] == ("8",)


@pytest.mark.parametrize("who", ["caller", "callee"])
def test_bye_from_either_side_ends_the_other_and_closes_media(who: str) -> None:
    net = Network()
    net.answered_call()
    call = net.call()
    (net.caller if who == "caller" else net.bob).bye(net.now)
    net.pump()
    other_events = net.callee_events if who == "caller" else net.caller_events
    assert ByeReceived() in other_events
    assert Ended("bye-received") in other_events
    assert net.causes() == [f"{who}-bye"]
    assert net.engine.legs == {}  # both engine legs closed
    assert net.control.calls == {}
    assert call.state is CallState.ENDED


def test_cancel_before_answer_reaches_the_callee_and_gives_the_caller_487() -> None:
    net = Network()
    net.bob.ring(net.now)
    net.pump()
    net.caller.cancel(net.now)
    net.pump()
    assert Cancelled() in net.caller_events
    assert net.caller.final_status == 487
    assert Cancelled() in net.callee_events
    assert net.bob.final_status == 487
    assert net.causes() == ["cancelled"]
    assert net.engine.legs == {}
    assert net.control.calls == {}


@pytest.mark.parametrize(("callee_status", "caller_status"),
                         [(486, 486), (603, 603), (404, 404), (503, 500), (408, 480)])
def test_callee_failure_is_mapped_to_the_caller(callee_status: int, caller_status: int) -> None:
    net = Network()
    net.bob.reject(callee_status, net.now)
    net.pump()
    [rejected] = [e for e in net.caller_events if isinstance(e, Rejected)]
    assert rejected.status == caller_status
    assert net.causes() == [f"rejected-{callee_status}"]
    assert net.engine.legs == {}


def test_failure_map_table() -> None:
    assert map_failure(486) == 486
    assert map_failure(302) == 480
    assert map_failure(407) == 500
    assert map_failure(600) == 600


def test_callee_never_answering_the_invite_gives_the_caller_480() -> None:
    net = Network()
    net.vanished.add(CALLEE)  # e.g. a stale registration: the INVITE goes nowhere
    net.callee_phone.layer = TransactionLayer(new_branch=counter("x"))  # nothing was received
    net.advance(40.0)  # Timer B is 64*T1 = 32 s
    [rejected] = [e for e in net.caller_events if isinstance(e, Rejected)]
    assert rejected.status == 480
    assert net.engine.legs == {}


def test_rtp_timeout_hangs_up_both_sides() -> None:
    net = Network()
    net.answered_call()
    call = net.call()
    net.media(RtpTimedOut(call.b.engine_leg, 30.0))
    # Both phones are told why: Q.850 102, recovery on timer expiry.
    timeout = ByeReceived('Q.850;cause=102;text="Recovery on timer expiry"')
    assert timeout in net.caller_events
    assert timeout in net.callee_events
    assert net.causes() == ["rtp-timeout"]
    assert net.engine.legs == {}


def test_unusable_caller_offer_is_answered_488_without_calling_anyone() -> None:
    video_only = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\n"
                  b"t=0 0\r\nm=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")
    net = Network(caller_offer=video_only)
    [rejected] = [e for e in net.caller_events if isinstance(e, Rejected)]
    assert rejected.status == 488
    assert net.callee is None
    assert net.engine.legs == {}


def test_in_dialog_request_for_a_finished_call_is_not_claimed() -> None:
    net = Network()
    net.answered_call()
    net.caller.bye(net.now)
    net.pump()
    assert not net.control.owns("caller-call")


# -- a forked callee (RFC 3261 §13.2.2.4, RFC 6026 §8.4)

def fork_200(net: Network, tag: str) -> bytes:
    """The callee's 200 as if a second phone behind a forking proxy had sent it too."""
    first = next(m for m in map(parse_message, net.sent_by(net.callee_phone))
                 if isinstance(m, Response) and m.status == 200 and m.cseq.method == "INVITE")
    first.headers.set("To", first.to.with_tag(tag).serialize())
    first.headers.set("Contact", "<sip:1002@10.0.0.3:5060>")
    first.body = phone_sdp("10.0.0.3", 7000)
    return first.serialize()


def switch_requests(net: Network, method: str, to_tag: str) -> list[Request]:
    return [m for m in map(parse_message, net.sent_to(net.callee_phone))
            if isinstance(m, Request) and m.method == method and m.to.tag == to_tag]


def test_second_fork_answer_is_acked_and_hung_up_and_the_call_goes_on() -> None:
    net = Network()
    net.answered_call()
    engine_before = dict(net.engine.legs)
    reports_before = list(net.reports)
    net.to_switch(fork_200(net, "fork"), CALLEE)
    assert [r.method for r in (*switch_requests(net, "ACK", "fork"),
                               *switch_requests(net, "BYE", "fork"))] == ["ACK", "BYE"]
    assert net.engine.legs == engine_before  # the media did not move to the fork
    assert net.reports == reports_before
    assert net.call().state is CallState.ANSWERED
    assert [e for e in net.caller_events if isinstance(e, Answered)] == net.caller_events[1:]


def test_second_fork_answer_after_the_call_ended_is_still_acked_and_hung_up() -> None:
    net = Network()
    net.answered_call()
    net.caller.bye(net.now)
    net.pump()
    assert net.control.calls == {}
    net.now = 20.0  # within 64*T1 of the first 2xx: a proxy may still pass one on
    net.to_switch(fork_200(net, "late"), CALLEE)
    assert [r.method for r in (*switch_requests(net, "ACK", "late"),
                               *switch_requests(net, "BYE", "late"))] == ["ACK", "BYE"]
    assert net.stray() == [] and net.engine.legs == {}
    assert net.control.next_deadline() == 32.0  # forgotten after Timer M
    net.advance(32.0)
    assert net.control.next_deadline() is None


# -- a late offer: an INVITE without SDP (RFC 3261 §13.2.1, RFC 3264, RFC 6337 §3.1)

def late_offer_answered(net: Network, ack_body: bytes | None) -> bytes:
    """The callee answers a late-offer call; the caller's ACK carries `ack_body` (its
    answer to the offer in our 200) instead of the body-less ACK its session sends.
    Returns our offer, as the caller got it."""
    net.drop_caller_acks = ack_body is not None
    net.answered_call()
    [answered] = [e for e in net.caller_events if isinstance(e, Answered)]
    if ack_body is not None:
        dialog = net.caller.dialog
        assert dialog is not None
        ack = dialog.create_ack(1, Via.parse(
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKlateack;rport"), body=ack_body)
        ack.headers.add("Content-Type", "application/sdp")
        net.drop_caller_acks = False
        net.to_switch(ack.serialize(), CALLER)
    return answered.sdp


def test_late_offer_from_a_phone_is_answered_with_our_offer_and_the_ack_answers() -> None:
    net = Network(caller_offer=b"")
    call = net.call()
    # The caller's codec is not known yet: the callee is offered all of ours.
    assert net.callee_invite is not None
    assert audio(net.callee_invite.body)[2] == ("0", "8", "101")
    answer = negotiate_answer(SessionDescription.parse(phone_sdp("10.0.0.9", 1)),
                              local_address="10.0.0.1", local_port=4000, session_id=7,
                              session_version=1, supported=(PCMA, TELEPHONE_EVENT)).answer
    offer = late_offer_answered(net, answer.serialize())
    a_port = net.engine.leg_port(call.a.engine_leg)
    assert audio(offer) == (MEDIA_ADDRESS, a_port, ("0", "8", "101"))
    assert call.state is CallState.ANSWERED
    a_leg = net.engine.legs[call.a.engine_leg]
    assert a_leg.remote == ("10.0.0.1", 4000)
    assert (a_leg.payload_type, a_leg.dtmf_payload_type) == (8, 101)  # the caller's pick
    assert a_leg.peer == call.b.engine_leg  # bridged; the engine relays PCMA<->PCMU
    assert net.engine.legs[call.b.engine_leg].payload_type == 0
    assert net.causes() == []


def test_late_offer_media_waits_for_the_ack() -> None:
    net = Network(caller_offer=b"")
    call = net.call()
    net.drop_caller_acks = True
    net.answered_call()
    assert net.engine.legs[call.a.engine_leg].remote is None  # no answer yet
    assert net.engine.legs[call.b.engine_leg].remote == ("10.0.0.2", 6000)


@pytest.mark.parametrize(("ack_body", "cause"), [
    (None, "caller-no-answer"),  # the caller's session sends a body-less ACK
    (b"v=0\r\no=- 7 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
     b"m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n", "caller-bad-answer"),
])
def test_late_offer_without_a_usable_answer_in_the_ack_is_hung_up(ack_body: bytes | None,
                                                                   cause: str) -> None:
    net = Network(caller_offer=b"")
    late_offer_answered(net, ack_body)
    assert net.causes() == [cause]
    incompatible = ByeReceived('Q.850;cause=88;text="Incompatible destination"')
    assert net.caller_events[-2:] == [incompatible, Ended("bye-received")]
    assert net.callee_events == [incompatible, Ended("bye-received")]
    assert net.engine.legs == {}
    assert net.control.calls == {}


def test_reinvite_without_sdp_is_answered_with_our_sdp_and_the_ack_moves_media() -> None:
    # Phones refresh sessions with a body-less re-INVITE (RFC 3261 §14.2): our 200
    # offers the SDP the caller already has; the ACK's answer may move its media.
    net = Network()
    net.answered_call()
    call = net.call()
    a_leg = net.engine.legs[call.a.engine_leg]
    net.caller.reinvite(b"", net.now)
    net.pump()  # the ACK has no SDP: the session stays as it was
    assert net.causes() == [] and a_leg.remote == ("10.0.0.1", 4000)
    net.drop_caller_acks = True
    net.caller.reinvite(b"", net.now)
    net.pump()
    ours = net.caller_events[-1]
    assert isinstance(ours, ReinviteAnswered)
    answer = negotiate_answer(SessionDescription.parse(ours.sdp), local_address="10.0.0.1",
                              local_port=4100, session_id=4000, session_version=2).answer
    dialog = net.caller.dialog
    assert dialog is not None
    ack = dialog.create_ack(3, Via.parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack3"),
                            body=answer.serialize())
    ack.headers.add("Content-Type", "application/sdp")
    net.to_switch(ack.serialize(), CALLER)
    assert a_leg.remote == ("10.0.0.1", 4100) and a_leg.peer == call.b.engine_leg
    assert net.causes() == []
