"""InviteClient and InviteServer wired through two TransactionLayers in memory.

Real bytes cross the "wire" (parse_message on every hop); time only moves when a test
calls `advance`, so retransmission schedules are asserted exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from switch.sip.headers import NameAddr
from switch.sip.invite_client import (
    Answered,
    ByeReceived,
    Cancelled,
    EarlyMedia,
    Ended,
    Held,
    InviteClient,
    InviteEvent,
    Rejected,
    Resumed,
    Ringing,
)
from switch.sip.invite_server import InviteServer
from switch.sip.message import Request, parse_message
from switch.sip.offer_answer import build_offer
from switch.sip.peer import Peer
from switch.sip.sdp import Direction
from switch.sip.transaction import RequestReceived, TransactionLayer
from switch.sip.transport import stamp_via

ALICE = Peer("UDP", "10.0.0.1", 5060)
BOB = Peer("UDP", "10.0.0.2", 5060)
T1 = 0.5


def sdp(port: int, version: int = 1, direction: Direction = Direction.SENDRECV) -> bytes:
    return build_offer("10.0.0.9", port, session_id=port, session_version=version,
                       direction=direction).serialize()


def branches(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"z9hG4bK{prefix}{next(counter)}"


class Call:
    """Alice (InviteClient) calls Bob (InviteServer); the test is the network."""

    def __init__(self) -> None:
        self.now = 0.0
        self.alice_layer = TransactionLayer(new_branch=branches("a"))
        self.bob_layer = TransactionLayer(new_branch=branches("b"))
        self.drop: Callable[[str, bytes], bool] = lambda side, data: False
        self.wire: list[tuple[str, bytes]] = []
        self.server: InviteServer | None = None
        self.alice_events: list[InviteEvent] = []
        self.bob_events: list[InviteEvent] = []
        self.client = InviteClient(
            self.alice_layer, BOB, request_uri="sip:bob@10.0.0.2",
            from_=NameAddr.parse("<sip:alice@example.com>;tag=alicetag"),
            to=NameAddr.parse("<sip:bob@example.com>"),
            contact=NameAddr.parse("<sip:alice@10.0.0.1:5060>"), call_id="call-1",
            offer=sdp(4000), via_host="10.0.0.1", via_port=5060, now=self.now)
        self.pump()

    @property
    def bob(self) -> InviteServer:
        assert self.server is not None
        return self.server

    def pump(self) -> None:
        moving = True
        while moving:
            moving = False
            for side, src, dst, source in (("alice", self.alice_layer, self.bob_layer, ALICE),
                                           ("bob", self.bob_layer, self.alice_layer, BOB)):
                for out in src.outgoing():
                    self.wire.append((side, out.data))
                    if self.drop(side, out.data):
                        continue
                    message = parse_message(out.data)
                    if isinstance(message, Request):
                        stamp_via(message, source)
                    dst.receive(message, source, self.now)
                    moving = True
            alice_in, bob_in = self.alice_layer.events(), self.bob_layer.events()
            moving = moving or bool(alice_in or bob_in)  # handling them may send more
            for event in alice_in:
                self.client.handle(event, self.now)
            for event in bob_in:
                if self.server is None and isinstance(event, RequestReceived):
                    self.server = InviteServer(
                        self.bob_layer, event, to_tag="bobtag",
                        contact=NameAddr.parse("<sip:bob@10.0.0.2:5060>"),
                        via_host="10.0.0.2", via_port=5060, peer=ALICE)
                elif self.server is not None:
                    self.server.handle(event, self.now)
            self.alice_events += self.client.events()
            if self.server is not None:
                self.bob_events += self.server.events()

    def advance(self, until: float) -> None:
        while True:
            sessions = [self.client, *([self.server] if self.server else [])]
            deadlines = [d for d in (self.alice_layer.next_deadline(),
                                     self.bob_layer.next_deadline(),
                                     *(s.next_deadline() for s in sessions))
                         if d is not None and d <= until]
            if not deadlines:
                break
            self.now = min(deadlines)
            self.alice_layer.handle_timer(self.now)
            self.bob_layer.handle_timer(self.now)
            for session in sessions:
                session.handle_timer(self.now)
            self.pump()
        self.now = until

    def sent(self, side: str, start: bytes) -> list[bytes]:
        return [data for s, data in self.wire if s == side and data.startswith(start)]

    def answered(self) -> None:
        self.bob.ring(self.now)
        self.pump()
        self.bob.answer(sdp(6000), self.now)
        self.pump()


def test_basic_call_ring_answer_ack_bye_from_caller() -> None:
    call = Call()
    call.answered()
    assert call.alice_events == [Ringing(180), Answered(sdp(6000))]
    assert len(call.sent("alice", b"ACK ")) == 1
    assert call.bob.next_deadline() is None  # the ACK stopped the 2xx retransmissions
    call.client.bye(call.now)
    call.pump()
    assert call.alice_events[-1] == Ended("bye-sent")
    assert call.bob_events == [ByeReceived(), Ended("bye-received")]


def test_bye_from_callee() -> None:
    call = Call()
    call.answered()
    call.bob.bye(call.now)
    call.pump()
    assert call.alice_events[-2:] == [ByeReceived(), Ended("bye-received")]
    assert call.bob_events == [Ended("bye-sent")]


def test_early_media_then_answer() -> None:
    call = Call()
    call.bob.early_media(sdp(6000), call.now)
    call.pump()
    call.bob.answer(sdp(6000), call.now)
    call.pump()
    assert call.alice_events == [EarlyMedia(sdp(6000)), Answered(sdp(6000))]
    assert call.client.dialog is not None and call.client.dialog.id.remote_tag == "bobtag"


def test_busy_is_rejected_and_acked_by_the_transaction() -> None:
    call = Call()
    call.bob.reject(486, call.now)
    call.pump()
    assert call.alice_events == [Rejected(486, "Busy Here"), Ended("486")]
    assert len(call.sent("alice", b"ACK ")) == 1
    assert call.client.dialog is None


def test_cancel_before_answer_gets_487() -> None:
    call = Call()
    call.bob.ring(call.now)
    call.pump()
    call.client.cancel(call.now)
    call.pump()
    assert call.alice_events == [Ringing(180), Cancelled(), Ended("487")]
    assert call.bob_events == [Cancelled(), Ended("cancelled")]
    assert [d.split(b" ")[1] for d in call.sent("bob", b"SIP/2.0 ")][-2:] == [b"200", b"487"]


def test_cancel_before_any_provisional_waits_for_one() -> None:
    call = Call()
    call.drop = lambda side, data: side == "bob" and data.startswith(b"SIP/2.0 100")
    call.client.cancel(call.now)
    call.pump()
    assert call.sent("alice", b"CANCEL ") == []  # §9.1: not before a provisional
    call.drop = lambda side, data: False
    call.bob.ring(call.now)
    call.pump()
    assert len(call.sent("alice", b"CANCEL ")) == 1
    assert call.alice_events == [Cancelled(), Ended("487")]


def test_answer_crossing_cancel_is_acked_then_hung_up() -> None:
    call = Call()
    call.bob.ring(call.now)
    call.pump()
    # The 200 is sent before Bob sees the CANCEL: hold Alice's CANCEL back.
    call.drop = lambda side, data: data.startswith(b"CANCEL")
    call.client.cancel(call.now)
    call.pump()
    call.drop = lambda side, data: False
    call.bob.answer(sdp(6000), call.now)
    call.pump()
    assert len(call.sent("alice", b"ACK ")) == 1
    assert len(call.sent("alice", b"BYE ")) == 1
    assert Answered(sdp(6000)) not in call.alice_events
    assert call.alice_events[-2:] == [Cancelled(), Ended("bye-sent")]
    assert call.bob_events[-2:] == [ByeReceived(), Ended("bye-received")]


def test_2xx_retransmitted_with_t1_doubling_until_ack() -> None:
    call = Call()
    call.drop = lambda side, data: data.startswith(b"ACK")
    call.answered()
    call.advance(3.6)
    sent_at = [0.0, 0.5, 1.5, 3.5]  # T1, 2T1, 4T1 after the first
    assert len(call.sent("bob", b"SIP/2.0 200")) == len(sent_at)
    # every retransmission is ACKed again by Alice (RFC 6026 §8.4 / §13.2.2.4)
    assert len(call.sent("alice", b"ACK ")) == len(sent_at)
    call.drop = lambda side, data: False
    call.advance(7.6)
    assert call.bob.next_deadline() is None
    assert not call.bob.ended


def test_2xx_retransmission_gives_up_after_64_t1_and_byes() -> None:
    call = Call()
    call.drop = lambda side, data: data.startswith(b"ACK")
    call.answered()
    call.advance(64 * T1 + 1)
    # 0, .5, 1.5, 3.5, 7.5 then every T2=4 s up to 32 s: 7.5+4k < 32 -> k=0..6
    assert len(call.sent("bob", b"SIP/2.0 200")) == 4 + 7
    assert len(call.sent("bob", b"BYE ")) == 1
    assert call.bob_events[-1] == Ended("no-ack")
    assert call.alice_events[-2:] == [ByeReceived(), Ended("bye-received")]


def test_hold_and_resume_by_reinvite() -> None:
    call = Call()
    call.answered()
    call.client.reinvite(sdp(4000, 2, Direction.SENDONLY), call.now)
    call.pump()
    assert call.bob_events == [Held(sdp(4000, 2, Direction.SENDONLY))]
    call.bob.accept_reinvite(sdp(6000, 2, Direction.RECVONLY), call.now)
    call.pump()
    call.client.reinvite(sdp(4000, 3), call.now)
    call.pump()
    assert call.bob_events[-1] == Resumed(sdp(4000, 3))
    call.bob.accept_reinvite(sdp(6000, 3), call.now)
    call.pump()
    assert len(call.sent("alice", b"ACK ")) == 3
    assert call.bob.next_deadline() is None
    assert not call.client.ended and not call.bob.ended


def test_reinvite_glare_gets_491() -> None:
    call = Call()
    call.answered()
    call.drop = lambda side, data: data.startswith(b"INVITE")
    call.client.reinvite(sdp(4000, 2, Direction.SENDONLY), call.now)
    call.pump()
    call.drop = lambda side, data: False
    call.bob.reinvite(sdp(6000, 2, Direction.SENDONLY), call.now)
    call.pump()
    assert b"SIP/2.0 491" in b"".join(call.sent("alice", b"SIP/2.0 491"))


def test_bye_answered_481_still_ends() -> None:
    call = Call()
    call.answered()
    call.drop = lambda side, data: side == "alice" and data.startswith(b"BYE")
    call.client.bye(call.now)
    call.advance(64 * T1 + 1)  # Timer F: the BYE times out
    assert call.alice_events[-1] == Ended("bye-sent")


# Alice's re-INVITE is her CSeq 2; Bob's is his first request in the dialog, CSeq 1.
@pytest.mark.parametrize(("reinviting", "ack_cseq"),
                         [("alice", b"CSeq: 2 ACK"), ("bob", b"CSeq: 1 ACK")])
def test_retransmitted_2xx_to_a_reinvite_is_acked_again(reinviting: str,
                                                         ack_cseq: bytes) -> None:
    call = Call()
    call.answered()
    # The first ACK to the re-INVITE's 200 is lost: the answerer retransmits the 200
    # after T1 and the re-INVITEr must send the same ACK again (§13.2.2.4, RFC 6026).
    lost: list[bytes] = []

    def drop_first_ack(side: str, data: bytes) -> bool:
        if side == reinviting and data.startswith(b"ACK") and ack_cseq in data and not lost:
            lost.append(data)
            return True
        return False

    call.drop = drop_first_ack
    if reinviting == "alice":
        call.client.reinvite(sdp(4000, 2, Direction.SENDONLY), call.now)
        call.pump()
        call.bob.accept_reinvite(sdp(6000, 2, Direction.RECVONLY), call.now)
    else:
        call.bob.reinvite(sdp(6000, 2, Direction.SENDONLY), call.now)
        call.pump()
        call.client.accept_reinvite(sdp(4000, 2, Direction.RECVONLY), call.now)
    call.pump()
    assert lost  # the first ACK never arrived
    answerer = call.bob if reinviting == "alice" else call.client
    assert answerer.next_deadline() is not None  # still retransmitting its 200
    call.advance(call.now + 1.0)
    acks = [d for d in call.sent(reinviting, b"ACK ") if ack_cseq in d]
    assert len(acks) == 2 and acks[0] == acks[1]  # the same ACK, sent again
    assert answerer.next_deadline() is None  # the second one arrived: no more 200s
    assert not call.client.ended and not call.bob.ended
