"""OPTIONS keepalive for the PRI gateways, sans-I/O: the driver between each gateway's
`GatewayHealth` (when to probe, what an outcome means) and the transaction layer (how a
probe travels and how it ends).

The owner of the layer calls `handle_timer(now)` at `next_deadline()` and offers every
transaction event to `handle(event, now)` before anyone else; the events it claims are
the probes'. Each probe is one non-INVITE client transaction, so it ends in exactly one
way (RFC 3261 §17.1.2): a final response, timer F (reported as TransactionTimedOut, the
408 of §8.1.3.1) or a transport error (TransportFailed, the 503 of §8.1.3.1). The last
two are a missed probe, and so is no final answer within `timeout_s`; which final
responses count as one is health.py's rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from switch.pri_gateway import (
    Gateway,
    GatewayCameBack,
    GatewayHealth,
    GatewayWentDown,
    HealthEvent,
    Trunks,
)
from switch.sip import (
    ClientTransaction,
    Headers,
    Peer,
    Request,
    ResponseReceived,
    SipUri,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)

MAX_FORWARDS = "70"  # RFC 3261 §8.1.1.6: "SHOULD be 70"
PROBE_TIMEOUT_S = 5.0  # an OPTIONS unanswered this long is a missed probe

# How a Request-URI names each transport (RFC 3261 §19.1.1, §26.2.1): TLS is a sips:
# URI, TCP needs the transport parameter, UDP is the default and needs nothing.
_URI_SCHEME_AND_PARAMS: dict[str, tuple[bool, dict[str, str | None]]] = {
    "UDP": (False, {}),
    "TCP": (False, {"transport": "tcp"}),
    "TLS": (True, {}),
}


@dataclass(slots=True)
class _Probe:
    gateway: str
    transaction: ClientTransaction
    expires_at: float  # unanswered by then: a miss, whatever the transaction does later
    settled: bool = False  # its outcome has been given to the gateway's health


def _uri_host(host: str) -> str:
    """A Gateway host as a URI or Via host: IPv6 literals go in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class GatewayProbes:
    """Sends OPTIONS to every gateway whose health says a probe is due and feeds each
    probe's outcome back into that health."""

    def __init__(self, layer: TransactionLayer, trunks: Trunks, *, via_host: str,
                 via_port: int, new_token: Callable[[], str],
                 timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.layer = layer
        self.timeout_s = timeout_s
        self.trunks = trunks
        self.via_host, self.via_port = via_host, via_port
        self.new_token = new_token  # Call-IDs and From tags (injected: tests see exact bytes)
        self._probes: dict[int, _Probe] = {}  # by transaction id, until it terminates
        self._events: list[HealthEvent] = []

    def __repr__(self) -> str:
        return f"<GatewayProbes {len(self.trunks.gateways)} gateways {len(self._probes)} live>"

    # -- timers

    def next_deadline(self) -> float | None:
        """When the earliest probe is due; None when every gateway awaits an outcome."""
        deadlines = [d for h in self.trunks.health.values()
                     if (d := h.next_deadline()) is not None]
        deadlines += [p.expires_at for p in self._probes.values() if not p.settled]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        for probe in list(self._probes.values()):
            if not probe.settled and now >= probe.expires_at:
                self._settle(probe, None, now)
        for name, gateway in self.trunks.gateways.items():
            health = self.trunks.health[name]
            if health.due(now):
                self._send_probe(gateway, health, now)

    # -- transaction events

    def handle(self, event: TransactionEvent, now: float) -> bool:
        """Take the event if it belongs to one of our probes; False otherwise."""
        if not isinstance(event, ResponseReceived | TransactionTimedOut | TransportFailed
                          | TransactionTerminated):
            return False
        probe = self._probes.get(event.transaction.id)
        if probe is None or probe.transaction is not event.transaction:
            return False
        if isinstance(event, ResponseReceived):
            if event.response.status >= 200:
                self._settle(probe, event.response.status, now)
        elif isinstance(event, TransactionTerminated):
            del self._probes[event.transaction.id]
            # Every end is reported before termination; should one ever be missed, a
            # probe that ended without an answer is a miss, and the gateway keeps
            # being probed instead of waiting for an outcome that will never come.
            self._settle(probe, None, now)
        else:
            self._settle(probe, None, now)
        return True

    def events(self) -> list[GatewayWentDown | GatewayCameBack]:
        """Gateways that left or rejoined the outbound rotation since the last call."""
        events, self._events = self._events, []
        return events

    # -- internals

    def _settle(self, probe: _Probe, status: int | None, now: float) -> None:
        if probe.settled:
            return
        probe.settled = True
        health = self.trunks.health[probe.gateway]
        event = (health.probe_timed_out(now) if status is None
                 else health.response_received(status, now))
        if event is not None:
            self._events.append(event)

    def _send_probe(self, gateway: Gateway, health: GatewayHealth, now: float) -> None:
        secure, params = _URI_SCHEME_AND_PARAMS[gateway.transport]
        target = SipUri(_uri_host(gateway.host), port=gateway.port, params=dict(params),
                        secure=secure)
        us = SipUri(_uri_host(self.via_host), port=self.via_port, secure=secure)
        headers = Headers()
        headers.add("Via", f"SIP/2.0/{gateway.transport} {_uri_host(self.via_host)}:"
                           f"{self.via_port};branch={self.layer.new_branch()};rport")
        headers.add("Max-Forwards", MAX_FORWARDS)
        headers.add("From", f"<{us.serialize()}>;tag={self.new_token()}")
        headers.add("To", f"<{target.serialize()}>")
        headers.add("Call-ID", self.new_token())
        headers.add("CSeq", "1 OPTIONS")
        # §11.1: say which body we would like; SDP is what an OPTIONS answer describes.
        headers.add("Accept", "application/sdp")
        request = Request("OPTIONS", target, headers)
        peer = Peer(gateway.transport, gateway.host.strip("[]"), gateway.port)
        transaction = self.layer.send_request(request, peer, now)
        health.probe_sent(now)
        # Timer F's 32 s per probe would keep calls going to a dead gateway for minutes.
        self._probes[transaction.id] = _Probe(gateway.name, transaction,
                                              now + self.timeout_s)
