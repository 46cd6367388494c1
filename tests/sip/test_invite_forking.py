"""A forked INVITE (RFC 3261 §13.2.2.4, RFC 6026 §8.4): Alice's InviteClient reaches
two real InviteServers (Bob's desk phone and his mobile) through a forking proxy that
the test plays. Both answer; the call stays with the first 2xx, the second is ACKed and
then hung up with BYE, and Alice's owner hears of one answer only."""

from __future__ import annotations

from switch.sip.headers import NameAddr
from switch.sip.invite_client import (
    Answered,
    ByeReceived,
    Ended,
    InviteEvent,
    Ringing,
)
from switch.sip.invite_server import InviteServer
from switch.sip.message import Request, parse_message
from switch.sip.peer import Peer
from switch.sip.transaction import RequestReceived, TransactionLayer
from switch.sip.transport import stamp_via
from tests.sip.test_invite_client import ALICE, BOB, T1, alice_calls_bob, branches, sdp

MOBILE = Peer("UDP", "10.0.0.3", 5060)


class Bob:
    """One of Bob's phones: a layer, the InviteServer for the forked INVITE, its events."""

    def __init__(self, name: str, peer: Peer) -> None:
        self.name, self.peer = name, peer
        self.layer = TransactionLayer(new_branch=branches(name))
        self.server: InviteServer | None = None
        self.events: list[InviteEvent] = []

    @property
    def session(self) -> InviteServer:
        assert self.server is not None
        return self.server


class ForkedCall:
    """Alice calls Bob; the proxy in between sends the INVITE to both his phones and
    routes what Alice sends in a dialog by its To tag (the phone's own tag)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.alice_layer = TransactionLayer(new_branch=branches("a"))
        self.desk, self.mobile = Bob("desk", BOB), Bob("mobile", MOBILE)
        self.wire: list[tuple[str, bytes]] = []
        self.alice_events: list[InviteEvent] = []
        self.client = alice_calls_bob(self.alice_layer, self.now)
        self.pump()

    def pump(self) -> None:
        moving = True
        while moving:
            moving = False
            for out in self.alice_layer.outgoing():
                self.wire.append(("alice", out.data))
                message = parse_message(out.data)
                tag = message.to.tag
                for bob in (self.desk, self.mobile):
                    if tag is None or tag == bob.name:
                        copy = parse_message(out.data)  # each phone gets its own copy
                        if isinstance(copy, Request):
                            stamp_via(copy, ALICE)
                        bob.layer.receive(copy, ALICE, self.now)
                moving = True
            for bob in (self.desk, self.mobile):
                for out in bob.layer.outgoing():
                    self.wire.append((bob.name, out.data))
                    self.alice_layer.receive(parse_message(out.data), bob.peer, self.now)
                    moving = True
            for event in self.alice_layer.events():
                moving = True
                self.client.handle(event, self.now)
            for bob in (self.desk, self.mobile):
                for event in bob.layer.events():
                    moving = True
                    if bob.server is None and isinstance(event, RequestReceived):
                        bob.server = InviteServer(
                            bob.layer, event, to_tag=bob.name,
                            contact=NameAddr.parse(f"<sip:bob@{bob.peer.host}:5060>"),
                            via_host=bob.peer.host, via_port=5060, peer=ALICE)
                    elif bob.server is not None:
                        bob.server.handle(event, self.now)
                if bob.server is not None:
                    bob.events += bob.server.events()
            self.alice_events += self.client.events()

    def advance(self, until: float) -> None:
        while True:
            layers = [self.alice_layer, self.desk.layer, self.mobile.layer]
            sessions = [self.client, *(b.server for b in (self.desk, self.mobile) if b.server)]
            deadlines = [d for d in (*(x.next_deadline() for x in layers),
                                     *(s.next_deadline() for s in sessions))
                         if d is not None and d <= until]
            if not deadlines:
                break
            self.now = min(deadlines)
            for layer in layers:
                layer.handle_timer(self.now)
            for session in sessions:
                session.handle_timer(self.now)
            self.pump()
        self.now = until

    def sent(self, side: str, method: str, to_tag: str) -> list[Request]:
        return [m for s, data in self.wire if s == side
                and isinstance(m := parse_message(data), Request)
                and m.method == method and m.to.tag == to_tag]


def test_both_forks_answer_the_second_is_acked_then_hung_up() -> None:
    call = ForkedCall()
    call.desk.session.ring(call.now)
    call.mobile.session.ring(call.now)
    call.pump()
    assert set(call.client.early) == {"desk", "mobile"}  # two early dialogs
    call.desk.session.answer(sdp(6000), call.now)
    call.pump()
    call.mobile.session.answer(sdp(7000), call.now)
    call.pump()
    assert call.alice_events == [Ringing(180), Ringing(180), Answered(sdp(6000))]
    [ack] = call.sent("alice", "ACK", "mobile")
    [bye] = call.sent("alice", "BYE", "mobile")
    assert ack.cseq.seq == 1 and bye.cseq.seq == 2
    assert str(bye.uri) == "sip:bob@10.0.0.3:5060"  # the mobile's Contact
    assert call.mobile.events == [ByeReceived(), Ended("bye-received")]
    assert call.mobile.session.next_deadline() is None  # the ACK stopped its 2xx
    # The call goes on with the desk phone, untouched.
    assert call.desk.events == []
    assert call.client.dialog is not None and call.client.dialog.id.remote_tag == "desk"
    call.client.bye(call.now)
    call.pump()
    assert call.desk.events == [ByeReceived(), Ended("bye-received")]
    assert len(call.sent("alice", "BYE", "mobile")) == 1


def test_second_fork_answering_late_within_timer_m() -> None:
    call = ForkedCall()
    call.desk.session.answer(sdp(6000), call.now)
    call.pump()
    call.advance(64 * T1 - 0.5)  # the INVITE transaction is still Accepted (RFC 6026)
    call.mobile.session.answer(sdp(7000), call.now)
    call.pump()
    assert [r.method for r in (*call.sent("alice", "ACK", "mobile"),
                               *call.sent("alice", "BYE", "mobile"))] == ["ACK", "BYE"]
    assert call.mobile.events == [ByeReceived(), Ended("bye-received")]
    assert call.alice_events == [Answered(sdp(6000))]
    assert call.client.forks_until == 64 * T1


def test_the_other_forks_own_bye_crossing_ours_gets_481() -> None:
    # The mobile answered second and hangs up before our BYE reaches it: its BYE names
    # a dialog Alice's session is not in (§12.2.2): 481, and the call goes on.
    call = ForkedCall()
    call.desk.session.answer(sdp(6000), call.now)
    call.pump()
    call.mobile.session.answer(sdp(7000), call.now)
    mobile_dialog = call.mobile.session.dialog
    assert mobile_dialog is not None
    bye = mobile_dialog.create_request("BYE", via=call.mobile.session._via())
    call.alice_layer.receive(bye, MOBILE, call.now)
    call.pump()
    assert any(data.startswith(b"SIP/2.0 481") and b"CSeq: 1 BYE" in data
               for side, data in call.wire if side == "alice")
    assert call.alice_events == [Answered(sdp(6000))] and not call.client.ended
