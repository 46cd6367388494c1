"""Reliable provisional responses (RFC 3262) between Alice's InviteClient and Bob's
InviteServer in memory, time stepped by hand: RSeq and RAck, retransmission from T1
doubling (no cap) until the PRACK, the 5xx after 64*T1, one reliable 18x at a time,
the 2xx held for the PRACK of an 18x with SDP, and a late offer answered in the PRACK."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.sip.errors import LocalProtocolError
from switch.sip.headers import HeaderError
from switch.sip.invite_client import (
    Answered,
    AnswerReceived,
    EarlyMedia,
    Ended,
    Rejected,
    Ringing,
)
from switch.sip.message import Request, Response, parse_message
from switch.sip.reliable_provisional import ProvisionalSequence, RAck, ReliableProvisionals
from tests.sip.test_invite_client import ALICE, BOB, T1, Call, sdp

REQUIRE = {"reliable_provisional": True, "extra_headers": [("Require", "100rel")]}
SUPPORTED = {"reliable_provisional": True}


def pracks(call: Call) -> list[Request]:
    """Alice's PRACKs, one per transaction (Timer E resends of one count once)."""
    seen: dict[int, Request] = {}
    for message in call.sent_messages("alice", b"PRACK "):
        assert isinstance(message, Request)
        seen.setdefault(message.cseq.seq, message)
    return list(seen.values())


def provisionals(call: Call, status: bytes) -> list[Response]:
    return [m for m in call.sent_messages("bob", b"SIP/2.0 " + status)
            if isinstance(m, Response)]


def drop_pracks(call: Call, count: int = 10**9) -> None:
    lost = [count]

    def drop(side: str, data: bytes) -> bool:
        if data.startswith(b"PRACK ") and lost[0] > 0:
            lost[0] -= 1
            return True
        return False

    call.drop = drop


def send_prack(call: Call, rack: str) -> None:
    """A PRACK of Alice's own making, in her early dialog with Bob."""
    early = call.client.early["bobtag"]
    prack = early.create_request("PRACK", via=call.client._via(), headers=[("RAck", rack)])
    call.bob_layer.receive(prack, ALICE, call.now)
    call.pump()


# -- UAS: RSeq, PRACK, retransmission (§3)

def test_required_100rel_makes_180_reliable_and_the_prack_gets_200() -> None:
    call = Call(alice=REQUIRE, bob={"rseq_random": lambda n: 41})
    assert call.bob.requires_100rel
    call.bob.ring(call.now)
    call.pump()
    [ringing] = provisionals(call, b"180")
    assert ringing.headers.get("Require") == "100rel"
    assert ringing.headers.get("RSeq") == "42"  # 1 + the drawn 41
    [prack] = pracks(call)
    assert prack.headers.get("RAck") == "42 1 INVITE"
    assert prack.cseq.seq == 2 and prack.to.tag == "bobtag"
    [ok] = [m for m in call.sent_messages("bob", b"SIP/2.0 200")
            if isinstance(m, Response) and m.cseq.method == "PRACK"]
    assert ok.to.tag == "bobtag"
    assert call.alice_events == [Ringing(180)]
    assert call.bob.next_deadline() is None  # nothing to retransmit
    call.bob.answer(sdp(6000), call.now)
    call.pump()
    assert call.alice_events[-1] == Answered(sdp(6000))
    # The BYE follows the PRACK in Alice's numbering.
    call.client.bye(call.now)
    call.pump()
    assert call.sent_messages("alice", b"BYE ")[0].cseq.seq == 3


def test_unacknowledged_180_is_resent_from_t1_doubling_then_the_invite_gets_504() -> None:
    call = Call(alice=REQUIRE)
    drop_pracks(call)
    call.bob.ring(call.now)
    call.pump()
    assert call.bob.next_deadline() == T1
    sent_at = []
    while (deadline := call.bob.next_deadline()) is not None and deadline <= 64 * T1:
        call.advance(deadline)
        sent_at.append(call.now)
    # Resent at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 (intervals T1, 2T1 ... 32T1: no T2 cap),
    # and at 64*T1 = 32 s the INVITE is rejected with a 5xx.
    assert sent_at[:6] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert len(provisionals(call, b"180")) == 7
    assert sent_at[6] == 64 * T1 and call.bob_events == [Ended("504")]
    assert call.alice_events[-2:] == [Rejected(504, "Server Time-out"), Ended("504")]
    assert len(pracks(call)) == 1  # one PRACK per RSeq: resends are not PRACKed again
    assert call.alice_events.count(Ringing(180)) == 1  # nor reported again


def test_a_second_reliable_provisional_waits_for_the_first_prack() -> None:
    call = Call(alice=REQUIRE)
    drop_pracks(call, count=1)  # the first PRACK is lost; Timer E resends it at T1
    call.bob.ring(call.now)
    call.pump()
    call.bob.early_media(sdp(6000), call.now)
    call.pump()
    assert provisionals(call, b"183") == []  # §3: not before the 180 is PRACKed
    call.advance(T1)  # Timer E: the PRACK again (and Bob's 180 again, at the same time)
    [progress] = provisionals(call, b"183")
    assert progress.headers.get("RSeq") == "2"
    assert [p.headers.get("RAck") for p in pracks(call)] == ["1 1 INVITE", "2 1 INVITE"]
    assert call.alice_events == [Ringing(180), EarlyMedia(sdp(6000))]


def test_supported_only_makes_just_the_18x_with_sdp_reliable() -> None:
    call = Call(alice=SUPPORTED)
    call.bob.ring(call.now)
    call.pump()
    assert provisionals(call, b"180")[0].headers.get("RSeq") is None
    call.bob.early_media(sdp(6000), call.now)
    call.pump()
    assert provisionals(call, b"183")[0].headers.get("RSeq") == "1"
    assert len(pracks(call)) == 1


def test_the_2xx_waits_for_the_prack_of_an_18x_with_sdp() -> None:
    call = Call(alice=SUPPORTED)
    drop_pracks(call, count=1)
    call.bob.early_media(sdp(6000), call.now)
    call.pump()
    call.bob.answer(sdp(6000), call.now)
    call.pump()
    assert [m for m in call.sent_messages("bob", b"SIP/2.0 200")] == []  # §3: held back
    call.advance(T1)  # Alice's PRACK transaction resends it (Timer E)
    [ok_prack, ok_invite] = call.sent_messages("bob", b"SIP/2.0 200")
    assert (ok_prack.cseq.method, ok_invite.cseq.method) == ("PRACK", "INVITE")
    assert call.alice_events == [EarlyMedia(sdp(6000)), Answered(sdp(6000))]


def test_a_prack_matching_nothing_gets_481() -> None:
    call = Call(alice=REQUIRE)
    call.bob.ring(call.now)
    call.pump()
    send_prack(call, "7 1 INVITE")
    assert call.sent("bob", b"SIP/2.0 481")


def test_a_late_offer_goes_in_a_reliable_183_and_the_prack_answers() -> None:
    call = Call(alice={**SUPPORTED, "offer": b""})
    assert call.bob.early_sdp_allowed  # the caller takes reliable provisional responses
    call.bob.early_media(sdp(6000), call.now)  # our offer
    call.pump()
    assert call.bob_events == [AnswerReceived(b"")]  # Alice's PRACK had no answer
    call.bob.answer(sdp(6000), call.now)
    call.pump()
    assert call.bob_events == [AnswerReceived(b"")]  # the ACK answers nothing more


# -- UAC: which reliable provisional responses to PRACK (§4)

def test_out_of_order_and_retransmitted_reliable_18x_are_not_pracked() -> None:
    call = Call(alice=REQUIRE)
    call.bob.ring(call.now)
    call.pump()
    [ringing] = provisionals(call, b"180")
    skipped = parse_message(ringing.serialize())
    skipped.headers.set("RSeq", "3")  # 2 never came
    for response in (ringing, skipped):
        call.alice_layer.receive(parse_message(response.serialize()), BOB, call.now)
        call.pump()
    assert len(pracks(call)) == 1
    assert call.alice_events == [Ringing(180)]


def test_provisional_sequence_takes_the_first_then_only_the_next() -> None:
    sequence = ProvisionalSequence()
    assert [sequence.accept(n) for n in (10, 10, 12, 11, 12)] == [True, False, False, True,
                                                                   True]


# -- the pieces

@pytest.mark.parametrize(("value", "rack"), [("776656 1 INVITE", RAck(776656, 1, "INVITE")),
                                             ("1  2\tINVITE", RAck(1, 2, "INVITE"))])
def test_rack_round_trip(value: str, rack: RAck) -> None:
    assert RAck.parse(value) == rack
    assert RAck.parse(rack.serialize()) == rack


@pytest.mark.parametrize("value", ["", "1 INVITE", "x 1 INVITE", "1 2 INVITE extra"])
def test_rack_errors(value: str) -> None:
    with pytest.raises(HeaderError, match=r"^RAck must be '<rseq> <cseq> <method>', got "):
        RAck.parse(value)


@pytest.mark.parametrize("first", [0, 2**31])
def test_first_rseq_outside_the_rfc_range_is_our_bug(first: int) -> None:
    with pytest.raises(LocalProtocolError, match=r"^the first RSeq must be 1-2147483647"):
        ReliableProvisionals(1, first, T1)


def test_the_first_rseq_drawn_may_be_the_largest_allowed() -> None:
    call = Call(alice=REQUIRE, bob={"rseq_random": lambda n: n - 1})
    call.bob.ring(call.now)
    call.pump()
    assert provisionals(call, b"180")[0].headers.get("RSeq") == str(2**31 - 1)


def test_a_prack_without_reliable_provisional_responses_gets_481() -> None:
    call = Call(alice=SUPPORTED)
    call.bob.ring(call.now)  # unreliable: only Supported, and no SDP
    call.pump()
    send_prack(call, "1 1 INVITE")
    assert call.sent("bob", b"SIP/2.0 481") and call.bob_events == []


def test_a_late_offer_requiring_100rel_may_not_ring_without_our_offer() -> None:
    call = Call(alice={**REQUIRE, "offer": b""})
    assert call.bob.ring_needs_offer
    with pytest.raises(LocalProtocolError, match=r"^the INVITE has no offer and requires "
                                                 r"100rel: the first reliable 18x carries"):
        call.bob.ring(call.now)
    call.bob.early_media(sdp(6000), call.now)
    call.pump()
    assert not call.bob.ring_needs_offer
    call.bob.ring(call.now)  # later 18x need not repeat it
    call.pump()
    assert [r.headers.get("RSeq") for r in provisionals(call, b"18")] == ["1", "2"]


# -- any order of sends, PRACKs and timers (Hypothesis)

STEPS = st.lists(st.tuples(st.sampled_from(["send", "send-sdp", "prack", "bad-prack", "wait"]),
                           st.floats(0.0, 40.0)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(steps=STEPS, first=st.integers(1, 2**31 - 1))
def test_reliable_provisionals_stay_in_order_one_at_a_time(
        steps: list[tuple[str, float]], first: int) -> None:
    reliable = ReliableProvisionals(1, first, T1)
    now, on_wire, acked = 0.0, [], []
    for step, amount in steps:
        if step.startswith("send"):
            response = Response(183, "Session Progress", body=b"v=0\r\n" * (step == "send-sdp"))
            sent = reliable.send(response, now)
            if sent is not None:
                on_wire.append(int(sent.headers.get("RSeq") or 0))
        elif step in ("prack", "bad-prack") and on_wire:
            rseq = on_wire[-1] + (step == "bad-prack")
            got, following = reliable.prack(RAck(rseq, 1, "INVITE"), now)
            if got is not None:
                acked.append(rseq)
            if following is not None:
                on_wire.append(int(following.headers.get("RSeq") or 0))
        elif step == "wait":
            now += amount
            if reliable.expired(now):
                reliable.stop()
            elif (again := reliable.retransmission(now)) is not None:
                assert int(again.headers.get("RSeq") or 0) == on_wire[-1]
        # RSeq counts up by one from the first (§3), every one PRACKed at most once,
        # and only the newest on the wire may be waiting for its PRACK.
        assert on_wire == list(range(first, first + len(on_wire)))
        assert acked == sorted(set(acked))
        assert all(rseq in on_wire for rseq in acked)
        deadline = reliable.next_deadline()
        assert deadline is None or deadline > now - 1e-9
