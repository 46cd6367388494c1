"""Where a SIP message comes from or goes to, and where a response must be sent.

`Peer` is what the transport hands the transaction layer with every message and what
the layer hands back with every byte string to send. `response_peer` applies the
response routing rules of RFC 3261 §18.2.2 and RFC 3581 (rport) to a request's top Via.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.sip.errors import LocalProtocolError
from switch.sip.headers import Via

# RFC 3261 §18.2.2 / §19.1.2: the port a sent-by without a port stands for.
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
# Transports without their own retransmission (RFC 3261 §17.1.1.2: "reliable").
RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS"})


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote transport address. `host` is an address literal without IPv6 brackets;
    `connection_id` names an open stream connection so a response can reuse it
    (RFC 3261 §18.2.2); it is None for UDP."""

    transport: str
    host: str
    port: int
    connection_id: int | None = None

    def __post_init__(self) -> None:
        if self.transport not in DEFAULT_PORTS:
            raise LocalProtocolError(f"unknown transport {self.transport!r}")
        if not 0 < self.port < 65536:
            raise LocalProtocolError(f"port out of range: {self.port}")

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE_TRANSPORTS

    def __repr__(self) -> str:
        conn = "" if self.connection_id is None else f" conn={self.connection_id}"
        return f"<Peer {self.transport} {self.host}:{self.port}{conn}>"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Bytes the transport must send to `peer`."""

    data: bytes
    peer: Peer

    def __repr__(self) -> str:
        first_line = self.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        return f"<Outgoing {first_line!r} to {self.peer!r}>"


def response_peer(via: Via, transport: str, connection_id: int | None = None) -> Peer:
    """Where the response to a request whose top Via is `via` goes.

    Stream transports reuse the connection the request came on (`connection_id`) and
    fall back to the address below if it has closed. Otherwise (§18.2.2, RFC 3581 §4):
    the `received` address (or the sent-by host when the transport saw no need to add
    it), at the `rport` port when the transport filled one in, else the sent-by port or
    the transport's default. Our transport has rewritten `received` and `rport` from
    the packet's real source (transport.stamp_via), so a sender cannot choose them.

    A `maddr` is not followed: §18.2.2 sends to it for multicast, which a switch facing
    phones and gateways never uses, and followed blindly it would let any sender aim
    our responses at a third host (reflection).
    """
    transport = transport.upper()
    if transport not in DEFAULT_PORTS:
        raise LocalProtocolError(f"unknown transport {transport!r}")
    sent_by_port = via.port or DEFAULT_PORTS[transport]
    host = via.params.get("received") or via.host
    port = _rport(via) or sent_by_port
    return Peer(transport, _strip_brackets(host), port, connection_id)


def _rport(via: Via) -> int | None:
    # A bare ";rport" is the client's request for the value, not a value (RFC 3581 §3).
    value = via.params.get("rport")
    if value is None or not value.isdigit() or not value.isascii():
        return None
    port = int(value)
    return port if 0 < port < 65536 else None


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host
