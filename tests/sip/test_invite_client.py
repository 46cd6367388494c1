"""InviteClient and its dialog commands, through two real TransactionLayers in memory.

`Call` (also used by test_invite_server and test_invite_session_timer) is Alice's
InviteClient calling Bob's InviteServer; real bytes cross the "wire" and time moves only
when a test calls `advance`. Covered here: extra headers on CANCEL and BYE, Reason values
surfaced in events, the outcome of our re-INVITEs (ReinviteAnswered/Failed, 491 retry),
owner-driven in-dialog requests (DialogRequest/DialogResponse) and a second fork's 2xx.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from switch.sip.errors import LocalProtocolError
from switch.sip.headers import NameAddr
from switch.sip.invite_client import (
    Answered,
    ByeReceived,
    Cancelled,
    DialogRequest,
    DialogResponse,
    Ended,
    Held,
    InviteClient,
    InviteEvent,
    ReinviteAnswered,
    ReinviteFailed,
    Rejected,
    Resumed,
    Ringing,
)
from switch.sip.invite_server import InviteServer
from switch.sip.message import Request, Response, parse_message
from switch.sip.offer_answer import build_offer
from switch.sip.peer import Peer
from switch.sip.sdp import Direction
from switch.sip.transaction import RequestReceived, TransactionLayer
from switch.sip.transport import stamp_via

ALICE = Peer("UDP", "10.0.0.1", 5060)
BOB = Peer("UDP", "10.0.0.2", 5060)
T1 = 0.5
REASON = 'Q.850;cause=16;text="Normal call clearing"'


def sdp(port: int, version: int = 1, direction: Direction = Direction.SENDRECV) -> bytes:
    return build_offer("10.0.0.9", port, session_id=port, session_version=version,
                       direction=direction).serialize()


def branches(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"z9hG4bK{prefix}{next(counter)}"


def alice_calls_bob(layer: TransactionLayer, now: float, **options: Any) -> InviteClient:
    """Alice's InviteClient for bob@example.com (sent to BOB); `options` override."""
    return InviteClient(
        layer, BOB, request_uri="sip:bob@10.0.0.2",
        from_=NameAddr.parse("<sip:alice@example.com>;tag=alicetag"),
        to=NameAddr.parse("<sip:bob@example.com>"),
        contact=NameAddr.parse("<sip:alice@10.0.0.1:5060>"), call_id="call-1",
        via_host="10.0.0.1", via_port=5060, now=now, **{"offer": sdp(4000), **options})


class Call:
    """Alice (InviteClient) calls Bob (InviteServer); the test is the network.
    `alice`/`bob` keyword dicts go to the session constructors."""

    def __init__(self, alice: dict[str, Any] | None = None,
                 bob: dict[str, Any] | None = None, now: float = 0.0) -> None:
        self.now = now
        self.alice_layer = TransactionLayer(new_branch=branches("a"))
        self.bob_layer = TransactionLayer(new_branch=branches("b"))
        self.drop: Callable[[str, bytes], bool] = lambda side, data: False
        self.wire: list[tuple[str, bytes]] = []
        self.server: InviteServer | None = None
        self.bob_options = bob or {}
        self.alice_events: list[InviteEvent] = []
        self.bob_events: list[InviteEvent] = []
        self.client = alice_calls_bob(self.alice_layer, self.now, **(alice or {}))
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
                if isinstance(event, RequestReceived) and event.request.to.tag is None \
                        and event.request.method == "INVITE" \
                        and (self.server is None or self.server.ended):
                    # A new call, or the caller's retry after a 422: a new InviteServer.
                    self.server = InviteServer(
                        self.bob_layer, event, to_tag="bobtag",
                        contact=NameAddr.parse("<sip:bob@10.0.0.2:5060>"),
                        via_host="10.0.0.2", via_port=5060, peer=ALICE, **self.bob_options)
                elif self.server is not None:
                    self.server.handle(event, self.now)
            self.alice_events += self.client.events()
            if self.server is not None:
                self.bob_events += self.server.events()

    def advance(self, until: float) -> None:
        for _ in range(100_000):  # a deadline that never moves would spin forever
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
        else:
            raise AssertionError(f"timers still due at {self.now} after 100000 rounds")
        self.now = until

    def sent(self, side: str, start: bytes) -> list[bytes]:
        return [data for s, data in self.wire if s == side and data.startswith(start)]

    def sent_messages(self, side: str, start: bytes) -> list[Request | Response]:
        return [parse_message(data) for data in self.sent(side, start)]

    def answered(self) -> None:
        self.bob.ring(self.now)
        self.pump()
        self.bob.answer(sdp(6000), self.now)
        self.pump()


# -- extra headers and Reason values (RFC 3326)

def test_reason_on_bye_reaches_the_other_side() -> None:
    call = Call()
    call.answered()
    call.client.bye(call.now, headers=[("Reason", REASON)])
    call.pump()
    assert call.bob_events == [ByeReceived(REASON), Ended("bye-received")]
    bye = call.sent_messages("alice", b"BYE ")[0]
    assert bye.headers.get_all("Reason") == [REASON]


def test_several_reason_values_are_joined_in_order() -> None:
    call = Call()
    call.answered()
    call.bob.bye(call.now, headers=[("Reason", "SIP;cause=200"), ("Reason", REASON)])
    call.pump()
    assert call.alice_events[-2:] == [ByeReceived(f"SIP;cause=200, {REASON}"),
                                      Ended("bye-received")]


def test_bye_without_reason_reports_none() -> None:
    call = Call()
    call.answered()
    call.bob.bye(call.now)
    call.pump()
    assert call.alice_events[-2] == ByeReceived(None)


def test_reason_on_a_rejection_is_surfaced() -> None:
    call = Call()
    call.bob.reject(486, call.now, headers=[("Reason", "Q.850;cause=17")])
    call.pump()
    assert call.alice_events == [Rejected(486, "Busy Here", "Q.850;cause=17"), Ended("486")]


def test_cancel_carries_its_reason_to_the_callee() -> None:
    call = Call()
    call.bob.ring(call.now)
    call.pump()
    elsewhere = 'SIP;cause=200;text="Call completed elsewhere"'
    call.client.cancel(call.now, headers=[("Reason", elsewhere)])
    call.pump()
    assert call.bob_events == [Cancelled(elsewhere), Ended("cancelled")]
    assert call.alice_events == [Ringing(180), Cancelled(None), Ended("487")]


def test_deferred_cancel_keeps_its_headers() -> None:
    call = Call()
    call.drop = lambda side, data: side == "bob" and data.startswith(b"SIP/2.0 100")
    call.client.cancel(call.now, headers=[("Reason", REASON)])
    call.pump()
    assert call.sent("alice", b"CANCEL ") == []  # §9.1: waits for a provisional
    call.drop = lambda side, data: False
    call.bob.ring(call.now)
    call.pump()
    cancel = call.sent_messages("alice", b"CANCEL ")[0]
    assert cancel.headers.get_all("Reason") == [REASON]
    assert call.bob_events[0] == Cancelled(REASON)


def test_cancel_may_not_set_the_headers_of_the_invite() -> None:
    call = Call()
    call.bob.ring(call.now)
    call.pump()
    with pytest.raises(LocalProtocolError, match=r"^the session sets the CSeq header itself$"):
        call.client.cancel(call.now, headers=[("CSeq", "9 CANCEL")])


# -- our re-INVITE's outcome

def test_reinvite_answer_is_reported_with_the_peers_sdp() -> None:
    call = Call()
    call.answered()
    call.client.reinvite(sdp(4000, 2, Direction.SENDONLY), call.now)
    call.pump()
    call.bob.accept_reinvite(sdp(6000, 2, Direction.RECVONLY), call.now)
    call.pump()
    assert call.alice_events[-1] == ReinviteAnswered(sdp(6000, 2, Direction.RECVONLY))
    assert call.client.local_sdp == sdp(4000, 2, Direction.SENDONLY)


def test_reinvite_refused_is_reported_and_the_call_goes_on() -> None:
    call = Call()
    call.answered()
    call.client.reinvite(sdp(4000, 2), call.now)
    call.pump()
    call.bob.reject_reinvite(488, call.now)
    call.pump()
    assert call.alice_events[-1] == ReinviteFailed(488)
    assert not call.client.ended and not call.bob.ended
    call.client.reinvite(sdp(4000, 3), call.now)  # free for the next offer
    call.pump()
    assert call.bob_events[-1] == Resumed(sdp(4000, 3))


def glare(call: Call) -> None:
    """Both sides send a re-INVITE at once; each answers the other's 491."""
    call.answered()
    call.client.reinvite(sdp(4000, 2, Direction.SENDONLY), call.now)
    call.bob.reinvite(sdp(6000, 2, Direction.SENDONLY), call.now)
    call.pump()


def test_glare_without_retry_reports_491_on_both_sides() -> None:
    call = Call()
    glare(call)
    assert call.alice_events[-1] == ReinviteFailed(491)
    assert call.bob_events[-1] == ReinviteFailed(491)
    assert call.client.next_deadline() is None and call.bob.next_deadline() is None


class Draws:
    """A random source (like secrets.randbelow) that returns the given numbers in turn
    and remembers the range it was asked for each time."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)
        self.asked: list[int] = []

    def __call__(self, n: int) -> int:
        self.asked.append(n)
        return self.values.pop(0)


def test_glare_retries_the_same_offer_after_random_delays() -> None:
    # RFC 3261 §14.1 in 10 ms units: Alice owns the Call-ID (she sent the INVITE), so
    # 2.1 s + 90 * 10 ms; Bob does not, so 0 s + 100 * 10 ms.
    alice_random, bob_random = Draws(90), Draws(100)
    call = Call(alice={"glare_random": alice_random}, bob={"glare_random": bob_random})
    glare(call)
    assert alice_random.asked == [191] and bob_random.asked == [201]
    assert ReinviteFailed(491) not in call.alice_events + call.bob_events
    assert call.bob.next_deadline() == 1.0 and call.client.next_deadline() == 3.0
    call.advance(1.0)
    assert call.alice_events[-1] == Held(sdp(6000, 2, Direction.SENDONLY))
    call.client.accept_reinvite(sdp(4000, 2, Direction.RECVONLY), call.now)
    call.pump()
    assert call.bob_events[-1] == ReinviteAnswered(sdp(4000, 2, Direction.RECVONLY))
    call.advance(3.0)
    assert call.bob_events[-1] == Held(sdp(4000, 2, Direction.SENDONLY))
    call.bob.accept_reinvite(sdp(6000, 3, Direction.INACTIVE), call.now)
    call.pump()
    assert call.alice_events[-1] == ReinviteAnswered(sdp(6000, 3, Direction.INACTIVE))
    invites = call.sent_messages("alice", b"INVITE ")
    assert [m.cseq.seq for m in invites] == [1, 2, 3]  # the retry is a new transaction
    assert invites[1].body == invites[2].body


@pytest.mark.parametrize(("side", "draws", "delays"), [
    ("alice", (0, 190), (2.1, 4.0)),  # the owner of the Call-ID: 2.1-4 s
    ("bob", (0, 200), (0.0, 2.0)),  # the other end: 0-2 s
])
def test_a_new_delay_is_drawn_for_every_491(side: str, draws: tuple[int, int],
                                            delays: tuple[float, float]) -> None:
    random = Draws(*draws)
    call = Call(**{side: {"glare_random": random}})  # type: ignore[arg-type]
    call.answered()
    offerer, answerer = (call.client, call.bob) if side == "alice" else (call.bob, call.client)
    offerer.reinvite(sdp(4000, 2, Direction.SENDONLY), call.now)
    call.pump()
    answerer.reject_reinvite(491, call.now)  # a glare the answerer saw, not us
    call.pump()
    assert offerer.next_deadline() == delays[0]
    call.advance(delays[0])
    answerer.reject_reinvite(491, call.now)
    call.pump()
    assert offerer.next_deadline() == pytest.approx(delays[0] + delays[1])
    assert random.asked == ([191, 191] if side == "alice" else [201, 201])
    invites = [m for m in call.sent_messages(side, b"INVITE ") if m.to.tag]
    assert len(invites) == 2


def test_glare_retry_meeting_an_unanswered_peer_reinvite_is_reported() -> None:
    call = Call(alice={"glare_random": Draws(90)}, bob={"glare_random": Draws(100)})
    glare(call)
    call.advance(3.0)  # Alice never answers Bob's retried re-INVITE
    assert call.alice_events[-1] == ReinviteFailed(491)
    assert len(call.sent("alice", b"INVITE ")) == 2


def test_reinvite_while_one_is_in_progress_is_our_bug() -> None:
    call = Call()
    call.answered()
    call.client.reinvite(sdp(4000, 2), call.now)
    with pytest.raises(LocalProtocolError,
                       match=r"^an INVITE is already in progress in this dialog$"):
        call.client.reinvite(sdp(4000, 3), call.now)


# -- other in-dialog requests, both ways

def test_info_goes_to_the_owner_and_its_answer_comes_back() -> None:
    call = Call()
    call.answered()
    txn = call.bob.send_request("INFO", call.now,
                                headers=[("Content-Type", "application/dtmf-relay")],
                                body=b"Signal=5\r\nDuration=160\r\n")
    call.pump()
    request_event = call.alice_events[-1]
    assert isinstance(request_event, DialogRequest)
    assert request_event.request.method == "INFO"
    assert request_event.request.body == b"Signal=5\r\nDuration=160\r\n"
    call.client.respond(request_event.transaction, 200, call.now)
    call.pump()
    assert call.bob_events[-1] == DialogResponse("INFO", 200, txn)
    response = call.sent_messages("alice", b"SIP/2.0 200")[-1]
    # Bob's request: the answer carries Alice's tag in To and Bob's in From.
    assert isinstance(response, Response) and response.to.tag == "alicetag"
    assert response.from_.tag == "bobtag"


def test_refer_with_a_referred_by_and_its_202() -> None:
    call = Call()
    call.answered()
    txn = call.client.send_request("REFER", call.now, headers=[
        ("Refer-To", "<sip:carol@example.com>"), ("Referred-By", "<sip:alice@example.com>")])
    call.pump()
    event = call.bob_events[-1]
    assert isinstance(event, DialogRequest)
    assert event.request.headers.get("Refer-To") == "<sip:carol@example.com>"
    assert event.request.cseq.seq == 2  # the INVITE was 1
    call.bob.respond(event.transaction, 202, call.now)
    call.pump()
    assert call.alice_events[-1] == DialogResponse("REFER", 202, txn)
    assert not call.client.ended


def test_a_response_body_comes_with_its_content_type() -> None:
    call = Call()
    call.answered()
    call.client.send_request("OPTIONS", call.now)
    call.pump()
    event = call.bob_events[-1]
    assert isinstance(event, DialogRequest)
    with pytest.raises(LocalProtocolError, match=r"^a response body needs a Content-Type"):
        call.bob.respond(event.transaction, 200, call.now, body=sdp(6000))
    call.bob.respond(event.transaction, 200, call.now,
                     headers=[("Content-Type", "application/sdp")], body=sdp(6000))
    call.pump()
    response = call.sent_messages("bob", b"SIP/2.0 200")[-1]
    assert response.body == sdp(6000) and response.content_type == "application/sdp"


def test_481_to_a_dialog_request_ends_the_call() -> None:
    call = Call()
    call.answered()
    txn = call.client.send_request("INFO", call.now)
    call.pump()
    event = call.bob_events[-1]
    assert isinstance(event, DialogRequest)
    call.bob.respond(event.transaction, 481, call.now)
    call.pump()
    assert call.alice_events[-2:] == [DialogResponse("INFO", 481, txn), Ended("481")]
    with pytest.raises(LocalProtocolError):
        call.client.bye(call.now)


def test_unanswered_dialog_request_times_out_as_408_without_ending() -> None:
    call = Call()
    call.answered()
    call.drop = lambda side, data: data.startswith(b"OPTIONS")
    txn = call.client.send_request("OPTIONS", call.now)
    call.advance(64 * T1 + 1)  # Timer F
    assert call.alice_events[-1] == DialogResponse("OPTIONS", 408, txn)
    assert not call.client.ended


def test_update_without_timers_is_the_owners() -> None:
    call = Call()
    call.answered()
    call.client.send_request("UPDATE", call.now)
    call.pump()
    event = call.bob_events[-1]
    assert isinstance(event, DialogRequest) and event.request.method == "UPDATE"


@pytest.mark.parametrize("method", ["INVITE", "ACK", "CANCEL", "BYE"])
def test_send_request_refuses_methods_with_their_own_commands(method: str) -> None:
    call = Call()
    call.answered()
    with pytest.raises(LocalProtocolError, match=rf"^{method} has its own command"):
        call.client.send_request(method, call.now)


def test_cancel_of_a_reinvite_lets_it_complete() -> None:
    call = Call()
    call.answered()
    call.client.reinvite(sdp(4000, 2), call.now)
    call.pump()
    invite = call.sent_messages("alice", b"INVITE ")[-1]
    assert isinstance(invite, Request)
    cancel = Request("CANCEL", invite.uri, invite.headers.copy())
    cancel.headers.set("CSeq", f"{invite.cseq.seq} CANCEL")
    call.bob_layer.receive(cancel, ALICE, call.now)
    call.pump()
    assert call.sent("bob", b"SIP/2.0 200")[-1].split(b"\r\n")[0] == b"SIP/2.0 200 OK"
    call.bob.accept_reinvite(sdp(6000, 2), call.now)
    call.pump()
    assert call.alice_events[-1] == ReinviteAnswered(sdp(6000, 2))


# -- forking (§13.2.2.4)

def second_fork_200(call: Call, tag: str) -> Response:
    """Bob's 200 as if another phone behind a forking proxy had sent it too."""
    first = call.sent_messages("bob", b"SIP/2.0 200")[0]
    assert isinstance(first, Response)
    fork = parse_message(first.serialize())
    assert isinstance(fork, Response)
    fork.headers.set("To", first.to.with_tag(tag).serialize())
    fork.headers.set("Contact", "<sip:bob-mobile@10.0.0.3:5060>")
    return fork


def test_second_fork_2xx_is_acked_and_hung_up_without_touching_the_call() -> None:
    call = Call()
    call.answered()
    fork = second_fork_200(call, "forktag")
    call.alice_layer.receive(fork, BOB, call.now)
    call.drop = lambda side, data: b"tag=forktag" in data  # the other phone is not Bob
    call.pump()
    acks = [m for m in call.sent_messages("alice", b"ACK ") if m.to.tag == "forktag"]
    byes = [m for m in call.sent_messages("alice", b"BYE ") if m.to.tag == "forktag"]
    assert len(acks) == 1 and len(byes) == 1
    assert isinstance(byes[0], Request)
    assert str(byes[0].uri) == "sip:bob-mobile@10.0.0.3:5060"
    assert acks[0].cseq.seq == 1 and byes[0].cseq.seq == 2
    assert call.alice_events == [Ringing(180), Answered(sdp(6000))]  # nothing new
    # The fork retransmits its 2xx: the same ACK again, no second BYE.
    call.alice_layer.receive(fork, BOB, call.now)
    call.pump()
    assert len([m for m in call.sent_messages("alice", b"ACK ")
                if m.to.tag == "forktag"]) == 2
    assert len([m for m in call.sent_messages("alice", b"BYE ")
                if m.to.tag == "forktag"]) == 1
    # The first dialog is intact: a BYE on it still works.
    call.drop = lambda side, data: False
    call.client.bye(call.now)
    call.pump()
    assert call.bob_events[-2:] == [ByeReceived(), Ended("bye-received")]
    assert call.client.dialog is not None and call.client.dialog.id.remote_tag == "bobtag"


def test_second_fork_2xx_after_the_invite_transaction_is_gone() -> None:
    call = Call()
    call.answered()
    call.advance(64 * T1 + 1)  # the INVITE client transaction has terminated
    fork = second_fork_200(call, "latefork")
    call.drop = lambda side, data: b"tag=latefork" in data
    call.alice_layer.receive(fork, BOB, call.now)
    call.pump()
    assert [m.method for m in call.sent_messages("alice", b"")
            if isinstance(m, Request) and m.to.tag == "latefork"] == ["ACK", "BYE"]
    assert not call.client.ended
