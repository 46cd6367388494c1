"""Transaction matching and behaviour (RFC 3261 §17, §8.2.2.2, §9.2, §18.2.2; RFC 6026).

A client layer and a server layer exchange real bytes in memory (through
`parse_message`); the test plays both transaction users and the network.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from switch.sip.errors import LocalProtocolError
from switch.sip.headers import Via
from switch.sip.message import Request, Response, build_response, parse_message
from switch.sip.peer import Peer, response_peer
from switch.sip.transaction import (
    AckReceived,
    MergedRequestRejected,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    StrayResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransportFailed,
    build_ack,
)
from switch.sip.transaction_states import InviteClientState, InviteServerState, Kind
from switch.sip.transport import stamp_via

ALICE = Peer("UDP", "10.0.0.1", 5060)
BOB = Peer("UDP", "10.0.0.2", 5060)


def branches(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"z9hG4bK{prefix}{next(counter)}"


def parse(text: str) -> Request | Response:
    return parse_message(("\r\n".join(text.strip().splitlines()) + "\r\n\r\n").encode())


def make_request(method: str = "INVITE", *, branch: str = "z9hG4bKa1", cseq: int = 1,
                 call_id: str = "c1", from_tag: str = "a1", to_tag: str | None = None,
                 via: str = "10.0.0.1:5060", transport: str = "UDP",
                 extra: str = "") -> Request:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    branch_param = f";branch={branch}" if branch else ""
    message = parse(f"""
{method} sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/{transport} {via}{branch_param}
{extra}Max-Forwards: 70
From: <sip:alice@example.com>;tag={from_tag}
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
Content-Length: 0
""")
    assert isinstance(message, Request)
    return message


class Net:
    """Alice's layer (client side) and Bob's layer (server side) joined in memory."""

    def __init__(self, alice_source: Peer = ALICE, **kwargs: int) -> None:
        self.alice = TransactionLayer(new_branch=branches("alice"), **kwargs)
        self.bob = TransactionLayer(new_branch=branches("bob"),
                                    new_tag=lambda: "bobtag", **kwargs)
        self.alice_source = alice_source  # where Alice's packets appear to come from
        self.now = 0.0
        self.drop: Callable[[str, bytes], bool] = lambda side, data: False
        self.wire: list[tuple[str, bytes, Peer]] = []
        self.alice_events: list[TransactionEvent] = []
        self.bob_events: list[TransactionEvent] = []

    def pump(self) -> None:
        moving = True
        while moving:
            moving = False
            for side, src, dst, source in (("alice", self.alice, self.bob, self.alice_source),
                                           ("bob", self.bob, self.alice, BOB)):
                for out in src.outgoing():
                    self.wire.append((side, out.data, out.peer))
                    if self.drop(side, out.data):
                        continue
                    message = parse_message(out.data)
                    if isinstance(message, Request):
                        stamp_via(message, source)  # what the transport does
                    dst.receive(message, source, self.now)
                    moving = True
            self.alice_events += self.alice.events()
            self.bob_events += self.bob.events()

    def advance(self, until: float) -> None:
        while True:
            due = [d for d in (self.alice.next_deadline(), self.bob.next_deadline())
                   if d is not None and d <= until]
            if not due:
                break
            self.now = min(due)
            self.alice.handle_timer(self.now)
            self.bob.handle_timer(self.now)
            self.pump()
        self.now = until

    def sent(self, side: str, start: bytes = b"") -> list[bytes]:
        return [data for s, data, _ in self.wire if s == side and data.startswith(start)]

    def call(self, request: Request | None = None) -> ServerTransaction:
        self.alice.send_request(request or make_request(), BOB, self.now)
        self.pump()
        received = [e for e in self.bob_events if isinstance(e, RequestReceived)]
        return received[-1].transaction

    def answer(self, txn: ServerTransaction, status: int) -> Response:
        response = build_response(txn.request, status, to_tag="b1")
        self.bob.send_response(txn, response, self.now)
        self.pump()
        return response


def of_type(events: list[TransactionEvent], kind: type) -> list[TransactionEvent]:
    return [e for e in events if isinstance(e, kind)]


def statuses(events: list[TransactionEvent]) -> list[int]:
    return [e.response.status for e in events if isinstance(e, ResponseReceived)]


# --- a whole INVITE transaction --------------------------------------------------------

def test_invite_ringing_then_answered():
    net = Net()
    txn = net.call()
    assert txn.kind is Kind.INVITE_SERVER and txn.request.method == "INVITE"
    net.answer(txn, 180)
    net.answer(txn, 200)
    assert statuses(net.alice_events) == [180, 200]
    [client] = net.alice.transactions()
    assert client.state is InviteClientState.ACCEPTED
    assert txn.state is InviteServerState.ACCEPTED
    assert len(net.bob_events) == 1  # just the RequestReceived


def test_request_retransmission_is_absorbed_and_answered_with_the_same_bytes():
    net = Net()
    lost = [True]

    def drop_first_180(side: str, data: bytes) -> bool:
        if side == "bob" and data.startswith(b"SIP/2.0 180") and lost[0]:
            lost[0] = False
            return True
        return False

    net.drop = drop_first_180
    txn = net.call()
    net.answer(txn, 180)
    net.advance(0.5)  # Timer A: the INVITE again
    assert len(net.sent("alice", b"INVITE")) == 2
    first, again = net.sent("bob", b"SIP/2.0 180")
    assert first == again
    assert len(of_type(net.bob_events, RequestReceived)) == 1
    assert statuses(net.alice_events) == [180]
    assert net.alice.transactions()[0].state is InviteClientState.PROCEEDING


def test_a_reused_branch_with_the_next_cseq_is_a_new_request():
    """pyVoIP 1.6.8 answers a 401 by resending its INVITE with the same branch and the
    next CSeq: a new request, passed up and answered, while its first INVITE's ACK and
    retransmissions still find the first transaction."""
    layer = TransactionLayer(new_branch=branches("x"))
    layer.receive(make_request(cseq=1), ALICE, 0.0)
    [first] = layer.events()
    assert isinstance(first, RequestReceived)
    layer.send_response(first.transaction, build_response(first.request, 401, to_tag="t"),
                        0.0)
    layer.receive(make_request("ACK", cseq=1, to_tag="t"), ALICE, 0.01)
    layer.receive(make_request(cseq=2), ALICE, 0.02)
    [second] = layer.events()
    assert isinstance(second, RequestReceived) and second.request.cseq.seq == 2
    assert second.transaction is not first.transaction
    assert first.transaction.state is InviteServerState.CONFIRMED
    layer.receive(make_request(cseq=2), ALICE, 0.03)  # a retransmission of the second
    assert layer.events() == []


def test_non_invite_retransmission_in_trying_gets_no_answer_yet():
    net = Net()
    txn = net.call(make_request("OPTIONS"))
    net.advance(0.5)
    assert len(net.sent("alice", b"OPTIONS")) == 2
    assert net.sent("bob") == []
    net.answer(txn, 200)
    net.bob.receive(make_request("OPTIONS"), ALICE, net.now)  # late retransmission
    first, again = net.sent("bob", b"SIP/2.0 200")[0], net.bob.outgoing()[0].data
    assert first == again
    assert len(of_type(net.bob_events, RequestReceived)) == 1


# --- ACK ------------------------------------------------------------------------------

def test_client_acks_a_non_2xx_final_itself_and_the_server_absorbs_it():
    net = Net()
    invite = make_request(extra="Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2;lr>\r\n")
    txn = net.call(invite)
    net.answer(txn, 486)
    [ack] = net.sent("alice", b"ACK")
    assert ack == (
        b"ACK sip:bob@10.0.0.2 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa1\r\n"
        b"Max-Forwards: 70\r\n"
        b"Route: <sip:p1.example.com;lr>\r\n"
        b"Route: <sip:p2;lr>\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.com>;tag=b1\r\n"
        b"Call-ID: c1\r\n"
        b"CSeq: 1 ACK\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert txn.state is InviteServerState.CONFIRMED
    assert of_type(net.bob_events, AckReceived) == []
    assert statuses(net.alice_events) == [486]


def test_ack_keeps_only_the_top_via_of_the_invite():
    invite = make_request(extra="Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKfar\r\n")
    response = build_response(invite, 404, to_tag="x9")
    ack = build_ack(invite, response)
    assert ack.headers.get_all("Via") == ["SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa1"]
    assert ack.to.tag == "x9" and ack.cseq.method == "ACK" and ack.uri == invite.uri


def test_retransmitted_final_gets_the_same_ack_and_is_not_passed_up_again():
    net = Net()
    net.drop = lambda side, data: side == "alice" and data.startswith(b"ACK")
    txn = net.call()
    net.answer(txn, 503)
    net.advance(0.5)  # Timer G
    first, again = net.sent("alice", b"ACK")
    assert first == again
    assert statuses(net.alice_events) == [503]


def test_ack_for_2xx_is_passed_up_outside_any_transaction():
    net = Net()
    txn = net.call()
    net.answer(txn, 200)
    ack = make_request("ACK", branch="z9hG4bKnewack", to_tag="b1")
    net.alice.send_ack(ack, BOB)
    net.pump()
    [event] = of_type(net.bob_events, AckReceived)
    assert event == AckReceived(event.request, ALICE)  # type: ignore[union-attr]
    assert event.request.headers.get("Via").endswith("z9hG4bKnewack")  # type: ignore[union-attr]
    assert txn.state is InviteServerState.ACCEPTED


def test_ack_reusing_the_invite_branch_in_accepted_goes_to_the_tu():
    net = Net()
    txn = net.call()
    net.answer(txn, 200)
    net.bob.receive(make_request("ACK", to_tag="b1"), ALICE, net.now)
    assert [type(e) for e in net.bob.events()] == [AckReceived]
    assert txn.state is InviteServerState.ACCEPTED


def test_2xx_retransmissions_from_the_tu_reach_the_uac_tu_while_accepted():
    net = Net()
    txn = net.call()
    ok = net.answer(txn, 200)
    net.advance(0.5)
    net.bob.send_response(txn, ok, net.now)  # the UAS core retransmits (§13.3.1.4)
    net.pump()
    assert statuses(net.alice_events) == [200, 200]
    # After Timer M the client transaction is gone: a late 2xx is stray, not lost.
    net.advance(40.0)
    net.alice.receive(parse_message(net.sent("bob", b"SIP/2.0 200")[0]), BOB, net.now)
    [stray] = of_type(net.alice.events(), StrayResponseReceived)
    assert stray.response.status == 200  # type: ignore[union-attr]


def test_stray_response_is_reported_with_its_peer():
    layer = TransactionLayer(new_branch=branches("x"))
    response = build_response(make_request("BYE", branch="z9hG4bKnobody"), 200)
    layer.receive(response, BOB, 0.0)
    assert layer.events() == [StrayResponseReceived(response, BOB)]


# --- CANCEL ----------------------------------------------------------------------------

def test_cancel_is_its_own_transaction_and_finds_the_invite():
    net = Net()
    invite_txn = net.call()
    net.answer(invite_txn, 180)
    cancel_txn = net.call(make_request("CANCEL"))
    assert cancel_txn is not invite_txn and cancel_txn.kind is Kind.NON_INVITE_SERVER
    assert net.bob.find_server_transaction_for_cancel(cancel_txn.request) is invite_txn
    assert invite_txn.state is InviteServerState.PROCEEDING
    net.answer(cancel_txn, 200)
    net.answer(invite_txn, 487)
    assert statuses(net.alice_events) == [180, 200, 487]
    assert len(net.sent("alice", b"ACK")) == 1
    assert invite_txn.state is InviteServerState.CONFIRMED


def test_cancel_for_unknown_invite_finds_nothing():
    layer = TransactionLayer(new_branch=branches("x"))
    assert layer.find_server_transaction_for_cancel(make_request("CANCEL")) is None


# --- merged requests -------------------------------------------------------------------

def test_merged_request_is_answered_482_by_the_layer():
    net = Net()
    first = net.call()
    # The same INVITE forked back to us by another proxy: new branch, same From tag,
    # Call-ID and CSeq.
    forked = make_request(branch="z9hG4bKviaproxy2", via="10.0.0.1:5060")
    net.bob.receive(forked, ALICE, net.now)
    [out] = net.bob.outgoing()
    response = parse_message(out.data)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (482, "Loop Detected")
    assert response.to.tag == "bobtag"
    assert net.bob.events() == [MergedRequestRejected(forked, ALICE)]
    # Its retransmission is absorbed by the 482's own transaction.
    net.bob.receive(make_request(branch="z9hG4bKviaproxy2"), ALICE, net.now)
    assert [o.data for o in net.bob.outgoing()] == [out.data]
    assert net.bob.events() == []
    assert first.state is InviteServerState.PROCEEDING


def test_request_with_to_tag_is_never_a_merge():
    layer = TransactionLayer(new_branch=branches("x"))
    layer.receive(make_request("BYE", branch="z9hG4bK1", to_tag="t"), ALICE, 0.0)
    layer.receive(make_request("BYE", branch="z9hG4bK2", to_tag="t"), ALICE, 0.0)
    assert [type(e) for e in layer.events()] == [RequestReceived, RequestReceived]


# --- where responses go ----------------------------------------------------------------

def test_response_goes_to_received_address_and_rport_behind_nat():
    nat = Peer("UDP", "198.51.100.9", 40000)
    net = Net(alice_source=nat)
    txn = net.call(make_request(via="192.168.1.20:5060;rport"))
    assert txn.request.top_via.params["received"] == "198.51.100.9"
    net.answer(txn, 200)
    [(_, _, peer)] = [w for w in net.wire if w[0] == "bob"]
    assert peer == nat


@pytest.mark.parametrize(("via", "transport", "conn", "expected"), [
    ("SIP/2.0/UDP 192.168.1.20:5062;received=203.0.113.5;rport=41000", "UDP", None,
     Peer("UDP", "203.0.113.5", 41000)),
    ("SIP/2.0/UDP 192.168.1.20:5062;received=203.0.113.5", "UDP", None,
     Peer("UDP", "203.0.113.5", 5062)),
    ("SIP/2.0/UDP 192.168.1.20;received=203.0.113.5;rport", "UDP", None,
     Peer("UDP", "203.0.113.5", 5060)),
    ("SIP/2.0/UDP pc.example.com", "UDP", None, Peer("UDP", "pc.example.com", 5060)),
    # maddr is not followed: it would let a sender aim responses at a third host.
    ("SIP/2.0/UDP 10.1.1.1:5080;maddr=239.255.255.1", "UDP", None,
     Peer("UDP", "10.1.1.1", 5080)),
    ("SIP/2.0/TCP 192.168.1.20:5062;received=203.0.113.5;rport=41000", "TCP", 12,
     Peer("TCP", "203.0.113.5", 41000, 12)),
    ("SIP/2.0/TLS [2001:db8::1]", "TLS", 3, Peer("TLS", "2001:db8::1", 5061, 3)),
])
def test_response_peer(via: str, transport: str, conn: int | None, expected: Peer):
    assert response_peer(Via.parse(via), transport, conn) == expected


# --- RFC 2543 peers -------------------------------------------------------------------

def test_rfc2543_requests_without_cookie_are_matched_by_their_fields():
    layer = TransactionLayer(new_branch=branches("x"))
    invite = make_request(branch="")
    layer.receive(invite, ALICE, 0.0)
    [event] = layer.events()
    assert isinstance(event, RequestReceived)
    layer.send_response(event.transaction, build_response(invite, 404, to_tag="zz"), 0.0)
    layer.receive(make_request(branch=""), ALICE, 0.1)  # retransmission
    assert layer.events() == [] and len(layer.outgoing()) == 2
    layer.receive(make_request("ACK", branch="", cseq=1, to_tag="zz"), ALICE, 0.2)
    assert layer.events() == []
    assert event.transaction.state is InviteServerState.CONFIRMED


def test_rfc2543_ack_with_another_to_tag_is_not_ours():
    layer = TransactionLayer(new_branch=branches("x"))
    layer.receive(make_request(branch="old1"), ALICE, 0.0)
    [event] = layer.events()
    assert isinstance(event, RequestReceived)
    layer.send_response(event.transaction,
                        build_response(event.request, 404, to_tag="zz"), 0.0)
    layer.receive(make_request("ACK", branch="old1", to_tag="other"), ALICE, 0.1)
    assert [type(e) for e in layer.events()] == [AckReceived]


# --- failures, limits and TU mistakes ---------------------------------------------------

def test_transport_failure_ends_the_transactions_to_that_peer():
    net = Net()
    net.alice.send_request(make_request(), BOB, 0.0)
    net.alice.send_request(make_request("OPTIONS", branch="z9hG4bKo"), ALICE, 0.0)
    net.alice.transport_failed(BOB, 0.1)
    events = net.alice.events()
    assert [type(e) for e in events] == [TransportFailed, TransactionTerminated]
    assert events[0] == TransportFailed(events[1].transaction, BOB)  # type: ignore[union-attr]
    assert [t.method for t in net.alice.transactions()] == ["OPTIONS"]


def test_closed_tcp_connection_fails_server_transactions_on_it():
    layer = TransactionLayer(new_branch=branches("x"))
    conn = Peer("TCP", "10.0.0.1", 50123, 9)
    layer.receive(make_request("OPTIONS", transport="TCP"), conn, 0.0)
    layer.transport_failed(Peer("TCP", "10.0.0.1", 50123, 9), 1.0)
    assert [type(e) for e in layer.events()] == [
        RequestReceived, TransportFailed, TransactionTerminated]
    assert len(layer) == 0


def test_full_table_answers_503_with_retry_after():
    layer = TransactionLayer(new_branch=branches("x"), new_tag=lambda: "t503",
                             max_transactions=1)
    layer.receive(make_request("OPTIONS", branch="z9hG4bK1"), ALICE, 0.0)
    layer.outgoing()
    layer.receive(make_request("OPTIONS", branch="z9hG4bK2", call_id="c2"), ALICE, 0.0)
    [out] = layer.outgoing()
    response = parse_message(out.data)
    assert isinstance(response, Response)
    assert response.status == 503 and response.headers.get("Retry-After") == "10"
    assert response.to.tag == "t503" and out.peer == ALICE
    assert [type(e) for e in layer.events()] == [RequestReceived]
    assert len(layer) == 1 and layer.overload_rejections == 1


def test_terminated_transactions_leave_the_table():
    net = Net()
    txn = net.call(make_request("OPTIONS"))
    assert len(net.alice) == 1 and len(net.bob) == 1
    net.answer(txn, 200)
    net.advance(5.0)  # Timer K
    assert len(net.alice) == 0
    net.advance(32.0)  # Timer J
    assert len(net.bob) == 0
    assert of_type(net.bob_events, TransactionTerminated) == [TransactionTerminated(txn)]


@pytest.mark.parametrize(("request_", "message"), [
    (make_request(branch=""), "top Via of INVITE needs a branch starting with z9hG4bK"),
    (make_request(branch="abc"), "top Via of INVITE needs a branch starting with z9hG4bK"),
    (make_request("ACK"), "ACK is not a transaction; send it with send_ack"),
])
def test_send_request_refuses_what_cannot_be_a_client_transaction(request_: Request,
                                                                  message: str):
    layer = TransactionLayer(new_branch=branches("x"))
    with pytest.raises(LocalProtocolError) as info:
        layer.send_request(request_, BOB, 0.0)
    assert str(info.value) == message
    assert len(layer) == 0 and layer.outgoing() == []


def test_send_request_refuses_a_branch_in_use():
    layer = TransactionLayer(new_branch=branches("x"))
    layer.send_request(make_request(), BOB, 0.0)
    with pytest.raises(LocalProtocolError) as info:
        layer.send_request(make_request(), BOB, 0.0)
    assert str(info.value) == "branch z9hG4bKa1 is already used by a live INVITE transaction"


def test_send_response_after_the_final_is_refused():
    layer = TransactionLayer(new_branch=branches("x"))
    request = make_request("OPTIONS")
    layer.receive(request, ALICE, 0.0)
    [event] = layer.events()
    assert isinstance(event, RequestReceived)
    layer.send_response(event.transaction, build_response(request, 200), 0.0)
    with pytest.raises(LocalProtocolError) as info:
        layer.send_response(event.transaction, build_response(request, 180), 0.0)
    assert str(info.value) == ("1xx from TU is not allowed in the non-INVITE server "
                               "transaction's Completed state")


def test_send_response_on_a_terminated_transaction_is_refused():
    layer = TransactionLayer(new_branch=branches("x"))
    request = make_request("INVITE")
    layer.receive(request, ALICE, 0.0)
    [event] = layer.events()
    assert isinstance(event, RequestReceived)
    layer.send_response(event.transaction, build_response(request, 200), 0.0)
    layer.handle_timer(32.0)
    with pytest.raises(LocalProtocolError) as info:
        layer.send_response(event.transaction, build_response(request, 200), 33.0)
    assert str(info.value) == ("<ServerTransaction #1 INVITE z9hG4bKa1 Terminated> "
                               "is not a live server transaction")


def test_send_response_with_another_requests_cseq_is_refused():
    layer = TransactionLayer(new_branch=branches("x"))
    layer.receive(make_request("OPTIONS"), ALICE, 0.0)
    [event] = layer.events()
    assert isinstance(event, RequestReceived)
    with pytest.raises(LocalProtocolError) as info:
        layer.send_response(event.transaction,
                            build_response(make_request("OPTIONS", cseq=2), 200), 0.0)
    assert str(info.value) == "response CSeq 2 OPTIONS does not match the request's 1 OPTIONS"


def test_new_branch_must_carry_the_magic_cookie():
    assert TransactionLayer(new_branch=lambda: "z9hG4bKq").new_branch() == "z9hG4bKq"
    with pytest.raises(LocalProtocolError) as info:
        TransactionLayer(new_branch=lambda: "q1").new_branch()
    assert str(info.value) == "branch 'q1' does not start with z9hG4bK"


def test_2xx_from_another_fork_after_a_failure_is_passed_up_not_acked():
    net = Net()
    txn = net.call()
    net.answer(txn, 486)
    [client] = net.alice.transactions()
    forked_ok = build_response(txn.request, 200, to_tag="fork2")
    net.alice.receive(forked_ok, BOB, net.now)
    assert net.alice.events() == [ResponseReceived(client, forked_ok)]  # type: ignore[arg-type]
    assert net.alice.outgoing() == []  # its ACK is the TU's (§13.2.2.4)
    assert client.state is InviteClientState.COMPLETED
