"""Every RFC 3261 / RFC 6026 transaction timer, to the exact second, on UDP and TCP.

Two sans-I/O endpoints are wired in memory: what one layer queues is parsed and fed
to the other, unless the drop filter eats it. Time only moves when a test says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from switch.sip.message import Headers, Request, Response, build_response, parse_message
from switch.sip.peer import Outgoing, Peer
from switch.sip.transaction import (
    RequestReceived,
    ResponseReceived,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
)
from switch.sip.transaction_states import (
    InviteClientState,
    InviteServerState,
    NonInviteClientState,
    NonInviteServerState,
    Timer,
)
from switch.sip.uri import parse_uri

CLIENT_HOST, SERVER_HOST = "10.0.0.1", "10.0.0.2"
BOB_URI = parse_uri(f"sip:bob@{SERVER_HOST}")


def branches(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"z9hG4bK{prefix}{next(counter)}"


class Wire:
    """A client and a server layer joined by a lossy in-memory network."""

    def __init__(self, transport: str = "UDP", *, t1_s: float = 0.5, t2_s: float = 4.0,
                 t4_s: float = 5.0) -> None:
        self.transport = transport
        self.client = TransactionLayer(new_branch=branches("c"), t1_s=t1_s, t2_s=t2_s, t4_s=t4_s)
        self.server = TransactionLayer(new_branch=branches("s"), t1_s=t1_s, t2_s=t2_s, t4_s=t4_s)
        conn = 7 if transport == "TCP" else None
        self.to_server = Peer(transport, SERVER_HOST, 5060)
        self.from_client = Peer(transport, CLIENT_HOST, 5060, conn)
        self.from_server = Peer(transport, SERVER_HOST, 5060, conn)
        self.now = 0.0
        self.drop: Callable[[str, bytes], bool] = lambda side, data: False
        self.sent: list[tuple[float, str, bytes]] = []  # (time, "client"/"server", bytes)
        self.client_events: list[TransactionEvent] = []
        self.server_events: list[TransactionEvent] = []

    def pump(self) -> None:
        moving = True
        while moving:
            moving = False
            for side, src, dst, peer in (("client", self.client, self.server, self.from_client),
                                         ("server", self.server, self.client, self.from_server)):
                for out in src.outgoing():
                    self.sent.append((self.now, side, out.data))
                    if not self.drop(side, out.data):
                        dst.receive(parse_message(out.data), peer, self.now)
                        moving = True
            self.client_events += self.client.events()
            self.server_events += self.server.events()

    def advance(self, until: float) -> None:
        """Fire every timer of both sides in order up to `until`, then set the clock."""
        while True:
            due = [d for d in (self.client.next_deadline(), self.server.next_deadline())
                   if d is not None and d <= until]
            if not due:
                break
            self.now = min(due)
            self.client.handle_timer(self.now)
            self.server.handle_timer(self.now)
            self.pump()
        self.now = until

    def times(self, side: str, start: bytes) -> list[float]:
        return [t for t, s, data in self.sent if s == side and data.startswith(start)]

    def request(self, method: str = "INVITE") -> Request:
        headers = Headers([
            ("Via", f"SIP/2.0/{self.transport} {CLIENT_HOST}:5060;branch="
                    f"{self.client.new_branch()}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@example.com>;tag=a1"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", f"call-{method}"),
            ("CSeq", f"1 {method}"),
        ])
        message = parse_message(Request(method, BOB_URI, headers).serialize())
        assert isinstance(message, Request)
        return message

    def start(self, method: str = "INVITE") -> None:
        self.client.send_request(self.request(method), self.to_server, self.now)
        self.pump()

    def server_txn(self) -> RequestReceived:
        [received] = [e for e in self.server_events if isinstance(e, RequestReceived)]
        return received

    def answer(self, status: int) -> Response:
        received = self.server_txn()
        response = build_response(received.request, status, to_tag="b1")
        self.server.send_response(received.transaction, response, self.now)
        self.pump()
        return response


def timeouts(events: list[TransactionEvent]) -> list[Timer]:
    return [e.timer for e in events if isinstance(e, TransactionTimedOut)]


def terminated_count(events: list[TransactionEvent]) -> int:
    return sum(isinstance(e, TransactionTerminated) for e in events)


# --- UDP: retransmission and timeout timers ------------------------------------------

def test_timer_a_doubles_invite_retransmissions_and_timer_b_times_out_at_64_t1():
    wire = Wire()
    wire.drop = lambda side, data: True
    wire.start("INVITE")
    wire.advance(40.0)
    assert wire.times("client", b"INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert timeouts(wire.client_events) == [Timer.B]
    assert len(wire.client) == 0


def test_timer_b_fires_at_exactly_32_seconds():
    wire = Wire()
    wire.drop = lambda side, data: True
    wire.start("INVITE")
    wire.advance(31.999)
    assert len(wire.client) == 1 and timeouts(wire.client_events) == []
    wire.advance(32.0)
    assert timeouts(wire.client_events) == [Timer.B]
    # Timed out, then removed: the TU hears both, in that order.
    assert [type(e).__name__ for e in wire.client_events] == [
        "TransactionTimedOut", "TransactionTerminated"]


def test_timer_e_doubles_up_to_t2_and_timer_f_times_out_non_invite():
    wire = Wire()
    wire.drop = lambda side, data: True
    wire.start("OPTIONS")
    wire.advance(40.0)
    assert wire.times("client", b"OPTIONS") == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert timeouts(wire.client_events) == [Timer.F]


def test_timer_e_in_proceeding_retransmits_every_t2():
    wire = Wire()
    wire.start("MESSAGE")
    wire.answer(100)  # client now Proceeding; its final never comes
    wire.advance(40.0)
    assert wire.times("client", b"MESSAGE") == [
        0.0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert timeouts(wire.client_events) == [Timer.F]
    # The server re-sent its 100 for each retransmission it absorbed.
    assert wire.times("server", b"SIP/2.0 100") == [
        0.0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert sum(isinstance(e, RequestReceived) for e in wire.server_events) == 1


def test_timer_d_keeps_the_invite_client_completed_for_32_seconds():
    wire = Wire()
    wire.start("INVITE")
    wire.advance(2.0)
    wire.answer(486)
    statuses = [(e.response.status, e.transaction) for e in wire.client_events
                if isinstance(e, ResponseReceived)]
    assert [status for status, _ in statuses] == [100, 486]  # the automatic 100 at 0.2
    client_txn = statuses[-1][1]
    assert client_txn.state is InviteClientState.COMPLETED
    assert client_txn.armed == {Timer.D: 34.0}
    wire.advance(33.999)
    assert len(wire.client) == 1
    wire.advance(34.0)
    assert len(wire.client) == 0 and timeouts(wire.client_events) == []


def test_timer_g_retransmits_the_final_and_timer_h_gives_up_without_ack():
    wire = Wire()
    wire.drop = lambda side, data: data.startswith(b"ACK")
    wire.start("INVITE")
    wire.answer(486)
    wire.advance(40.0)
    assert wire.times("server", b"SIP/2.0 486") == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert timeouts(wire.server_events) == [Timer.H]
    # Each retransmitted 486 that reached the client was ACKed again, never passed up.
    assert wire.times("client", b"ACK") == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert sum(isinstance(e, ResponseReceived) for e in wire.client_events) == 1


def test_timer_i_absorbs_ack_retransmissions_for_t4_after_the_ack():
    wire = Wire()
    wire.start("INVITE")
    wire.advance(1.0)
    wire.answer(603)
    server_txn = wire.server_txn().transaction
    assert server_txn.state is InviteServerState.CONFIRMED
    assert server_txn.armed == {Timer.I: 6.0}
    wire.advance(5.999)
    assert len(wire.server) == 1
    wire.advance(6.0)
    assert len(wire.server) == 0 and timeouts(wire.server_events) == []


def test_timer_j_keeps_the_non_invite_server_completed_for_64_t1():
    wire = Wire()
    wire.start("OPTIONS")
    wire.advance(3.0)
    wire.answer(200)
    server_txn = wire.server_txn().transaction
    assert server_txn.state is NonInviteServerState.COMPLETED
    assert server_txn.armed == {Timer.J: 35.0}
    wire.advance(34.999)
    assert len(wire.server) == 1
    wire.advance(35.0)
    assert len(wire.server) == 0


def test_timer_k_keeps_the_non_invite_client_completed_for_t4():
    wire = Wire()
    wire.start("OPTIONS")
    wire.advance(1.25)
    wire.answer(200)
    [client_txn] = [e.transaction for e in wire.client_events if isinstance(e, ResponseReceived)]
    assert client_txn.state is NonInviteClientState.COMPLETED
    assert client_txn.armed == {Timer.K: 6.25}
    wire.advance(6.25)
    assert len(wire.client) == 0


def test_timer_l_keeps_the_accepted_invite_server_for_64_t1():
    wire = Wire()
    wire.start("INVITE")
    wire.answer(200)
    server_txn = wire.server_txn().transaction
    assert server_txn.state is InviteServerState.ACCEPTED
    assert server_txn.armed == {Timer.L: 32.0}
    wire.advance(31.9)
    assert len(wire.server) == 1
    wire.advance(32.0)
    assert len(wire.server) == 0 and timeouts(wire.server_events) == []


def test_timer_m_keeps_the_accepted_invite_client_for_64_t1():
    wire = Wire()
    wire.start("INVITE")
    wire.advance(0.1)
    wire.answer(200)
    [client_txn] = [e.transaction for e in wire.client_events if isinstance(e, ResponseReceived)]
    assert client_txn.state is InviteClientState.ACCEPTED
    assert client_txn.armed == {Timer.M: 32.1}
    wire.advance(32.1)
    assert len(wire.client) == 0


def test_server_sends_100_trying_when_the_tu_is_silent_for_200_ms():
    wire = Wire()
    wire.start("INVITE")
    assert wire.server_txn().transaction.armed == {Timer.TRYING: 0.2}
    wire.advance(0.199)
    assert wire.times("server", b"SIP/2.0 100") == []
    wire.advance(0.2)
    assert wire.times("server", b"SIP/2.0 100") == [0.2]
    # The 100 quenched the client's retransmissions (it is Proceeding now).
    wire.advance(10.0)
    assert wire.times("client", b"INVITE") == [0.0]


def test_no_automatic_100_when_the_tu_answers_within_200_ms():
    wire = Wire()
    wire.start("INVITE")
    wire.advance(0.15)
    wire.answer(180)
    wire.advance(1.0)
    assert wire.times("server", b"SIP/2.0 100") == []
    assert wire.times("server", b"SIP/2.0 180") == [0.15]


def test_no_automatic_100_for_non_invite():
    wire = Wire()
    wire.start("OPTIONS")
    assert wire.server_txn().transaction.armed == {}
    wire.advance(1.0)
    assert wire.times("server", b"SIP/2.0 100") == []


def test_t1_t2_t4_can_be_overridden():
    wire = Wire(t1_s=1.0, t2_s=2.0, t4_s=3.0)
    wire.drop = lambda side, data: True
    wire.start("OPTIONS")
    wire.advance(63.5)
    assert wire.times("client", b"OPTIONS")[:6] == [0.0, 1.0, 3.0, 5.0, 7.0, 9.0]
    assert wire.times("client", b"OPTIONS")[-1] == 63.0
    wire.advance(63.999)
    assert timeouts(wire.client_events) == []
    wire.advance(64.0)  # Timer F = 64*T1
    assert timeouts(wire.client_events) == [Timer.F]


def test_timer_d_grows_with_a_larger_t1():
    wire = Wire(t1_s=1.0, t2_s=4.0)
    wire.start("INVITE")
    wire.answer(486)
    [client_txn] = [e.transaction for e in wire.client_events if isinstance(e, ResponseReceived)]
    # At least 32 s, and never shorter than the server's 64*T1 of retransmissions.
    assert client_txn.armed == {Timer.D: 64.0}


# --- TCP: no retransmissions, zero wait states ---------------------------------------

def test_tcp_invite_client_has_no_timer_a_but_timer_b():
    wire = Wire("TCP")
    wire.drop = lambda side, data: True
    wire.start("INVITE")
    [txn] = wire.client.transactions()
    assert txn.armed == {Timer.B: 32.0}
    wire.advance(40.0)
    assert wire.times("client", b"INVITE") == [0.0]
    assert timeouts(wire.client_events) == [Timer.B]


def test_tcp_non_invite_client_has_no_timer_e_but_timer_f():
    wire = Wire("TCP")
    wire.drop = lambda side, data: True
    wire.start("OPTIONS")
    assert wire.client.next_deadline() == 32.0
    wire.advance(40.0)
    assert wire.times("client", b"OPTIONS") == [0.0]
    assert timeouts(wire.client_events) == [Timer.F]


@pytest.mark.parametrize(("method", "status", "side", "timer"), [
    ("INVITE", 486, "client", Timer.D),
    ("INVITE", 486, "server", Timer.I),
    ("OPTIONS", 200, "client", Timer.K),
    ("OPTIONS", 200, "server", Timer.J),
])
def test_tcp_wait_timers_are_zero(method: str, status: int, side: str, timer: Timer):
    wire = Wire("TCP")
    wire.start(method)
    wire.advance(2.0)
    # Catch the transaction before the zero timer is serviced.
    layer = wire.client if side == "client" else wire.server
    received = wire.server_txn()
    wire.server.send_response(received.transaction, build_response(
        received.request, status, to_tag="b1"), wire.now)
    wire.pump()
    [txn] = layer.transactions()
    assert txn.armed == {timer: 2.0}
    assert layer.next_deadline() == 2.0
    layer.handle_timer(2.0)
    assert len(layer) == 0
    assert terminated_count(layer.events()) == 1


def test_tcp_invite_server_has_no_timer_g_but_timer_h():
    wire = Wire("TCP")
    wire.drop = lambda side, data: data.startswith(b"ACK")
    wire.start("INVITE")
    wire.answer(486)
    assert wire.server_txn().transaction.armed == {Timer.H: 32.0}
    wire.advance(40.0)
    assert wire.times("server", b"SIP/2.0 486") == [0.0]
    assert timeouts(wire.server_events) == [Timer.H]


def test_tcp_timers_l_and_m_stay_64_t1():
    wire = Wire("TCP")
    wire.start("INVITE")
    wire.answer(200)
    assert wire.server_txn().transaction.armed == {Timer.L: 32.0}
    [client_txn] = [e.transaction for e in wire.client_events if isinstance(e, ResponseReceived)]
    assert client_txn.armed == {Timer.M: 32.0}


def test_tcp_responses_reuse_the_connection():
    wire = Wire("TCP")
    wire.start("OPTIONS")
    received = wire.server_txn()
    wire.server.send_response(received.transaction,
                              build_response(received.request, 200, to_tag="b1"), 0.0)
    [out] = wire.server.outgoing()
    assert out.peer == Peer("TCP", CLIENT_HOST, 5060, 7)
    assert isinstance(out, Outgoing)
