"""The SIP transaction layer (RFC 3261 §17, updated by RFC 6026), sans-I/O.

In: `receive(message, peer, now)`, `send_request`, `send_response`, `handle_timer(now)`,
`transport_failed(peer, now)`. Out: `outgoing()` (bytes for the transport), `events()`
(past-tense events for the transaction user), `next_deadline()` (when to call
`handle_timer` next). The state machines, their timers and the transaction records
live in `transaction_states`; this module matches messages to transactions (§17.1.3,
§17.2.3, §8.2.2.2, §9.2), runs the actions the tables name and keeps the timer heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import NamedTuple

from switch.sip.errors import LocalProtocolError, SipError
from switch.sip.message import Headers, Request, Response, SipMessage, build_response
from switch.sip.peer import Outgoing, Peer, response_peer
from switch.sip.transaction_states import (
    INITIAL,
    T1_S,
    T2_S,
    T4_S,
    TIMERS,
    Action,
    ArmedTimer,
    ClientTransaction,
    Kind,
    ServerTransaction,
    Timer,
    Transaction,
    Trigger,
    apply,
    next_interval_s,
    trigger_for_status,
)

__all__ = [
    "MAGIC_COOKIE", "AckReceived", "ClientTransaction", "MergedRequestRejected", "Outgoing",
    "Peer", "RequestReceived", "ResponseReceived", "ServerTransaction",
    "StrayResponseReceived", "Transaction", "TransactionEvent", "TransactionLayer",
    "TransactionTerminated", "TransactionTimedOut", "TransportFailed", "build_ack",
    "response_peer", "server_key",
]

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: marks branches unique per transaction
DEFAULT_MAX_TRANSACTIONS = 100_000
OVERLOAD_RETRY_AFTER_S = 10  # Retry-After of the 503 sent when the table is full


# Events for the transaction user, in the order they happened.

@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request: answer it with `send_response(transaction, ...)`."""

    transaction: ServerTransaction
    request: Request


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    transaction: ClientTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK outside any transaction (the ACK for a 2xx, §17.1.1.3), or one matching
    an INVITE server transaction in RFC 6026's Accepted state."""

    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class StrayResponseReceived:
    """A response matching no client transaction: e.g. a 2xx retransmission for an
    INVITE whose transaction is gone, which the TU must still ACK (RFC 6026 §8.4)."""

    response: Response
    peer: Peer


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B or F (the TU treats it as a 408, §8.1.3.1) or H (no ACK came)."""

    transaction: Transaction
    timer: Timer


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class MergedRequestRejected:
    """A request that reached us twice by different paths was answered 482 (§8.2.2.2)."""

    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """Sending to `peer` failed (§17.1.4, §17.2.4); the TU treats it as a 503."""

    transaction: Transaction
    peer: Peer


TransactionEvent = (RequestReceived | ResponseReceived | AckReceived | StrayResponseReceived
                    | TransactionTimedOut | TransactionTerminated | MergedRequestRejected
                    | TransportFailed)

class _Input(NamedTuple):
    """What drives one step: the trigger and the message and peer that came with it."""

    trigger: Trigger | Timer
    message: SipMessage | None = None
    peer: Peer | None = None


_Handler = Callable[[Transaction, _Input], None]


def _has_cookie(branch: str | None) -> bool:
    return branch is not None and branch.startswith(MAGIC_COOKIE)


def server_key(request: Request, method: str) -> Hashable:
    """The key matching a request to a server transaction (§17.2.3): branch, sent-by
    and method when the branch carries the magic cookie; otherwise RFC 2543's Request-URI,
    tags, Call-ID, CSeq and top Via. `method` is INVITE for an ACK or a CANCEL's target.

    The CSeq number is part of the key too. §17.2.3 does not need it (a client makes a
    new branch for every new request), but some clients reuse the branch: pyVoIP 1.6.8
    resends its INVITE after a 401 with the same branch and the next CSeq, and taken
    for a retransmission it would get no answer at all. A retransmission carries the
    same number, and so do the ACK of a non-2xx final (§17.1.1.3) and a CANCEL (§9.1),
    so they still find their INVITE.
    """
    via = request.top_via
    if _has_cookie(via.branch):
        return ("3261", via.branch, via.host.lower(), via.port, method, request.cseq.seq)
    return _legacy_key(request, method, request.to.tag)


def _legacy_key(request: Request, method: str, to_tag: str | None) -> Hashable:
    via = request.top_via
    # received/rport are added by our own transport and say nothing about the sender.
    via_params = frozenset((k, v) for k, v in via.params.items()
                           if k not in ("received", "rport"))
    return ("2543", request.uri.serialize(), to_tag, request.from_.tag, request.call_id,
            request.cseq.seq, method, via.transport, via.host.lower(), via.port, via_params)


def _required(message: SipMessage, name: str) -> str:
    value = message.headers.get(name)
    if value is None:
        raise LocalProtocolError(f"cannot build ACK: missing {name} header")
    return value


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (§17.1.1.3): the INVITE's Request-URI,
    Call-ID, From, top Via only and Route set; the response's To (with its tag);
    the INVITE's CSeq number with method ACK."""
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", _required(invite, "From"))
    headers.add("To", _required(response, "To"))
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return Request("ACK", invite.uri, headers)


def _same_peer(transaction_peer: Peer, failed: Peer) -> bool:
    if failed.connection_id is not None and failed.connection_id == transaction_peer.connection_id:
        return True
    return ((transaction_peer.transport, transaction_peer.host, transaction_peer.port)
            == (failed.transport, failed.host, failed.port))


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    def __init__(self, *, new_branch: Callable[[], str],
                 new_tag: Callable[[], str] | None = None,
                 t1_s: float = T1_S, t2_s: float = T2_S, t4_s: float = T4_S,
                 max_transactions: int = DEFAULT_MAX_TRANSACTIONS) -> None:
        if not 0 < t1_s <= t2_s or t4_s < 0:
            raise LocalProtocolError(f"bad timer values T1={t1_s} T2={t2_s} T4={t4_s}")
        if max_transactions < 1:
            raise LocalProtocolError(f"max_transactions must be positive: {max_transactions}")
        self._new_branch = new_branch
        # Tags for the responses the layer writes itself (482, 503); any fresh random
        # token will do, and the branch source is one (§19.3).
        self._new_tag = new_tag or (lambda: self.new_branch()[len(MAGIC_COOKIE):])
        self.t1_s, self.t2_s, self.t4_s = t1_s, t2_s, t4_s
        self.max_transactions = max_transactions
        self.overload_rejections = 0
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[Hashable, ServerTransaction] = {}
        self._merge_index: dict[tuple[str, str, int, str], ServerTransaction] = {}
        self._timer_heap: list[tuple[float, int, Timer, Transaction]] = []
        self._counter = 0
        self._outgoing: list[Outgoing] = []
        self._events: list[TransactionEvent] = []
        self._actions: dict[Action, _Handler] = {
            Action.PASS_RESPONSE: self._pass_response,
            Action.PASS_ACK: self._pass_ack,
            Action.SEND_ACK: self._send_ack,
            Action.RETRANSMIT_REQUEST: self._retransmit_request,
            Action.SEND_RESPONSE: self._send_response,
            Action.SEND_TRYING: self._send_trying,
            Action.RESEND_RESPONSE: self._resend_response,
            Action.REPORT_TIMEOUT: self._report_timeout,
            Action.REPORT_TRANSPORT_ERROR: self._report_transport_error,
        }

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def transactions(self) -> list[Transaction]:
        """Every live transaction, clients first."""
        return [*self._clients.values(), *self._servers.values()]

    def new_branch(self) -> str:
        """A fresh branch for a Via this endpoint adds (§8.1.1.7)."""
        branch = self._new_branch()
        if not branch.startswith(MAGIC_COOKIE) or len(branch) == len(MAGIC_COOKIE):
            raise LocalProtocolError(f"branch {branch!r} does not start with {MAGIC_COOKIE}")
        return branch

    # --- input from the transport ---------------------------------------------------

    def receive(self, message: SipMessage, peer: Peer, now: float) -> None:
        """A parsed message from `peer` (the transport has already added received/rport
        to a request's top Via)."""
        if isinstance(message, Response):
            self._receive_response(message, peer, now)
        elif message.method == "ACK":
            self._receive_ack(message, peer, now)
        else:
            self._receive_request(message, peer, now)

    def _receive_response(self, response: Response, peer: Peer, now: float) -> None:
        # §17.1.3: the top Via's branch and the CSeq method name the transaction.
        branch = response.top_via.branch
        txn = self._clients.get((branch, response.cseq.method)) if branch else None
        if txn is None:
            self._events.append(StrayResponseReceived(response, peer))
            return
        trigger = trigger_for_status(response.status, received=True)
        self._step(txn, _Input(trigger, response, peer), now)

    def _receive_ack(self, ack: Request, peer: Peer, now: float) -> None:
        txn = self._match_ack(ack)
        if txn is None:
            self._events.append(AckReceived(ack, peer))
            return
        self._step(txn, _Input(Trigger.ACK_RECEIVED, ack, peer), now)

    def _match_ack(self, ack: Request) -> ServerTransaction | None:
        txn = self._servers.get(server_key(ack, "INVITE"))
        if txn is not None or ack.to.tag is None or _has_cookie(ack.top_via.branch):
            return txn
        # RFC 2543 peer: the INVITE had no To tag; its ACK carries the one we answered with.
        txn = self._servers.get(_legacy_key(ack, "INVITE", None))
        if txn is not None and txn.last_response is not None \
                and txn.last_response.to.tag == ack.to.tag:
            return txn
        return None

    def _receive_request(self, request: Request, peer: Peer, now: float) -> None:
        key = server_key(request, request.method)
        txn = self._servers.get(key)
        if txn is not None:
            self._step(txn, _Input(Trigger.REQUEST_RECEIVED, request, peer), now)
            return
        if len(self) >= self.max_transactions:
            self._reject_overloaded(request, peer)
            return
        merge_key = self._merge_key(request)
        merged = merge_key is not None and merge_key in self._merge_index
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        self._counter += 1
        txn = ServerTransaction(kind, request, peer, self._counter, key)
        self._servers[key] = txn
        self._start(txn, now)
        if merged:
            # §8.2.2.2: the same request by another path; answer through a transaction
            # of its own so retransmissions of it are absorbed too.
            txn.internal = True
            self._events.append(MergedRequestRejected(request, peer))
            loop_detected = build_response(request, 482, to_tag=self._new_tag())
            self._step(txn, _Input(Trigger.FAILURE_SENT, loop_detected), now)
            return
        if merge_key is not None:
            txn.merge_key = merge_key
            self._merge_index[merge_key] = txn
        self._events.append(RequestReceived(txn, request))

    @staticmethod
    def _merge_key(request: Request) -> tuple[str, str, int, str] | None:
        from_tag = request.from_.tag
        if request.to.tag is not None or from_tag is None:
            return None
        return (from_tag, request.call_id, request.cseq.seq, request.cseq.method)

    def _reject_overloaded(self, request: Request, peer: Peer) -> None:
        # Statelessly: keeping state for it is what we cannot afford.
        response = build_response(request, 503, to_tag=self._new_tag())
        response.headers.add("Retry-After", str(OVERLOAD_RETRY_AFTER_S))
        self.overload_rejections += 1
        self._send(response.serialize(),
                   response_peer(request.top_via, peer.transport, peer.connection_id))

    def transport_failed(self, peer: Peer, now: float) -> None:
        """The transport could not send to `peer` (or its connection closed): every
        transaction talking to it ends with `TransportFailed` (§17.1.4, §17.2.4)."""
        victims: list[Transaction] = [
            *(t for t in self._clients.values() if _same_peer(t.peer, peer)),
            *(t for t in self._servers.values() if _same_peer(t.response_peer, peer))]
        for txn in victims:
            if not txn.terminated:
                self._step(txn, _Input(Trigger.TRANSPORT_ERROR, None, peer), now)

    # --- input from the transaction user --------------------------------------------

    def send_request(self, request: Request, peer: Peer, now: float) -> ClientTransaction:
        """Start a client transaction. The caller built the request, including a top Via
        whose branch starts with the magic cookie (see `new_branch`)."""
        if request.method == "ACK":
            raise LocalProtocolError("ACK is not a transaction; send it with send_ack")
        try:
            branch = request.top_via.branch
            cseq = request.cseq
        except SipError as exc:
            raise LocalProtocolError(f"cannot send {request.method}: {exc}") from exc
        if branch is None or not _has_cookie(branch):
            raise LocalProtocolError(
                f"top Via of {request.method} needs a branch starting with {MAGIC_COOKIE}")
        if cseq.method != request.method:
            raise LocalProtocolError(f"CSeq method {cseq.method} is not {request.method}")
        key = (branch, request.method)
        if key in self._clients:
            raise LocalProtocolError(
                f"branch {branch} is already used by a live {request.method} transaction")
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        self._counter += 1
        txn = ClientTransaction(kind, request, peer, self._counter, key)
        self._clients[key] = txn
        self._send(txn.request_bytes, peer)
        self._start(txn, now)
        return txn

    def send_ack(self, ack: Request, peer: Peer) -> None:
        """Send an ACK for a 2xx: a request outside any transaction (§13.2.2.4)."""
        if ack.method != "ACK":
            raise LocalProtocolError(f"send_ack got a {ack.method}")
        self._send(ack.serialize(), peer)

    def send_response(self, transaction: ServerTransaction, response: Response,
                      now: float) -> None:
        if not isinstance(transaction, ServerTransaction) \
                or self._servers.get(transaction.key) is not transaction:
            raise LocalProtocolError(f"{transaction!r} is not a live server transaction")
        if not 100 <= response.status <= 699:
            raise LocalProtocolError(f"status code out of range: {response.status}")
        try:
            cseq = response.cseq
        except SipError as exc:
            raise LocalProtocolError(f"cannot send {response.status}: {exc}") from exc
        if cseq != transaction.request.cseq:
            raise LocalProtocolError(f"response CSeq {cseq} does not match the request's "
                                     f"{transaction.request.cseq}")
        trigger = trigger_for_status(response.status, received=False)
        self._step(transaction, _Input(trigger, response), now)

    def find_server_transaction_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL targets (§9.2): matched like a request
        of that transaction, but with method INVITE."""
        txn = self._servers.get(server_key(cancel, "INVITE"))
        return txn if txn is not None and txn.kind is Kind.INVITE_SERVER else None

    # --- timers and output ------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._timer_heap
        while heap and not self._is_live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at `now`, earliest first."""
        heap = self._timer_heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._is_live(entry):
                continue
            _, _, timer, txn = entry
            self._step(txn, _Input(timer), now)

    def outgoing(self) -> list[Outgoing]:
        out, self._outgoing = self._outgoing, []
        return out

    def events(self) -> list[TransactionEvent]:
        events, self._events = self._events, []
        return events

    # --- the state machine ------------------------------------------------------------

    def _start(self, txn: Transaction, now: float) -> None:
        for timer in INITIAL[txn.kind][1]:
            self._arm(txn, timer, now)

    def _step(self, txn: Transaction, got: _Input, now: float) -> None:
        trigger = got.trigger
        transition = apply(txn.kind, txn.state, trigger)
        fired = txn.timers.pop(trigger, None) if isinstance(trigger, Timer) else None
        txn.state = transition.next
        for timer in transition.stop:
            txn.timers.pop(timer, None)
        for action in transition.actions:
            self._actions[action](txn, got)
        if txn.terminated:
            self._remove(txn)
            return
        if transition.backoff is not None and fired is not None:
            assert isinstance(trigger, Timer)
            self._arm(txn, trigger, now,
                      next_interval_s(transition.backoff, fired.duration_s, self.t2_s))
        for timer in transition.arm:
            self._arm(txn, timer, now)

    def _arm(self, txn: Transaction, timer: Timer, now: float,
             duration_s: float | None = None) -> None:
        if duration_s is None:
            duration_s = TIMERS[timer].duration_s(self.t1_s, self.t4_s, txn.peer.reliable)
            if duration_s is None:
                return
        self._counter += 1
        armed = ArmedTimer(now + duration_s, duration_s, self._counter)
        txn.timers[timer] = armed
        heapq.heappush(self._timer_heap, (armed.deadline, armed.token, timer, txn))

    @staticmethod
    def _is_live(entry: tuple[float, int, Timer, Transaction]) -> bool:
        _, token, timer, txn = entry
        armed = txn.timers.get(timer)
        return armed is not None and armed.token == token

    def _remove(self, txn: Transaction) -> None:
        txn.timers.clear()
        if isinstance(txn, ClientTransaction):
            if self._clients.get(txn.key) is txn:
                del self._clients[txn.key]
        elif isinstance(txn, ServerTransaction):
            if self._servers.get(txn.key) is txn:
                del self._servers[txn.key]
            if txn.merge_key is not None and self._merge_index.get(txn.merge_key) is txn:
                del self._merge_index[txn.merge_key]
        if not txn.internal:
            self._events.append(TransactionTerminated(txn))

    def _send(self, data: bytes, peer: Peer) -> None:
        self._outgoing.append(Outgoing(data, peer))

    # --- actions named by the tables ----------------------------------------------------

    def _pass_response(self, txn: Transaction, got: _Input) -> None:
        assert isinstance(txn, ClientTransaction) and isinstance(got.message, Response)
        txn.last_response = got.message
        self._events.append(ResponseReceived(txn, got.message))

    def _pass_ack(self, txn: Transaction, got: _Input) -> None:
        assert isinstance(got.message, Request) and got.peer is not None
        self._events.append(AckReceived(got.message, got.peer))

    def _send_ack(self, txn: Transaction, got: _Input) -> None:
        # Built from each final received: a retransmission gets the same bytes again.
        assert isinstance(got.message, Response)
        self._send(build_ack(txn.request, got.message).serialize(), txn.peer)

    def _retransmit_request(self, txn: Transaction, got: _Input) -> None:
        assert isinstance(txn, ClientTransaction)
        self._send(txn.request_bytes, txn.peer)

    def _send_response(self, txn: Transaction, got: _Input) -> None:
        assert isinstance(txn, ServerTransaction) and isinstance(got.message, Response)
        txn.last_response = got.message
        txn.last_response_bytes = got.message.serialize()
        self._send(txn.last_response_bytes, txn.response_peer)

    def _send_trying(self, txn: Transaction, got: _Input) -> None:
        self._send_response(txn, _Input(got.trigger, build_response(txn.request, 100)))

    def _resend_response(self, txn: Transaction, got: _Input) -> None:
        assert isinstance(txn, ServerTransaction)
        if txn.last_response_bytes is not None:
            self._send(txn.last_response_bytes, txn.response_peer)

    def _report_timeout(self, txn: Transaction, got: _Input) -> None:
        assert isinstance(got.trigger, Timer)
        if not txn.internal:
            self._events.append(TransactionTimedOut(txn, got.trigger))

    def _report_transport_error(self, txn: Transaction, got: _Input) -> None:
        assert got.peer is not None
        if not txn.internal:
            self._events.append(TransportFailed(txn, got.peer))
