"""Random event sequences against two wired transaction layers (Hypothesis stateful).

Whatever the network does (lose, duplicate, reorder, forge) and whatever the
transaction users do (answer anything at any time, fail transports, let time jump),
no transaction is ever in a state its table does not define, every running timer
has a transition to fire, the tables and counts agree, and the only exception a
layer raises is LocalProtocolError, for transaction-user calls the RFC forbids.
"""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from switch.sip.errors import LocalProtocolError
from switch.sip.message import Headers, Request, Response, build_response, parse_message
from switch.sip.peer import Peer
from switch.sip.transaction import (
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    Transaction,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
)
from switch.sip.transaction_states import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    TABLES,
    TERMINATED,
    InviteClientState,
    InviteServerState,
    Kind,
    NonInviteClientState,
    NonInviteServerState,
    Trigger,
)
from switch.sip.uri import parse_uri

STATE_TYPES = {
    Kind.INVITE_CLIENT: InviteClientState, Kind.NON_INVITE_CLIENT: NonInviteClientState,
    Kind.INVITE_SERVER: InviteServerState, Kind.NON_INVITE_SERVER: NonInviteServerState,
}
STATUSES = [100, 180, 183, 200, 202, 302, 404, 482, 486, 487, 500, 603, 699]
METHODS = ["INVITE", "OPTIONS", "BYE", "REGISTER"]
BOB_URI = parse_uri("sip:bob@10.0.0.2")


def request(method: str, branch: str, *, transport: str, call: int, cseq: int = 1,
            to_tag: str | None = None) -> Request:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    branch_param = f";branch={branch}" if branch else ""
    return Request(method, BOB_URI, Headers([
        ("Via", f"SIP/2.0/{transport} 10.0.0.1:5060{branch_param}"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:alice@example.com>;tag=from{call}"),
        ("To", to),
        ("Call-ID", f"call-{call}"),
        ("CSeq", f"{cseq} {method}"),
    ]))


class TransactionMachine(RuleBasedStateMachine):
    @initialize(transport=st.sampled_from(["UDP", "TCP"]))
    def start(self, transport: str) -> None:
        counter = itertools.count(1)
        self.transport = transport
        self.client = TransactionLayer(new_branch=lambda: f"z9hG4bKc{next(counter)}")
        self.server = TransactionLayer(new_branch=lambda: f"z9hG4bKs{next(counter)}",
                                       max_transactions=6)
        conn = 1 if transport == "TCP" else None
        self.alice = Peer(transport, "10.0.0.1", 5060, conn)
        self.bob = Peer(transport, "10.0.0.2", 5060, conn)
        self.now = 0.0
        self.calls = itertools.count(1)
        # In flight: (to the server?, bytes)
        self.network: list[tuple[bool, bytes]] = []
        self.server_txns: list[ServerTransaction] = []
        self.client_txns: list[ClientTransaction] = []
        self.terminated: set[Transaction] = set()  # by identity
        self.finals_passed_up: dict[ClientTransaction, int] = {}

    # --- transaction users ------------------------------------------------------------

    @rule(method=st.sampled_from(METHODS))
    def send_request(self, method: str) -> None:
        req = request(method, self.client.new_branch(), transport=self.transport,
                      call=next(self.calls))
        self.client_txns.append(self.client.send_request(req, self.bob, self.now))
        self.collect()

    @rule(index=st.integers(0, 50))
    def send_cancel(self, index: int) -> None:
        if not self.client_txns:
            return
        invite = self.client_txns[index % len(self.client_txns)].request
        cancel = Request("CANCEL", invite.uri, Headers([
            (k, v) for k, v in invite.headers if k in ("Via", "From", "To", "Call-ID")]))
        cancel.headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
        # Refused when a CANCEL with this branch is already running.
        with contextlib.suppress(LocalProtocolError):
            self.client_txns.append(self.client.send_request(cancel, self.bob, self.now))
        self.collect()

    @rule(index=st.integers(0, 50), status=st.sampled_from(STATUSES))
    def respond(self, index: int, status: int) -> None:
        if not self.server_txns:
            return
        txn = self.server_txns[index % len(self.server_txns)]
        try:
            self.server.send_response(txn, build_response(txn.request, status, to_tag="b"),
                                      self.now)
        except LocalProtocolError:
            assert txn.terminated or txn.last_response is not None or txn.internal
        self.collect()

    @rule(index=st.integers(0, 50))
    def misuse(self, index: int) -> None:
        """A TU passing a client transaction where a server one is expected."""
        if not self.client_txns:
            return
        txn = self.client_txns[index % len(self.client_txns)]
        try:
            self.server.send_response(txn, Response(200), self.now)  # type: ignore[arg-type]
        except LocalProtocolError:
            pass
        else:
            raise AssertionError("a client transaction was accepted by send_response")

    @rule(to_server=st.booleans())
    def transport_fails(self, to_server: bool) -> None:
        if to_server:
            self.client.transport_failed(self.bob, self.now)
        else:
            self.server.transport_failed(self.alice, self.now)
        self.collect()

    # --- the network ------------------------------------------------------------------

    @rule(index=st.integers(0, 50), keep=st.booleans())
    def deliver(self, index: int, keep: bool) -> None:
        """Deliver one in-flight message, in any order; `keep` duplicates it."""
        if not self.network:
            return
        i = index % len(self.network)
        to_server, data = self.network[i] if keep else self.network.pop(i)
        layer, source = (self.server, self.alice) if to_server else (self.client, self.bob)
        layer.receive(parse_message(data), source, self.now)
        self.collect()

    @rule(index=st.integers(0, 50))
    def lose(self, index: int) -> None:
        if self.network:
            self.network.pop(index % len(self.network))

    @rule(dt=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0, 4.0, 5.0, 16.0, 32.0, 64.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.client.handle_timer(self.now)
        self.server.handle_timer(self.now)
        self.collect()

    @rule(method=st.sampled_from([*METHODS, "ACK", "CANCEL"]), call=st.integers(1, 4),
          branch=st.sampled_from(["", "old-style", "z9hG4bKc1", "z9hG4bKc2", "z9hG4bKx"]),
          to_tag=st.sampled_from([None, "b"]))
    def forge_request(self, method: str, call: int, branch: str, to_tag: str | None) -> None:
        """Requests the client layer never sent: merges, RFC 2543 peers, stray ACKs."""
        data = request(method, branch, transport=self.transport, call=call,
                       to_tag=to_tag).serialize()
        self.server.receive(parse_message(data), self.alice, self.now)
        self.collect()

    @rule(status=st.sampled_from(STATUSES), method=st.sampled_from([*METHODS, "CANCEL"]),
          branch=st.sampled_from(["z9hG4bKc1", "z9hG4bKc2", "z9hG4bKc3", "z9hG4bKnone"]))
    def forge_response(self, status: int, method: str, branch: str) -> None:
        req = request(method, branch, transport=self.transport, call=1)
        data = build_response(req, status, to_tag="forged").serialize()
        self.client.receive(parse_message(data), self.bob, self.now)
        self.collect()

    # --- bookkeeping and invariants ---------------------------------------------------

    def collect(self) -> None:
        for to_server, layer in ((True, self.client), (False, self.server)):
            for out in layer.outgoing():
                parse_message(out.data)  # everything we send parses
                self.network.append((to_server, out.data))
            for event in layer.events():
                self.check_event(event)

    def check_event(self, event: TransactionEvent) -> None:
        txn = getattr(event, "transaction", None)
        if txn is not None:
            assert txn not in self.terminated, f"{event} after termination"
        if isinstance(event, TransactionTerminated):
            self.terminated.add(event.transaction)
        elif isinstance(event, RequestReceived):
            self.server_txns.append(event.transaction)
        elif isinstance(event, ResponseReceived) and event.response.status >= 200 \
                and not (event.transaction.method == "INVITE" and event.response.status < 300):
            # A final is passed up once, except RFC 6026's 2xx to an INVITE.
            count = self.finals_passed_up.get(event.transaction, 0) + 1
            self.finals_passed_up[event.transaction] = count
            assert count == 1, f"final passed up twice: {event}"

    @invariant()
    def transactions_are_in_defined_states(self) -> None:
        if not hasattr(self, "client"):
            return
        for layer in (self.client, self.server):
            live = layer.transactions()
            assert len(layer) == len(live)
            assert len(self.server.transactions()) <= 6
            deadlines = []
            for txn in live:
                assert isinstance(txn.state, STATE_TYPES[txn.kind])
                assert txn.state not in TERMINATED
                assert txn not in self.terminated
                for timer, deadline in txn.armed.items():
                    # The timer has a transition to fire, and is not overdue.
                    assert (txn.state, timer) in TABLES[txn.kind], (txn, timer)
                    assert deadline >= self.now
                    deadlines.append(deadline)
            assert layer.next_deadline() == (min(deadlines) if deadlines else None)


TransactionMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestTransactionFuzz = TransactionMachine.TestCase


NETWORK_TRIGGERS = {
    Kind.INVITE_CLIENT: (Trigger.PROVISIONAL_RECEIVED, Trigger.SUCCESS_RECEIVED,
                         Trigger.FAILURE_RECEIVED, Trigger.TRANSPORT_ERROR),
    Kind.NON_INVITE_CLIENT: (Trigger.PROVISIONAL_RECEIVED, Trigger.SUCCESS_RECEIVED,
                             Trigger.FAILURE_RECEIVED, Trigger.TRANSPORT_ERROR),
    Kind.INVITE_SERVER: (Trigger.REQUEST_RECEIVED, Trigger.ACK_RECEIVED,
                         Trigger.TRANSPORT_ERROR),
    Kind.NON_INVITE_SERVER: (Trigger.REQUEST_RECEIVED, Trigger.TRANSPORT_ERROR),
}


def test_every_live_state_handles_every_network_trigger():
    """What the peer sends can never hit a missing table entry (that is for TU bugs)."""
    for kind, table in ((Kind.INVITE_CLIENT, INVITE_CLIENT),
                        (Kind.NON_INVITE_CLIENT, NON_INVITE_CLIENT),
                        (Kind.INVITE_SERVER, INVITE_SERVER),
                        (Kind.NON_INVITE_SERVER, NON_INVITE_SERVER)):
        for state in STATE_TYPES[kind]:
            if state in TERMINATED:
                continue
            for trigger in NETWORK_TRIGGERS[kind]:
                assert (state, trigger) in table, (kind, state, trigger)


def test_every_state_is_reachable_and_terminated_is_final():
    for kind, table in TABLES.items():
        reached = {target.next for target in table.values()}
        assert reached | {INITIAL_STATE[kind]} == set(STATE_TYPES[kind])
        assert not any(state in TERMINATED for state, _ in table)


INITIAL_STATE = {
    Kind.INVITE_CLIENT: InviteClientState.CALLING,
    Kind.NON_INVITE_CLIENT: NonInviteClientState.TRYING,
    Kind.INVITE_SERVER: InviteServerState.PROCEEDING,
    Kind.NON_INVITE_SERVER: NonInviteServerState.TRYING,
}
